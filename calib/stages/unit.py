"""Tie the files of one unit together: characterize -> calibration -> verify -> report."""

from __future__ import annotations

from pathlib import Path

from calib.errors import FileFormatError
from calib.procedure.load import parse_procedure
from calib.report.model import UnitReport
from calib.stages.checks import driver_checks, evaluate, verdict
from calib.stages.fit import predicted_metrics
from calib.stages.gating import measurement_gates
from calib.stages.spinorama import sphere_problem, unit_spinorama
from calib.stages.verify import verified_metrics
from calib.stages.custody import check_custody
from calib.store.calibration import file_sha256, read_calibration
from calib.store.measurement import read_measurement


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
    checks = driver_checks(proc, characterize) + evaluate(proc, verified)
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
    )
