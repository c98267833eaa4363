"""Figures of issue 18 (CTA-2034-A spinorama) at full resolution, with CPU times.

1. Analytic: a baffled piston (ka 0.05 .. 12) on the two orbits through
   :func:`calib.metrics.spinorama.spinorama` against the standard's sums
   written out (max |difference|, dB), and the 70-point sound power against a
   Lebedev quadrature (131st order, 5810 points) of each aurora5 driver model
   about its own axis (max |difference| up to ka 3.4 and up to the driver's
   low-pass, dB).
2. Product: one simulated aurora5 unit on ``procedures/aurora5_sphere.toml``
   as shipped (10 deg, 19 microphones, 2 s sweeps) characterized, fitted and
   verified; the beamformed centre's ERDI and SPDI predicted vs verified over
   the beam band (mean and worst 1/12-octave band), and L, R.

Run: ``python bench/bench_spinorama.py [--sweep-s 2.0] [--out DIR]`` (several
minutes on 2 cores; ``--sweep-s 0.3`` for a quick look).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
from scipy.integrate import lebedev_rule
from scipy.special import j1

from calib.metrics.spinorama import DI_CURVES, ORBIT_DEG, orbit_directions, sound_power_weights, spinorama
from calib.sim.driver import driver_directivity

ROOT = Path(__file__).resolve().parents[1]
SPHERE = ROOT / "procedures" / "aurora5_sphere.toml"


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def analytic() -> None:
    ka = np.linspace(0.05, 12.0, 240)
    d2 = {}
    for a in range(0, 181, 10):
        x = ka * np.sin(np.deg2rad(a))
        d2[a] = np.where(x < 1e-9, 1.0, (2 * j1(x) / np.maximum(x, 1e-9)) ** 2)
    orbit = np.sqrt(np.stack([d2[abs(int(a))] for a in ORBIT_DEG]))
    got = spinorama(orbit, orbit)
    lw = (d2[0] + 4 * d2[10] + 2 * d2[20] + 2 * d2[30]) / 9
    er = ((d2[20] + d2[30] + d2[40]) / 3 + (d2[40] + d2[50] + d2[60]) / 3
          + (d2[0] + 2 * (d2[10] + d2[20] + d2[30])) / 7 + 2 * sum(d2[a] for a in range(40, 81, 10)) / 10
          + (d2[180] + 2 * sum(d2[a] for a in range(90, 171, 10))) / 19) / 5
    w = {a: sound_power_weights(np.array([float(a)]))[0] for a in range(0, 181, 10)}
    sp = (w[0] * d2[0] + w[180] * d2[180] + 4 * sum(w[a] * d2[a] for a in range(10, 171, 10))) / (
        w[0] + w[180] + 4 * sum(w[a] for a in range(10, 171, 10)))
    want = {"Listening Window": lw, "Early Reflections": er, "Sound Power": sp,
            "Estimated In-Room Response": 0.12 * lw + 0.44 * er + 0.44 * sp}
    worst = max(float(np.max(np.abs(got[k] - 10 * np.log10(v)))) for k, v in want.items())
    print(f"piston, curves vs the standard's sums: max |diff| {worst:.2e} dB (bound 0.1 dB)")

    proc = tomllib.loads(SPHERE.read_text())
    x, wq = lebedev_rule(131)
    for name, drv in proc["sim"]["drivers"].items():
        radius, rear, lp = drv["radius_m"], drv.get("rear_attenuation_db", 12.0), drv.get("lowpass_hz", 20000.0)
        f = np.geomspace(100.0, 20000.0, 400)

        def pattern(u):
            return driver_directivity(f, radius, u[..., 0], rear)  # noqa: B023 - called in this iteration only

        sp70 = spinorama(pattern(orbit_directions(ORBIT_DEG, "h")), pattern(orbit_directions(ORBIT_DEG, "v")))
        full = 10 * np.log10(wq @ pattern(x.T) ** 2 / wq.sum())
        err = np.abs(sp70["Sound Power"] - full)
        kav = 2 * np.pi * f * radius / 343.0
        print(f"  {name:9s} a={radius * 100:.1f} cm: 70-point SP vs Lebedev max |diff| {err[kav <= 3.4].max():.2f} dB "
              f"(ka <= 3.4, f <= {3.4 * 343 / (2 * np.pi * radius):.0f} Hz), {err[f <= lp].max():.2f} dB "
              f"up to the low-pass {lp:g} Hz, {err.max():.2f} dB to 20 kHz")


def product(sweep_s: float, out: Path) -> None:
    from calib.stages.fit import fit_file
    from calib.stages.measure import measure_unit
    from calib.stages.unit_report import build_unit_report
    from calib.stages.verify import verify_calibration

    text = SPHERE.read_text().replace("duration_s = 2.0", f"duration_s = {sweep_s!r}")
    proc_path = out / "aurora5_sphere.toml"
    proc_path.write_text(text)
    t = cpu_s()
    meas = measure_unit(str(proc_path), "BENCH0001", "sim", str(out), resume=False)
    print(f"characterize: {cpu_s() - t:.1f} s CPU")
    t = cpu_s()
    fit = fit_file(meas)
    print(f"fit: {cpu_s() - t:.1f} s CPU")
    t = cpu_s()
    verify = verify_calibration(fit.path, "sim", out, progress=False)
    print(f"verify: {cpu_s() - t:.1f} s CPU")
    t = cpu_s()
    report = build_unit_report(verify)
    print(f"unit report (with both spinoramas): {cpu_s() - t:.1f} s CPU, verdict {report.verdict}")
    pred, ver = report.spinorama["predicted"], report.spinorama["verified"]
    lo, hi = report.procedure.targets.beam.band_hz
    beam = (pred.bands_hz >= lo) & (pred.bands_hz <= hi)
    for source in ("C", "L", "R"):
        for name in DI_CURVES:
            p, v = pred.curves[source][name], ver.curves[source][name]
            print(f"  {source} {name:21s} {lo:g}-{hi:g} Hz mean: predicted {np.mean(p[beam]):+6.2f} dB, verified "
                  f"{np.mean(v[beam]):+6.2f} dB; worst band |diff| {np.max(np.abs(p[beam] - v[beam])):.2f} dB; "
                  f"whole range {pred.bands_hz[0]:.0f} Hz-{pred.bands_hz[-1] / 1000:.0f} kHz worst "
                  f"{np.nanmax(np.abs(p - v)):.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    analytic()
    with tempfile.TemporaryDirectory() as tmp:
        product(args.sweep_s, args.out or Path(tmp))
    print(f"total {time.perf_counter() - t0:.0f} s wall, {cpu_s():.0f} s CPU")


if __name__ == "__main__":
    main()
