"""Benchmark: drawing the per-unit PDF report (``calib report``), this checkout against a reference one.

Units: a Duo 2 (the shipped procedure) and an Aurora 5 on a 15 deg turntable
grid, measured, fitted and verified on the simulator once and kept in the
``--work`` folder (reused on later runs: building them takes about half a
minute). Only the drawing is timed: :func:`calib.report.pdf.write_report` of
the unit report (built beforehand, untimed), as ``calib report`` calls it
through :func:`calib.fleet.recording.report_and_record`.

Printed, per unit: the CPU seconds (process time, one thread) of drawing the
PDF with this checkout and, with ``--before`` (e.g. ``/work/main``), with the
reference checkout, each the least of ``--repeats`` drawings in one fresh
interpreter (the first drawing also loads fonts; the least is the figure least
disturbed by other load on a shared machine), the ratio before / now, the
pages and the PDF's size (no fixed target: the reference is whatever checkout is given).

Run: ``python bench/bench_report.py [--before /work/main] [--work /tmp/pdfwork] [--repeats 3]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"duo2": ("duo2", "SN-BENCH-DUO", None), "aurora5": ("aurora5", "SN-BENCH-AUR", 15.0)}
"""Bench units: name -> (product, serial, turntable step in degrees or None for the procedure's)."""

# Run in a fresh interpreter with PYTHONPATH set to the checkout drawn: build the report (untimed),
# then draw the PDF ``repeats`` times into fresh paths (write_report skips a PDF that already is
# this verification's report) and print the least CPU time, the page count and the size as JSON.
DRAW = """
import json, sys, tempfile, time
from pathlib import Path
import calib
from calib.report.pdf import page_count, write_report
from calib.stages.unit_report import build_unit_report
verify, repeats = sys.argv[1], int(sys.argv[2])
report = build_unit_report(verify)
best, size = float("inf"), 0
with tempfile.TemporaryDirectory() as tmp:
    for i in range(repeats):
        t0 = time.process_time()
        path = write_report(report, Path(tmp) / f"{i}.pdf")
        best = min(best, time.process_time() - t0)
        size = path.stat().st_size
print(json.dumps({"cpu_s": best, "pages": page_count(report), "bytes": size, "calib": calib.__file__}))
"""


def verification(work: Path, product: str, serial: str, step_deg: float | None) -> Path:
    """Return the verification file of a simulated unit, measured, fitted and verified once (then reused)."""
    folder = work / f"{product}-{serial}"
    done = folder / "verification.txt"  # the path of the finished verification
    if done.is_file() and Path(done.read_text().strip()).is_file():
        return Path(done.read_text().strip())
    from calib.stages.fit import fit_file
    from calib.stages.measure import measure_unit
    from calib.stages.verify import verify_calibration

    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "procedures" / f"{product}.toml").read_text()
    if step_deg is not None:
        text, n = re.subn(r"(?m)^step_deg = .*$", f"step_deg = {step_deg!r}", text, count=1)
        assert n == 1, "turntable.step_deg not found"
    procedure = folder / f"{product}.toml"
    procedure.write_text(text)
    out = folder / "measurements"
    measurement = measure_unit(str(procedure), serial, "sim", str(out), resume=False)
    fit = fit_file(measurement)
    assert fit.path is not None
    path = verify_calibration(fit.path, "sim", out, progress=False)
    done.write_text(str(path))
    return Path(path)


def draw(checkout: Path, verify: Path, repeats: int) -> dict:
    """Draw the PDF of ``verify`` with ``checkout``'s calib in a subprocess; its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    run = subprocess.run([sys.executable, "-c", DRAW, str(verify), str(repeats)], env=env, cwd=checkout,
                         check=True, capture_output=True, text=True)
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    if not answer["calib"].startswith(str(checkout.resolve())):
        raise RuntimeError(f"{checkout}: the subprocess imported calib from {answer['calib']}")
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="reference checkout (e.g. /work/main)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/calib-bench-report"),
                        help="folder for the simulated units (reused when present)")
    parser.add_argument("--repeats", type=int, default=3, help="drawings per unit and checkout (the least is shown)")
    args = parser.parse_args()
    checkouts = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    print(f"PDF report drawing, CPU seconds (least of {args.repeats}); ratio: before / now")
    for name, (product, serial, step) in UNITS.items():
        verify = verification(args.work, product, serial, step)
        results = {label: draw(checkout, verify, args.repeats) for label, checkout in checkouts.items()}
        line = "  ".join(f"{label} {r['cpu_s']:6.2f} s ({r['pages']} pages, {r['bytes'] / 1e3:.0f} kB)"
                         for label, r in results.items())
        if "before" in results:
            ratio = results["before"]["cpu_s"] / results["now"]["cpu_s"]
            line += f"  ratio {ratio:4.2f}x"
        print(f"  {name:<8} {line}", flush=True)


if __name__ == "__main__":
    main()
