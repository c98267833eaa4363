"""Tie the files of one unit together: characterize -> calibration -> verify -> report."""

from __future__ import annotations

from pathlib import Path

import h5py

from calib.errors import FileFormatError
from calib.procedure.load import parse_procedure
from calib.report.model import UnitReport
from calib.stages.checks import driver_checks, evaluate, verdict
from calib.stages.fit import predicted_metrics
from calib.stages.gating import measurement_gates
from calib.stages.verify import verified_metrics
from calib.store.calibration import file_sha256, read_calibration
from calib.store.measurement import read_measurement


def find_by_sha256(folder: Path, pattern: str, sha256: str) -> Path | None:
    """The file in ``folder`` matching ``pattern`` whose SHA-256 is ``sha256``."""
    for path in sorted(folder.glob(pattern), reverse=True):
        if file_sha256(path) == sha256:
            return path
    return None


def calibration_fitted_from(characterize: Path) -> Path | None:
    """The newest calibration beside ``characterize`` that was fitted from it (its ``measurement_sha256``)."""
    sha = file_sha256(characterize)
    for path in sorted(characterize.parent.glob("calibration-*.h5"), reverse=True):
        with h5py.File(path, "r") as f:
            if str(f.attrs.get("measurement_sha256", "")) == sha:
                return path
    return None


def calibration_path_of(verify_path: Path) -> Path:
    """The calibration file a verify measurement was made with (its ``calibration_path`` attribute)."""
    with h5py.File(verify_path, "r") as f:
        value = f.attrs.get("calibration_path")
    if value is None:
        raise FileFormatError(f"{verify_path}: calibration_path: expected the attribute of a verify measurement, got none")
    path = Path(str(value))
    if not path.exists():
        raise FileFormatError(f"{verify_path}: calibration_path: {path} does not exist (moved?)")
    return path


def build_unit_report(verify_path: str | Path, station: str | None = None) -> UnitReport:
    """Read a verify measurement and everything it refers to, compute both metric sets and the checks."""
    verify_path = Path(verify_path)
    verification = read_measurement(verify_path)
    if verification.stage != "verify":
        raise FileFormatError(f"{verify_path}: stage: expected 'verify', got {verification.stage!r}")
    if not verification.complete:
        raise FileFormatError(f"{verify_path}: incomplete verification (continue it with calib verify --resume)")
    cal_path = calibration_path_of(verify_path)
    cal = read_calibration(cal_path)
    char_path = find_by_sha256(cal_path.parent, "characterize-*.h5", cal.measurement_sha256)
    if char_path is None:
        raise FileFormatError(
            f"{cal_path}: measurement_sha256: no characterize file in {cal_path.parent} has {cal.measurement_sha256[:16]}..."
        )
    characterize = read_measurement(char_path)
    proc = parse_procedure(cal.procedure_text, source=f"{cal_path}:/procedure")
    gates = measurement_gates(characterize, proc)
    predicted = predicted_metrics(proc, characterize, cal, gates)
    verified = verified_metrics(proc, verification, cal)
    checks = driver_checks(proc, characterize) + evaluate(proc, verified)
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
    )
