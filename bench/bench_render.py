"""Benchmark: the streaming render (``calib render``) on one core, speed and memory.

Calibration: 5 drivers, 2048-tap FIRs and a 256-tap virtualizer, so the
effective filters (3 upmixed inputs -> 5 drivers) have 2303 taps, as the
Aurora 5's. Random taps: speed and memory do not depend on them.

Printed, all in this run, one thread (BLAS/FFT threads pinned to 1):

1. real-time factor (audio seconds per second of CPU) of the whole render
   in memory, :func:`calib.render.stream.render_blocks` (upmix + filters), and of
   its stages (the filters in float32 as the render runs them, and in float64, with
   the difference of their outputs against the peak); the whole-file render (:func:`calib.render.in_memory.render`, the
   former implementation) and :func:`scipy.signal.oaconvolve` for the filter
   stage on the same signal; and the flop-count limit: the minimum FFT and
   multiply-add count of the same algorithm (upmix STFT, overlap-save with the
   chosen FFT length) at the single-core rate of a matrix product (float64 for the
   upmix, float32 for the filters). Timings are the least of ``REPEAT`` runs (the
   machine may be shared: see :func:`cpu`);
2. ``calib render`` from the command line on 60 s and 3600 s of stereo
   (16-bit WAV): wall time, RTF and peak RSS (``/usr/bin/time %M``), the 60 s
   also with the checkout given by ``--before`` (e.g. ``/work/main``), whose
   :func:`calib.render.stream.render_blocks` is timed in memory too (in a subprocess).

Targets: RTF >= 300 for the whole render; peak RSS <= 300 MB at both lengths. The
FFT-bound limit printed with the figures (the same FFTs timed alone, at the render's
precisions) shows how far any implementation of this algorithm could go on the
machine at hand, before any of the upmix's elementwise work per bin.

Run: ``python bench/bench_render.py [--before /work/main] [--long-s 3600]`` (some minutes).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads its BLAS

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile
from scipy.signal import oaconvolve

from calib.render.in_memory import effective_fir, render  # noqa: E402
from calib.render.stream import BLOCK, StreamingUpmix, render_blocks, upmix_floor  # noqa: E402
from calib.render.upmix import _stft  # noqa: E402
from calib.signals.overlap_save import OverlapSave  # noqa: E402
from calib.store.calibration import Calibration, write_calibration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FS = 48000
RTF_TARGET, RSS_LIMIT_MB = 300.0, 300.0
REPEAT = 3  # runs of each in-memory timing; the least is printed (see cpu)


def calibration(n_drivers: int = 5, taps: int = 2048, virtualizer_taps: int = 256) -> Calibration:
    rng = np.random.default_rng(0)
    fir = 0.05 * rng.standard_normal((3, n_drivers, taps)) * np.exp(-np.arange(taps) / (taps / 8))
    virtualizer = 0.1 * rng.standard_normal((2, 2, virtualizer_taps)) * np.exp(-np.arange(virtualizer_taps) / 32)
    virtualizer[0, 0, 32] = virtualizer[1, 1, 32] = 1.0
    return Calibration(
        serial="SN-BENCH", product_id="aurora5", sample_rate=FS, drivers=[f"d{s}" for s in range(n_drivers)],
        output_channels=list(range(1, n_drivers + 1)), fir=fir.astype(np.float32),
        virtualizer=virtualizer.astype(np.float32), virtualizer_delay_samples=32, modeling_delay_s=0.008,
        measurement_sha256="0" * 64, procedure_sha256="0" * 64, procedure_text="",
    )


def music_like(seconds: float, seed: int = 1) -> np.ndarray:
    """Stereo with a common (centre) part and side parts, [2, N], peak about -6 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    common, sides = rng.standard_normal(n), rng.standard_normal((2, n))
    x = 0.6 * common + 0.4 * sides
    return 0.5 * x / np.abs(x).max()


def cpu(fn, repeat: int = 1):
    """CPU seconds of a call, the least of ``repeat`` calls, and the last result.

    Process time counts this thread only, but on a shared machine other processes still slow it
    (caches, memory bandwidth, a busy sibling hyperthread): the least of a few runs is the figure
    least disturbed by them, as :mod:`timeit` advises.
    """
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def fft_flops(n: int) -> float:
    """Flops of a real FFT of length n (half the 5 n log2 n of a complex one)."""
    return 2.5 * n * np.log2(n)


def flop_limit_rtf(cal: Calibration, conv: OverlapSave, gflops: float, gflops_32: float) -> tuple[float, float, float]:
    """Flops per audio second of the upmix and the filters, and the RTF they allow.

    The upmix at ``gflops`` (float64), the filters at ``gflops_32`` (float32, as the render runs them).
    """
    sft = _stft(FS, 0.04)
    m, hop = sft.m_num, sft.hop
    bins = m // 2 + 1
    # Upmix per hop: 2 forward + 1 inverse FFT, about 40 real operations per bin (statistics,
    # smoothing, gains, centre), windowing and overlap-add per sample; the floor pass: 3 dot products.
    upmix = (3 * fft_flops(m) + 40 * bins + 4 * m + 6 * m) * FS / hop
    k, s = 3, len(cal.drivers)
    per_block = (k + s) * fft_flops(conv.nfft) + k * s * 8 * (conv.nfft // 2 + 1)  # complex MAC = 8 flops
    filters = per_block * FS / conv.step + 2 * FS  # + L - C, R - C
    return upmix, filters, 1e9 / (upmix / gflops + filters / gflops_32)


def fft_bound_rtf(conv: OverlapSave, upmix_dtype: type[np.floating] = np.float64) -> float:
    """RTF if the render did nothing but its FFTs: measured here, on this core, at the render's sizes.

    Per audio second the upmix needs 2 forward and 1 inverse FFT of m samples per hop (float64 as the
    render runs it; ``upmix_dtype`` float32 gives the bound of an upmix in single precision), the
    overlap-save 3 forward and S inverse FFTs of ``nfft`` per step (in the convolver's precision,
    float32 for the render); no FFT algorithm change preserves the output, so this bounds any
    implementation of the render with pocketfft at these precisions.
    """
    sft = _stft(FS, 0.04)
    m, hop = sft.m_num, sft.hop
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((128, m)).astype(upmix_dtype)
    blocks = rng.standard_normal((16, conv.nfft)).astype(conv.dtype)
    t_m = cpu(lambda: scipy.fft.irfft(scipy.fft.rfft(frames, axis=-1), m, axis=-1), 5)[0] / 128 / 2
    t_n = cpu(lambda: scipy.fft.irfft(scipy.fft.rfft(blocks, axis=-1), conv.nfft, axis=-1), 5)[0] / 16 / 2
    n_s = conv.spectra.shape[1]
    per_second = 3 * t_m * FS / hop + (3 + n_s) * t_n * FS / conv.step
    return 1.0 / per_second


def matmul_gflops(dtype: type[np.floating] = np.float64) -> float:
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype)
    a @ a
    return 2 * 1024**3 / cpu(lambda: a @ a, 3)[0] / 1e9


def stereo_blocks(x: np.ndarray):
    """Return what render_blocks takes: a callable giving [2, BLOCK] blocks of ``x`` afresh on every call."""
    return lambda: (x[:, i : i + BLOCK] for i in range(0, x.shape[-1], BLOCK))


def render_seconds(seconds: float) -> float:
    """Return the CPU seconds (least of REPEAT) of render_blocks on ``seconds`` of :func:`music_like`.

    It times whichever calib is first on the path: in a subprocess with the ``--before`` checkout, that version.
    """
    cal, blocks = calibration(), stereo_blocks(music_like(seconds))
    return cpu(lambda: list(render_blocks(cal, blocks)), REPEAT)[0]


def before_in_memory(before: Path, seconds: float) -> float:
    """Return :func:`render_seconds` with the checkout ``before`` first on the path (this bench file, its calib)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_render; "
            f"print(bench_render.render_seconds({seconds!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=before,
                         env={**os.environ, "PYTHONPATH": str(before)})
    if res.returncode != 0:
        raise RuntimeError(f"render_blocks with {before} failed:\n{res.stderr[-2000:]}")
    return float(res.stdout.split()[-1])


def in_memory(cal: Calibration, seconds: float, before: Path | None) -> None:
    x = music_like(seconds)
    blocks = stereo_blocks(x)

    eff = effective_fir(cal)
    conv = OverlapSave(eff, dtype=np.float32)  # as render_blocks runs it
    t_render, feeds = cpu(lambda: np.concatenate(list(render_blocks(cal, blocks)), axis=-1), REPEAT)
    t_floor, floor = cpu(lambda: upmix_floor(blocks(), FS), REPEAT)

    def upmix_all() -> np.ndarray:
        up = StreamingUpmix(FS, floor)
        return np.concatenate([*(up.push(b) for b in blocks()), up.finish()], axis=-1)

    def filters(conv: OverlapSave) -> np.ndarray:
        fresh = conv.fork(np.zeros((3, conv.taps - 1)))
        return np.concatenate([*(fresh.push(centre[:, i : i + BLOCK]) for i in range(0, centre.shape[-1], BLOCK)),
                               fresh.finish()], axis=-1)

    t_upmix, centre = cpu(upmix_all, REPEAT)
    t_filt, out_32 = cpu(lambda: filters(conv), REPEAT)
    t_filt64, out_64 = cpu(lambda: filters(OverlapSave(eff)), REPEAT)
    t_oa, _ = cpu(lambda: sum(oaconvolve(centre[k][None, :], eff[k], axes=-1) for k in range(3)))
    t_whole, ref = cpu(lambda: render(cal, x))
    err = float(np.abs(feeds - ref).max() / np.abs(ref).max())
    err_32 = float(np.abs(out_32 - out_64).max() / np.abs(out_64).max())
    gflops, gflops_32 = matmul_gflops(), matmul_gflops(np.float32)
    f_up, f_filt, limit = flop_limit_rtf(cal, conv, gflops, gflops_32)
    print(f"in memory, {seconds:.0f} s of stereo at {FS} Hz -> {len(cal.drivers)} drivers, "
          f"{eff.shape[-1]} taps (overlap-save FFT {conv.nfft}, step {conv.step}); CPU seconds, one thread, "
          f"least of {REPEAT} runs where marked *:")
    verdict = "PASS" if seconds / t_render >= RTF_TARGET else "FAIL"
    print(f"  streaming render (upmix + filters)*: {t_render:7.2f} s  RTF {seconds / t_render:7.1f}  "
          f"(target {RTF_TARGET:.0f}: {verdict})")
    print(f"    floor pass* {t_floor:6.2f} s (RTF {seconds / t_floor:7.1f}), upmix* {t_upmix:6.2f} s "
          f"(RTF {seconds / t_upmix:6.1f}), filters* (overlap-save, float32) {t_filt:6.2f} s "
          f"(RTF {seconds / t_filt:6.1f}; float64 {t_filt64:6.2f} s, RTF {seconds / t_filt64:6.1f})")
    if before is not None:
        t_before = before_in_memory(before, seconds)
        print(f"  streaming render of {before}*: {t_before:7.2f} s  RTF {seconds / t_before:7.1f}  "
              f"(now {t_before / t_render:.2f}x faster)")
    print(f"  whole-file render (former):          {t_whole:7.2f} s  RTF {seconds / t_whole:7.1f}  "
          f"(streaming equals it within {err:.1e} of peak; float32 filters against float64: {err_32:.1e})")
    print(f"  filters by scipy oaconvolve:         {t_oa:7.2f} s  RTF {seconds / t_oa:7.1f}  "
          f"(overlap-save is {t_oa / t_filt:.2f}x faster)")
    print(f"  flop-count limit at {gflops:.1f} GFLOP/s float64 and {gflops_32:.1f} float32 (1024 matmul, one core): "
          f"upmix {f_up / 1e6:.0f} + filters {f_filt / 1e6:.0f} MFLOP per audio second -> RTF {limit:.0f} "
          f"(filters alone {gflops_32 * 1e9 / f_filt:.0f}, upmix alone {gflops * 1e9 / f_up:.0f}); "
          f"achieved {seconds / t_render / limit:.0%} of it")
    fft_rtf, fft_rtf_32 = fft_bound_rtf(conv), fft_bound_rtf(conv, np.float32)
    sft = _stft(FS, 0.04)
    bins_per_s = (sft.m_num // 2 + 1) * FS / sft.hop
    left_ns = (1.0 / RTF_TARGET - 1.0 / fft_rtf_32) / bins_per_s * 1e9
    print(f"  FFT-bound limit (the render's FFTs alone, pocketfft, upmix float64, filters float32, timed here): "
          f"RTF {fft_rtf:.0f}; achieved {seconds / t_render / fft_rtf:.0%} of it")
    print(f"    with the upmix's FFTs in float32 too: RTF {fft_rtf_32:.0f}; at RTF {RTF_TARGET:.0f} that leaves "
          f"{left_ns:.1f} ns per upmix bin ({bins_per_s:.0f} bins per audio second) for everything but the FFTs")


def write_input(path: Path, seconds: float) -> None:
    """Write a 16-bit stereo WAV of ``seconds``, written a minute at a time (bounded memory here too)."""
    with soundfile.SoundFile(path, "w", FS, 2, subtype="PCM_16") as f:
        for start in range(0, int(seconds), 60):
            f.write(music_like(min(60.0, seconds - start), seed=start).T)


def cli_run(checkout: Path, cal_path: Path, wav: Path, out: Path) -> tuple[float, float, float]:
    """Time ``calib render`` from one checkout.

    Wall and CPU (user + system) seconds and peak RSS (MB) of ``calib render`` with ``checkout``
    first on the path, on core 0.
    """
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    cmd = [*pin, "/usr/bin/time", "-f", "TIME %e %U %S %M", sys.executable, "-m", "calib.cli.main", "render",
           str(cal_path), str(wav), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=checkout)
    out.unlink(missing_ok=True)
    stats = re.search(r"TIME ([0-9.]+) ([0-9.]+) ([0-9.]+) (\d+)", res.stderr)
    if res.returncode != 0 or stats is None:
        raise RuntimeError(f"calib render with {checkout} failed:\n{res.stderr[-2000:]}")
    wall, user, system, rss_kb = (float(v) for v in stats.groups())
    return wall, user + system, rss_kb / 1024.0


def command_line(cal: Calibration, long_s: float, before: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_render-") as tmp:
        folder = Path(tmp)
        cal_path = write_calibration(folder / "cal.h5", cal)
        print("calib render from the command line (16-bit stereo in, float32 out), pinned to one core:")
        for seconds in (60.0, long_s):
            wav = folder / f"in-{seconds:.0f}s.wav"
            write_input(wav, seconds)
            runs = [("now", ROOT)] + ([("before", before)] if before is not None and seconds == 60.0 else [])
            for label, checkout in runs:
                wall, cpu_s, rss = cli_run(checkout, cal_path, wav, folder / "out.wav")
                verdict = "PASS" if rss <= RSS_LIMIT_MB else "FAIL"
                print(f"  {seconds:6.0f} s {label:<6}: CPU {cpu_s:7.1f} s (RTF {seconds / cpu_s:6.1f}, start-up and "
                      f"WAV I/O included; wall {wall:.1f} s), peak RSS {rss:7.0f} MB  "
                      f"(limit {RSS_LIMIT_MB:.0f} MB: {verdict})")
            wav.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="reference checkout (e.g. /work/main)")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio for the in-memory figures")
    parser.add_argument("--long-s", type=float, default=3600.0, help="the long command-line run")
    args = parser.parse_args()
    cal = calibration()
    in_memory(cal, args.seconds, args.before)
    command_line(cal, args.long_s, args.before)


if __name__ == "__main__":
    main()
