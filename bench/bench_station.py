"""Benchmark: the production variant of Aurora 5 against its lab grid, on two serials and a replayed archive.

For each unit (:func:`calib.stages.grid_study.compare_grids`): the lab grid
(72 azimuths at 5 deg, 9 head positions, 2 s sweeps) characterized and
fitted; the production variant (``[production]`` of procedures/aurora5.toml)
characterized, fitted and verified. Both calibrations are judged on the lab
measurement, check by check. The third unit is an archived lab measurement
replayed (``replay:<file>``): the production variant is measured from the
archived IRs (with the simulator's noise).

Pass: production station time (characterize + verify, simulated, turntable
included) <= 180 s; every check of the production calibration within 0.5 dB
of the lab calibration's; the estimate of ``calib check`` within 10 % of the
recorded time.

Run: ``python bench/bench_station.py [out_dir]`` (about 3 CPU minutes)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from calib.capture.runner import new_measurement_path
from calib.procedure import load_procedure
from calib.stages.grid_study import MAX_DELTA_DB, compare_grids
from calib.stages.measure import characterize
from calib.stages.verdict import verdict

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
SERIALS = ("SN-A", "SN-B")
ARCHIVED = "SN-ARCHIVE-7"
MAX_STATION_S = 180.0
MAX_ESTIMATE_ERROR = 0.10


def main() -> None:
    t0 = time.process_time()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bench-station-"))
    lab = load_procedure(PROCEDURE)
    results = [compare_grids(lab, serial, out / serial) for serial in SERIALS]
    archive = characterize(lab, ARCHIVED, "sim", new_measurement_path(out / "archive", ARCHIVED, "characterize"),
                           progress=False)  # a unit measured on the lab grid earlier
    results.append(compare_grids(lab, ARCHIVED, out / "replay", rig_spec=f"replay:{archive}", lab_measurement=archive))
    for r in results:
        print("\n".join(r.lines()) + "\n")
    print(f"{'unit':<16}{'max |delta| dB':>15}{'verdicts lab/prod/verified':>28}{'station s':>11}{'estimate s':>12}"
          f"{'est. error':>11}{'lab est. s':>11}")
    ok = True
    for r in results:
        total = sum(r.station_s.values())
        error = r.production_estimate_s / total - 1
        verdicts = f"{verdict(r.lab_checks)}/{verdict(r.production_checks)}/{r.production_verdict}"
        print(f"{r.serial:<16}{r.max_delta_db:>15.2f}{verdicts:>28}{total:>11.1f}{r.production_estimate_s:>12.1f}"
              f"{error:>+11.1%}{r.lab_estimate_s:>11.1f}")
        ok &= r.max_delta_db <= MAX_DELTA_DB and total <= MAX_STATION_S and abs(error) <= MAX_ESTIMATE_ERROR
        ok &= r.production_verdict == "PASS"
    print(f"\n{'PASS' if ok else 'FAIL'}: production <= {MAX_STATION_S:g} s per unit, every check within "
          f"{MAX_DELTA_DB:g} dB of the lab calibration, estimate within {MAX_ESTIMATE_ERROR:.0%} of the recorded time")
    print(f"CPU {time.process_time() - t0:.0f} s; files in {out}")


if __name__ == "__main__":
    main()
