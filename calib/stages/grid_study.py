"""``calib grid-study``: how much the production variant changes the calibration and the verdict.

For one unit (a serial on the virtual lab, or an archived lab measurement
replayed): the lab grid's characterize measurement and its calibration; the
production variant (:mod:`calib.procedure.production`) characterized, fitted
and verified on the same unit. Both calibrations are then judged the same
way, on the lab measurement: every check of
:func:`calib.stages.verdict.evaluate` on the lab IRs through each
calibration's filters (:func:`calib.stages.fit.predicted_metrics`), so the
difference is the calibration's, not the judge's. The production run's own
verification verdict and the station time it recorded (per stage, simulated)
are reported beside the estimates of :func:`calib.capture.schedule.estimate_unit_time_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from calib.capture.runner import new_measurement_path
from calib.capture.schedule import estimate_unit_time_s
from calib.procedure.load import parse_procedure
from calib.procedure.production import production_text
from calib.procedure.spec import Procedure
from calib.stages.fit import fit_file, predicted_metrics, procedure_of
from calib.stages.measure import characterize
from calib.stages.unit_report import build_unit_report
from calib.stages.verdict import Check, evaluate, verdict
from calib.stages.verify import verify_calibration
from calib.store.measurement import read_measurement

#: A production calibration this close to the lab's in every check (dB) is as good.
MAX_DELTA_DB = 0.5


@dataclass
class GridComparison:
    """One unit's lab-grid and production calibrations, judged on the lab measurement."""

    serial: str
    rig: str
    lab_checks: list[Check]
    production_checks: list[Check]
    production_verdict: str
    """The production run's own verification (its grid and positions)."""
    station_s: dict[str, float] = field(default_factory=dict)
    """Station time the production run recorded, per stage (simulated)."""
    production_estimate_s: float = float("nan")
    lab_estimate_s: float = float("nan")

    @property
    def deltas_db(self) -> np.ndarray:
        """Production minus lab value of every check (same order)."""
        return np.array([p.value - q.value for p, q in zip(self.production_checks, self.lab_checks, strict=True)])

    @property
    def max_delta_db(self) -> float:
        """Return the largest absolute difference between the grids, in dB."""
        return float(np.nanmax(np.abs(self.deltas_db)))

    def lines(self) -> list[str]:
        """Return the comparison as console lines."""
        out = [f"{self.serial} ({self.rig}): production vs lab calibration, both judged on the lab measurement",
               f"  {'check':<44}{'lab':>8}{'prod':>8}{'delta':>8}"]
        for lab, prod, delta in zip(self.lab_checks, self.production_checks, self.deltas_db, strict=True):
            out.append(f"  {lab.name:<44}{lab.value:>8.2f}{prod.value:>8.2f}{delta:>+8.2f}"
                       + ("" if lab.passed == prod.passed else "  verdict changes"))
        worst = self.max_delta_db
        total = sum(self.station_s.values())
        out += [
            f"  max |delta| {worst:.2f} dB ({'<=' if worst <= MAX_DELTA_DB else '>'} {MAX_DELTA_DB:g}); verdict on the "
            f"lab measurement: lab {verdict(self.lab_checks)}, production {verdict(self.production_checks)}; "
            f"production verification {self.production_verdict}",
            f"  station time: production {total:.1f} s recorded ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.station_s.items())
            + f"), estimate {self.production_estimate_s:.1f} s ({self.production_estimate_s / total - 1:+.1%}); "
            f"lab estimate {self.lab_estimate_s:.1f} s",
        ]
        return out


def compare_grids(lab_procedure: Procedure, serial: str, out_dir: str | Path, rig_spec: str = "sim",
                  lab_measurement: str | Path | None = None) -> GridComparison:
    """Characterize (unless ``lab_measurement`` is given), fit both grids, verify the production one, compare.

    ``rig_spec`` ``"replay:<lab characterize.h5>"`` with ``lab_measurement`` the same file replays an
    archived unit: the production variant is measured from its IRs.
    """
    out = Path(out_dir)
    lab_dir, prod_dir = out / "lab", out / "production"
    prod_file = out / f"{lab_procedure.product.id}-production.toml"
    prod_file.parent.mkdir(parents=True, exist_ok=True)
    prod_file.write_text(production_text(lab_procedure))
    production = parse_procedure(prod_file.read_text(), source=str(prod_file))

    if lab_measurement is None:
        lab_measurement = characterize(lab_procedure, serial, rig_spec, new_measurement_path(lab_dir, serial,
                                                                                            "characterize"),
                                       progress=False)
    lab_path = Path(lab_measurement)
    (lab_dir / serial).mkdir(parents=True, exist_ok=True)
    lab_fit = fit_file(lab_path, lab_dir / serial / f"calibration-{lab_path.stem}.h5")
    prod_fit = fit_file(characterize(production, serial, rig_spec,
                                     new_measurement_path(prod_dir, serial, "characterize"), progress=False))
    verified = build_unit_report(verify_calibration(prod_fit.calibration_path, rig_spec, prod_dir, progress=False))

    lab = read_measurement(lab_path, lazy=True)
    judge = procedure_of(lab)
    checks = [evaluate(judge, predicted_metrics(judge, lab, fit.calibration)) for fit in (lab_fit, prod_fit)]
    station = {}
    for stage, path in (("characterize", verified.files["characterize"]), ("verify", verified.files["verification"])):
        with h5py.File(path, "r") as f:
            station[stage] = float(f.attrs["station_time_s"])
    return GridComparison(
        serial=serial, rig=rig_spec, lab_checks=checks[0], production_checks=checks[1],
        production_verdict=verified.verdict, station_s=station,
        production_estimate_s=estimate_unit_time_s(production), lab_estimate_s=estimate_unit_time_s(lab_procedure),
    )
