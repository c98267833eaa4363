"""``calib fit`` at scale: peak memory of the 360 x 8 x 5 x 16384 file, time growth with its sizes.

Large measurement files are synthesized, not measured (a 360-azimuth MESM
characterization takes hours of simulated playback): a procedure from
``procedures/`` edited to the wanted grid (``turntable.step_deg``, ``[[mics]]``
at elevations 0, 10, 20 ... deg, ``sweep.ir_length``) and filled with the
virtual lab's true IRs of the unit (``VirtualLab.true_irs``, the system the
simulated rig convolves with), so the fit solves a realistic plant.

Each fit runs ``calib fit`` in a fresh process under ``/usr/bin/time`` (its
peak resident set, ``%M``, and CPU time, user + system), once with this checkout and,
for the big file, once with the reference checkout given by ``--before``
(e.g. ``/work/main``), both in the same run.

Run: ``python bench/bench_fit.py --scale [--before /work/main]`` (several minutes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from calib.geometry import HeadPosition
from calib.procedure.load import parse_procedure
from calib.rig.virtual_lab import mic_receivers, open_sim_rig
from calib.sim.lab import EarReceiver
from calib.store.measurement import StepQuality, create_measurement, mark_complete, write_step

ROOT = Path(__file__).resolve().parents[1]
PROCEDURES = ROOT / "procedures"
RSS_LIMIT_MB = 1024.0


def procedure_text(product: str, n_az: int, n_mics: int, ir_length: int) -> str:
    """``procedures/<product>.toml`` with n_az azimuths, n_mics arc mics (elevation 10 k deg) and ir_length."""
    text = (PROCEDURES / f"{product}.toml").read_text()
    text = re.sub(r"(?m)^step_deg = [0-9.]+", f"step_deg = {360.0 / n_az!r}", text)
    text = re.sub(r"(?m)^ir_length = \d+", f"ir_length = {ir_length}", text)
    text = re.sub(r"(?ms)^\[\[mics\]\]\n.*?(?=^\[(?!\[mics))", "", text)  # every [[mics]] block
    used = {int(v) for v in re.findall(r"=\s*(\d+)", re.search(r"(?m)^ears = .*$", text).group(0))}
    used |= {int(re.search(r"(?m)^loopback = \{ output = \d+, input = (\d+)", text).group(1))}
    channels = [c for c in range(1, n_mics + len(used) + 1) if c not in used][:n_mics]
    names = [f"arc_{10 * k}" for k in range(n_mics)]
    mics = "".join(f'[[mics]]\nname = "{n}"\nelevation_deg = {10.0 * k}\n\n' for k, n in enumerate(names))
    text = text.replace("[channels]\n", mics + "[channels]\n", 1)
    mapping = ", ".join(f"{n} = {c}" for n, c in zip(names, channels, strict=True))
    return re.sub(r"(?m)^mics = \{.*\}$", f"mics = {{ {mapping} }}", text)


def synthesize(path: Path, product: str, n_az: int, n_mics: int, ir_length: int) -> Path:
    """Return a complete characterize file of the given size, filled with the unit's true IRs."""
    text = procedure_text(product, n_az, n_mics, ir_length)
    proc = parse_procedure(text)
    lab = open_sim_rig(proc, "SN-SCALE").audio.lab
    azimuths = (np.arange(n_az) * 360.0 / n_az + 180.0) % 360.0 - 180.0  # the files' convention: [-180, 180)
    positions = [HeadPosition(p.name, tuple(p.xyz_m), p.yaw_deg) for p in proc.positions]
    create_measurement(
        path, serial="SN-SCALE", stage="characterize", sample_rate=proc.audio.sample_rate, rig="sim",
        simulated=True, procedure_text=text, procedure_sha256=proc.sha256, sources=proc.driver_names,
        azimuth_deg=azimuths, receivers=[m.name for m in proc.mics], positions=positions, ir_length=ir_length,
    )
    n_s = len(proc.driver_names)

    def fitted(ir: np.ndarray) -> np.ndarray:  # the true IR (sim.true_ir_length) cut or padded to ir_length
        out = np.zeros((*ir.shape[:-1], ir_length))
        n = min(ir_length, ir.shape[-1])
        out[..., :n] = ir[..., :n]
        return out

    def quality(n_rec: int) -> StepQuality:
        return StepQuality(
            np.full((n_rec, n_s), 60.0), np.zeros((n_rec, n_s)), np.full(n_rec, -6.0), np.zeros(n_s, int)
        )

    mics = mic_receivers(proc)
    for a, az in enumerate(azimuths):
        write_step(path, "directivity", a, fitted(lab.true_irs(mics, az)), quality(len(mics)))
    for p, head in enumerate(positions):
        write_step(path, "binaural", p, fitted(lab.true_irs([EarReceiver(head, 0), EarReceiver(head, 1)])), quality(2))
    mark_complete(path)
    return path


def timed_fit(path: Path, checkout: Path) -> tuple[float, float]:
    """Measure the CPU time and peak memory of ``calib fit`` from one checkout.

    CPU (user + system) seconds and peak RSS (MB) of ``calib fit`` on ``path`` with ``checkout``
    first on the path (CPU, not wall time: the figures hold on a shared machine).
    """
    out = path.with_name(f"{path.stem}-{abs(hash(str(checkout))) % 10**6}.cal.h5")
    code = "import sys; from calib.stages.fit import fit_file; fit_file(sys.argv[1], sys.argv[2])"
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    res = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %U %S %M", sys.executable, "-c", code, str(path), str(out)],
        capture_output=True, text=True, env=env, cwd=checkout,
    )
    out.unlink(missing_ok=True)
    stats = re.search(r"TIME ([0-9.]+) ([0-9.]+) (\d+)", res.stderr)
    if res.returncode != 0 or stats is None:
        raise RuntimeError(f"fit of {path.name} with {checkout} failed:\n{res.stderr[-2000:]}")
    return float(stats.group(1)) + float(stats.group(2)), int(stats.group(3)) / 1024.0


def main(before: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_fit_scale-") as tmp:
        big_file(Path(tmp), before)
        growth(Path(tmp))


def big_file(folder: Path, before: Path | None) -> None:
    """Peak RSS and time of the fit of the 360 x 8 x 5 x 16384 file, now (and before)."""
    big = synthesize(folder / "big.h5", "aurora5", 360, 8, 16384)
    print(f"file 360 az x 8 mics x 5 drivers x 16384 samples: {big.stat().st_size / 2**20:.0f} MiB")
    t_big, rss_big = timed_fit(big, ROOT)
    verdict = "PASS" if rss_big <= RSS_LIMIT_MB else "FAIL"
    print(f"  fit now:    {t_big:7.1f} s CPU, peak RSS {rss_big:7.0f} MB  (limit {RSS_LIMIT_MB:.0f} MB: {verdict})")
    if before is not None:
        t_old, rss_old = timed_fit(big, before)
        print(
            f"  fit before: {t_old:7.1f} s CPU, peak RSS {rss_old:7.0f} MB  ({before}; ratio {rss_old / rss_big:.1f}x)"
        )
    big.unlink()


def growth(folder: Path) -> None:
    """Fit time as bins, azimuths and drivers grow, as ratios to a base size."""
    # Growth: each size doubled (or more) from a base, the others fixed; time ratios against the base.
    base = {"n_az": 72, "ir_length": 4096, "product": "aurora5"}
    cases = [
        ("base 72 az, 4096 samples, 5 drivers", base),
        ("bins x2 (ir_length 8192)", {**base, "ir_length": 8192}),
        ("bins x4 (ir_length 16384)", {**base, "ir_length": 16384}),
        ("azimuths x2 (144)", {**base, "n_az": 144}),
        ("azimuths x5 (360)", {**base, "n_az": 360}),
        ("drivers 5 -> 2 (duo2)", {**base, "product": "duo2"}),
    ]
    t_base = None
    print("fit CPU time growth (one fit each, 2 mics; ratios to the base):")
    for label, case in cases:
        path = synthesize(folder / "case.h5", case["product"], case["n_az"], 2, case["ir_length"])
        t, rss = timed_fit(path, ROOT)
        path.unlink()
        t_base = t if t_base is None else t_base
        print(f"  {label:<38} {t:7.1f} s  x{t / t_base:5.2f}   peak RSS {rss:6.0f} MB")
