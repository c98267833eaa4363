"""What one reported unit puts in the results database: three stage runs with their checks, figures and files.

:func:`unit_record` turns a :class:`~calib.stages.unit_report.UnitReport` into a
plain :class:`UnitRecord` (no file handles, no arrays), which
:meth:`calib.fleet.store.ResultsStore.record` writes in one transaction. The
import of an old ``results.csv`` and the benchmarks build the same records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from calib.errors import CalibError
from calib.report.results import summary_metrics
from calib.stages.product_metrics import horizontal_mic_index
from calib.stages.unit_report import UnitReport
from calib.stages.verdict import INPUTS, Check
from calib.store.archive import ArchivePathError, archive_path
from calib.store.calibration import file_sha256


@dataclass
class CheckRow:
    """One check as stored (``op``: ``>=``, ``<=`` or ``==``)."""

    name: str
    value: float
    limit: float
    unit: str
    op: str
    passed: bool
    detail: str = ""

    @classmethod
    def of(cls, check: Check) -> CheckRow:
        """Return the row of a report's :class:`~calib.stages.verdict.Check`."""
        return cls(check.name, float(check.value), float(check.limit), check.unit, check.op, bool(check.passed),
                   check.detail)


@dataclass
class StageRun:
    """One stage of one unit, keyed by the SHA-256 of the file it wrote."""

    stage: str
    sha256: str
    time_utc: str
    procedure_sha256: str = ""
    rig: str = ""
    simulated: bool = False
    verdict: str | None = None
    calibration_serial: str | None = None
    checks: list[CheckRow] = field(default_factory=list)
    files: list[tuple[str, str, str]] = field(default_factory=list)  # (role, path relative to root, sha256)
    metrics: dict[str, float] = field(default_factory=dict)
    bands: list[tuple[str, float, float]] = field(default_factory=list)  # (curve name, band Hz, value)
    serial: str | None = None  # the unit, if not the record's (cross-unit checks: characterize/fit of another)


@dataclass
class UnitRecord:
    """Everything one report records: identity and up to three stage runs (characterize -> fit -> verify)."""

    product_id: str
    product_name: str
    serial: str
    station: str
    runs: list[StageRun]
    limit_set_id: int | None = None


def utc_text(stamp: str) -> str:
    """Any ISO-8601 time (with offset or ``Z``) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    try:
        ts = pd.Timestamp(stamp)
    except ValueError:
        raise CalibError(f"time {stamp!r}: expected an ISO-8601 time") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def driver_figures(report: UnitReport) -> dict[str, float]:
    """Per-driver figures of the characterize measurement, for drift charts.

    ``driver <name> sensitivity_db``: IR energy (broadband gain, dB re full
    scale in per full scale out) at the azimuth where the driver is loudest,
    on the horizontal arc microphone — a drifting driver or amplifier moves it.
    ``latency_ms``: median loopback latency over the steps; ``thd_pct``:
    median THD of the sweeps on that microphone.
    """
    meas = report.characterize
    mic = horizontal_mic_index(report.procedure)
    irs = np.asarray(meas.directivity_ir[:, mic], dtype=float)  # [A, S, N]
    energy = np.nansum(irs**2, axis=-1)  # [A, S]
    quality = meas.quality.get("directivity", {})
    latency = np.asarray(quality.get("latency_samples", np.full(energy.shape, -1)), dtype=float)
    thd = np.asarray(quality.get("thd_percent", np.full((energy.shape[0], mic + 1, energy.shape[1]), np.nan)),
                     dtype=float)
    out: dict[str, float] = {}
    for s, driver in enumerate(meas.sources):
        best = float(np.nanmax(energy[:, s])) if np.any(np.isfinite(energy[:, s])) else float("nan")
        out[f"driver {driver} sensitivity_db"] = 10.0 * np.log10(best) if best > 0 else float("nan")
        lat = latency[:, s]
        lat = lat[lat >= 0]
        latency_ms = np.median(lat) / meas.sample_rate * 1e3 if lat.size else np.nan
        out[f"driver {driver} latency_ms"] = float(latency_ms)
        t = thd[:, mic, s]
        t = t[np.isfinite(t)]
        out[f"driver {driver} thd_pct"] = float(np.median(t)) if t.size else float("nan")
    return out


def band_curves(report: UnitReport) -> list[tuple[str, float, float]]:
    """Return verified per-band curves: cancellation per input and position, beam null depth and main lobe."""
    m = report.verified
    out: list[tuple[str, float, float]] = []
    cg = np.asarray(m.ctc.cancellation_db, dtype=float)  # [2, P, B]
    for k, inp in enumerate(INPUTS):
        for p, pos in enumerate(m.ctc.positions):
            out += [(f"cancellation {inp} @ {pos}", float(f), float(v))
                    for f, v in zip(m.ctc.bands_hz, cg[k, p], strict=True)]
    if m.beam is not None:
        null_deg = report.procedure.targets.beam.null_deg if report.procedure.targets.beam else 0.0
        for i, side in enumerate(("+", "-")):
            out += [(f"beam null depth at {side}{null_deg:g} deg", float(f), float(v))
                    for f, v in zip(m.beam.bands_hz, m.beam.null_depth_db[i], strict=True)]
        out += [("beam main lobe", float(f), float(v))
                for f, v in zip(m.beam.bands_hz, m.beam.main_lobe_db, strict=True)]
    return out


def unit_record(report: UnitReport, root: str | Path, station: str | None = None) -> UnitRecord:
    """Return the record of a verified unit, file paths relative to the archive ``root``.

    Raises
    ------
    ArchivePathError
        If one of the files is outside ``root``.
    """
    paths = {key: archive_path(path, root) for key, path in report.files.items()}
    cal = report.calibration
    ver = report.verification
    char = report.characterize
    char_run = StageRun(
        "characterize", report.hashes["characterize"], utc_text(char.created_utc), char.procedure_sha256, char.rig,
        bool(char.simulated), files=[("characterize", paths["characterize"], report.hashes["characterize"])],
        metrics=driver_figures(report), serial=char.serial,
    )
    predicted_failed = [c for c in report.predicted_checks if not c.passed]
    fit_run = StageRun(
        "fit", report.hashes["calibration"], utc_text(cal.created_utc), cal.procedure_sha256, "", bool(char.simulated),
        verdict="FAIL" if predicted_failed or not report.predicted_checks else "PASS",
        checks=[CheckRow.of(c) for c in report.predicted_checks],
        files=[("calibration", paths["calibration"], report.hashes["calibration"])], serial=cal.serial,
    )
    files = [("verification", paths["verification"], report.hashes["verification"])]
    verify_run = StageRun(
        "verify", report.hashes["verification"], utc_text(ver.created_utc), ver.procedure_sha256, ver.rig,
        bool(report.simulated), verdict=report.verdict, calibration_serial=cal.serial,
        checks=[CheckRow.of(c) for c in report.checks], files=files,
        metrics=summary_metrics(report), bands=band_curves(report),
    )
    return UnitRecord(report.procedure.product.id, report.procedure.product.name, report.serial,
                      station or report.station, [char_run, fit_run, verify_run])


def add_report_file(record: UnitRecord, pdf: str | Path, root: str | Path) -> None:
    """Add the PDF report to the record's verify run (written after the record was built)."""
    record.runs[-1].files.append(("report", archive_path(pdf, root), file_sha256(pdf)))


def default_root(paths: list[Path]) -> Path:
    """Return the current folder if it holds every file, else the files' deepest common folder."""
    here = Path.cwd().resolve()
    full = [Path(p).resolve() for p in paths]
    if all(here in p.parents for p in full):
        return here
    return Path(os.path.commonpath([str(p.parent) for p in full]))


def relative_or_none(path: str, root: str | Path) -> str | None:
    """``path`` relative to ``root`` if it lies inside (old CSV rows mix absolute and relative paths)."""
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute():
        return PurePosixPath(*p.parts).as_posix()
    try:
        return archive_path(p, root)
    except ArchivePathError:
        return None

