"""Benchmark: ``calib --version`` and ``calib --help`` start-up, this checkout against a reference one.

Each command runs as the console script does (``from calib.cli.main import main``)
in a fresh interpreter, alternating between the two checkouts so both see
the same machine load; printed: the median and the minimum wall time of
``--repeats`` runs, and a bare ``python -c pass`` for the interpreter's own
start-up. Target: under 0.5 s.

Run: ``python bench/bench_cli.py [--before /work/main] [--repeats 15]``
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5
SCRIPT = "import sys; from calib.cli.main import main; sys.exit(main())"


def wall(checkout: Path | None, args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run."""
    env = {**os.environ, "PYTHONPATH": str(checkout)} if checkout else dict(os.environ)
    cmd = [sys.executable, "-c", "pass"] if checkout is None else [sys.executable, "-c", SCRIPT, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=checkout or ROOT)  # cwd: first on sys.path
    t = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="reference checkout (e.g. /work/main)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    checkouts = {"now": ROOT, **({"before": args.before} if args.before else {})}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        runs.setdefault(("python", "-c pass"), []).append(wall(None, []))
        for flag in ("--version", "--help"):
            for label, checkout in checkouts.items():
                runs.setdefault((label, flag), []).append(wall(checkout, [flag]))
    print(f"start-up over {args.repeats} runs each: wall median / min, CPU (user + sys) median; "
          f"target {TARGET_S} s, judged on CPU time (on a shared, loaded machine the wall time "
          f"is mostly waiting; compare with python -c pass):")
    for (label, what), times in runs.items():
        walls, cpus = [t for t, _ in times], [c for _, c in times]
        verdict = "" if label == "python" else ("  PASS" if statistics.median(cpus) < TARGET_S else "  FAIL")
        print(f"  {label:<7} calib {what:<10} wall {statistics.median(walls):6.3f} / {min(walls):6.3f} s, "
              f"CPU {statistics.median(cpus):6.3f} s{verdict}")


if __name__ == "__main__":
    main()
