"""One verified unit: its files tied together (characterize -> calibration -> verify), both metric sets and the checks.

The verify stage builds a :class:`UnitReport`; the PDF, the results table and the
results database read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from calib.errors import FileFormatError
from calib.procedure.layout import sphere_problem
from calib.procedure.load import parse_procedure
from calib.procedure.spec import Procedure
from calib.stages.area_verify import HiddenHeads, hidden_checks, predicted_area_map, verified_hidden
from calib.stages.custody import check_custody
from calib.stages.fit import predicted_metrics
from calib.stages.gating import Gates, measurement_gates
from calib.stages.product_metrics import Metrics
from calib.stages.spinorama import unit_spinorama
from calib.stages.tracked import AreaMap
from calib.stages.verdict import Check, driver_checks, evaluate, verdict
from calib.stages.verify import verified_metrics
from calib.store.calibration import Calibration, file_sha256, read_calibration
from calib.store.measurement import Measurement, read_measurement


@dataclass
class UnitReport:
    """Everything known about one verified unit.

    Attributes
    ----------
    procedure : Procedure
        As stored in the calibration file.
    characterize, verification : Measurement
        The characterize measurement the filters were fitted from, and the
        verify re-measurement through the filters (stage ``verify``).
    calibration : Calibration
    predicted, verified : Metrics
        :func:`calib.stages.product_metrics.product_metrics` of the prediction and of the re-measurement.
    checks, predicted_checks : list of Check
        Verdict lines of the verified (binding) and the predicted metrics.
    verdict : str
        ``"PASS"`` or ``"FAIL"`` (from ``checks``).
    files : dict
        ``characterize``, ``calibration``, ``verification`` paths.
    hashes : dict
        SHA-256 of each of ``files``.
    station : str
        Where it was measured (the rig name, e.g. ``sim``).
    gates : Gates or None
        The characterize measurement's IR gates (:mod:`calib.stages.gating`).
    spinorama : dict or None
        ``"predicted"`` and ``"verified"`` :class:`calib.stages.spinorama.Spinorama`
        when the procedure measured the sphere, else None.
    area_map : AreaMap or None
        A calibration with a listening area's bank: fixed against tracked
        cancellation over the area, predicted from the characterize grid
        (:func:`calib.stages.area_verify.predicted_area_map`).
    hidden : HiddenHeads or None
        The hidden heads verified through their cells (their checks are in ``checks``).
    """

    procedure: Procedure
    characterize: Measurement
    calibration: Calibration
    verification: Measurement
    predicted: Metrics
    verified: Metrics
    checks: list[Check]
    predicted_checks: list[Check]
    verdict: str
    files: dict[str, Path] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    station: str = "sim"
    gates: Gates | None = None
    spinorama: dict | None = None
    area_map: AreaMap | None = None
    hidden: HiddenHeads | None = None

    @property
    def serial(self) -> str:
        """The unit measured in verification."""
        return self.verification.serial

    @property
    def simulated(self) -> bool:
        """True when no real air was involved."""
        return self.verification.simulated or self.characterize.simulated


def build_unit_report(verify_path: str | Path, station: str | None = None) -> UnitReport:
    """Read a verify measurement and everything it refers to, compute both metric sets and the checks."""
    verify_path = Path(verify_path)
    verification = read_measurement(verify_path, stage="verify")
    if not verification.complete:
        raise FileFormatError(f"{verify_path}: complete: expected a complete verification, got an incomplete one "
                              "(continue it with calib verify --resume)")
    chain = check_custody(verify_path, verification.attrs)
    cal_path, char_path = chain.calibration, chain.characterize
    cal = read_calibration(cal_path)
    if cal.serial != str(verification.attrs["calibration_serial"]):
        raise FileFormatError(f"{cal_path}: serial: expected {verification.attrs['calibration_serial']!s} "
                              f"(as {verify_path} records), got {cal.serial}")
    characterize = read_measurement(char_path, stage="characterize")
    if cal.measurement_sha256 != verification.attrs["characterize_sha256"]:
        raise FileFormatError(f"{cal_path}: measurement_sha256: expected the characterize file {char_path}, "
                              "got another (the calibration was not fitted from it)")
    proc = parse_procedure(cal.procedure_text, source=f"{cal_path}:/procedure")
    gates = measurement_gates(characterize, proc)
    predicted = predicted_metrics(proc, characterize, cal, gates)
    verified = verified_metrics(proc, verification, cal)
    hidden = verified_hidden(proc, verification, cal)
    checks = driver_checks(proc, characterize) + evaluate(proc, verified) + hidden_checks(hidden)
    area_map = predicted_area_map(proc, characterize, cal, gates) if cal.area is not None else None
    spinorama = None
    if sphere_problem(proc) is None:  # the procedure measured the sphere: CTA-2034 curves, predicted and verified
        predicted_spin = unit_spinorama(proc, characterize, cal, gates)
        spinorama = {"predicted": predicted_spin,
                     "verified": unit_spinorama(proc, verification, cal, bands=predicted_spin.bands)}
    files = {"characterize": char_path, "calibration": cal_path, "verification": verify_path}
    return UnitReport(
        procedure=proc,
        characterize=characterize,
        calibration=cal,
        verification=verification,
        predicted=predicted,
        verified=verified,
        checks=checks,
        predicted_checks=evaluate(proc, predicted),
        verdict=verdict(checks),
        files=files,
        hashes={k: file_sha256(v) for k, v in files.items()},
        station=station or verification.rig,
        gates=gates,
        spinorama=spinorama,
        area_map=area_map,
        hidden=hidden,
    )
