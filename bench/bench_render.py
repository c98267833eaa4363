"""Benchmark: the streaming render (``calib render``) on one core, speed and memory.

Calibration: 5 drivers, 2048-tap FIRs and a 256-tap virtualizer, so the
effective filters (3 upmixed inputs -> 5 drivers) have 2303 taps, as the
Aurora 5's. Random taps: speed and memory do not depend on them.

Printed, all in this run, one thread (BLAS/FFT threads pinned to 1):

1. real-time factor (audio seconds per second of CPU) of the whole render
   in memory, :func:`calib.render.stream.render_blocks` (upmix + filters), and of
   its stages; the whole-file render (:func:`calib.render.in_memory.render`, the
   former implementation) and :func:`scipy.signal.oaconvolve` for the filter
   stage on the same signal; and the flop-count limit: the minimum FFT and
   multiply-add count of the same algorithm (upmix STFT, overlap-save with the
   chosen FFT length) at the single-core rate of a float64 matrix product;
2. ``calib render`` from the command line on 60 s and 3600 s of stereo
   (16-bit WAV): wall time, RTF and peak RSS (``/usr/bin/time %M``), the 60 s
   also with the checkout given by ``--before`` (e.g. ``/work/main``).

Targets: RTF >= 300 for the whole render; peak RSS <= 300 MB at both lengths. The
FFT-bound limit printed with the figures (the same FFTs timed alone) shows how far
any float64 implementation of this algorithm could go on the machine at hand.

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
from calib.render.stream import BLOCK, OverlapSave, StreamingUpmix, render_blocks, upmix_floor  # noqa: E402
from calib.render.upmix import _stft  # noqa: E402
from calib.store.calibration import Calibration, write_calibration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FS = 48000
RTF_TARGET, RSS_LIMIT_MB = 300.0, 300.0


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


def cpu(fn):
    """CPU seconds of one call (process time: one thread, independent of other load) and the result."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def fft_flops(n: int) -> float:
    """Flops of a real FFT of length n (half the 5 n log2 n of a complex one)."""
    return 2.5 * n * np.log2(n)


def flop_limit_rtf(cal: Calibration, conv: OverlapSave, gflops: float) -> tuple[float, float, float]:
    """Flops per audio second of the upmix and the filters, and the RTF at ``gflops``."""
    sft = _stft(FS, 0.04)
    m, hop = sft.m_num, sft.hop
    bins = m // 2 + 1
    # Upmix per hop: 2 forward + 1 inverse FFT, about 40 real operations per bin (statistics,
    # smoothing, gains, centre), windowing and overlap-add per sample; the floor pass: 3 dot products.
    upmix = (3 * fft_flops(m) + 40 * bins + 4 * m + 6 * m) * FS / hop
    k, s = 3, len(cal.drivers)
    per_block = (k + s) * fft_flops(conv.nfft) + k * s * 8 * (conv.nfft // 2 + 1)  # complex MAC = 8 flops
    filters = per_block * FS / conv.step + 2 * FS  # + L - C, R - C
    return upmix, filters, gflops * 1e9 / (upmix + filters)


def fft_bound_rtf(conv: OverlapSave) -> float:
    """RTF if the render did nothing but its FFTs: measured here, on this core, at the render's sizes.

    Per audio second the upmix needs 2 forward and 1 inverse FFT of m samples per hop,
    the overlap-save 3 forward and S inverse FFTs of ``nfft`` per step; no FFT
    algorithm change preserves the output, so this bounds any float64 implementation.
    """
    sft = _stft(FS, 0.04)
    m, hop = sft.m_num, sft.hop
    rng = np.random.default_rng(0)
    frames, blocks = rng.standard_normal((128, m)), rng.standard_normal((16, conv.nfft))
    t_m = min(cpu(lambda: scipy.fft.irfft(scipy.fft.rfft(frames, axis=-1), m, axis=-1))[0] for _ in range(5)) / 128 / 2
    t_n = min(cpu(lambda: scipy.fft.irfft(scipy.fft.rfft(blocks, axis=-1), conv.nfft, axis=-1))[0]
              for _ in range(3)) / 16 / 2
    n_s = conv.spectra.shape[1]
    per_second = 3 * t_m * FS / hop + (3 + n_s) * t_n * FS / conv.step
    return 1.0 / per_second


def matmul_gflops() -> float:
    a = np.random.default_rng(0).standard_normal((1024, 1024))
    a @ a
    best = min(cpu(lambda: a @ a)[0] for _ in range(3))
    return 2 * 1024**3 / best / 1e9


def in_memory(cal: Calibration, seconds: float) -> None:
    x = music_like(seconds)

    def blocks():
        return (x[:, i : i + BLOCK] for i in range(0, x.shape[-1], BLOCK))

    eff = effective_fir(cal)
    conv = OverlapSave(eff)
    t_render, feeds = cpu(lambda: np.concatenate(list(render_blocks(cal, blocks)), axis=-1))
    t_floor, floor = cpu(lambda: upmix_floor(blocks(), FS))
    up = StreamingUpmix(FS, floor)
    t_upmix, parts = cpu(lambda: [*(up.push(b) for b in blocks()), up.finish()])
    centre = np.concatenate(parts, axis=-1)
    t_filt, _ = cpu(lambda: [*(conv.push(centre[:, i : i + BLOCK]) for i in range(0, centre.shape[-1], BLOCK)),
                             conv.finish()])
    t_oa, _ = cpu(lambda: sum(oaconvolve(centre[k][None, :], eff[k], axes=-1) for k in range(3)))
    t_whole, ref = cpu(lambda: render(cal, x))
    err = float(np.abs(feeds - ref).max() / np.abs(ref).max())
    gflops = matmul_gflops()
    f_up, f_filt, limit = flop_limit_rtf(cal, conv, gflops)
    print(f"in memory, {seconds:.0f} s of stereo at {FS} Hz -> {len(cal.drivers)} drivers, "
          f"{eff.shape[-1]} taps (overlap-save FFT {conv.nfft}, step {conv.step}); CPU seconds, one thread:")
    verdict = "PASS" if seconds / t_render >= RTF_TARGET else "FAIL"
    print(f"  streaming render (upmix + filters): {t_render:7.2f} s  RTF {seconds / t_render:7.1f}  "
          f"(target {RTF_TARGET:.0f}: {verdict})")
    print(f"    floor pass {t_floor:6.2f} s (RTF {seconds / t_floor:7.1f}), upmix {t_upmix:6.2f} s "
          f"(RTF {seconds / t_upmix:6.1f}), filters (overlap-save) {t_filt:6.2f} s (RTF {seconds / t_filt:6.1f})")
    print(f"  whole-file render (former):         {t_whole:7.2f} s  RTF {seconds / t_whole:7.1f}  "
          f"(streaming equals it within {err:.1e} of peak)")
    print(f"  filters by scipy oaconvolve:        {t_oa:7.2f} s  RTF {seconds / t_oa:7.1f}  "
          f"(overlap-save is {t_oa / t_filt:.2f}x faster)")
    print(f"  flop-count limit at {gflops:.1f} GFLOP/s (1024 matmul, one core): upmix {f_up / 1e6:.0f} + "
          f"filters {f_filt / 1e6:.0f} MFLOP per audio second -> RTF {limit:.0f} "
          f"(filters alone {gflops * 1e9 / f_filt:.0f}, upmix alone {gflops * 1e9 / f_up:.0f}); "
          f"achieved {seconds / t_render / limit:.0%} of it")
    fft_rtf = fft_bound_rtf(conv)
    print(f"  FFT-bound limit (the render's FFTs alone, pocketfft float64, timed here): RTF {fft_rtf:.0f}; "
          f"achieved {seconds / t_render / fft_rtf:.0%} of it")


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
    in_memory(cal, args.seconds)
    command_line(cal, args.long_s, args.before)


if __name__ == "__main__":
    main()
