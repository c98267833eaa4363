"""The chain of one unit: measure, fit, verify, report — resumable, one unit at a time.

Each step is a stage of :mod:`calib.stages` (or the recording of
:mod:`calib.fleet.recording`); this module strings them together the way
``calib run`` does: under the unit's lock, and with ``resume`` reusing what
a previous run finished (a complete measurement, its calibration, a complete
verification through that calibration) and continuing what it left
incomplete. Nothing is printed: :class:`ChainEvents` tells a caller what
happens (the command line prints it), notes go to :mod:`calib.notes`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from calib.fleet.recording import ReportOutcome, report_and_record
from calib.notes import note
from calib.procedure.spec import SimFaults
from calib.procedure.station_file import Station, as_station
from calib.serial import check_serial
from calib.stages.fit import FitResult, fit_file
from calib.stages.measure import measure_unit
from calib.stages.recovery import screen_calibrations, screen_measurements, unit_lock
from calib.stages.verify import verify_calibration
from calib.store.calibration import file_sha256, read_calibration


class ChainEvents(Protocol):
    """What the chain tells its caller as it goes.

    Any object with these methods will do (the command line's printer is
    one); subclass this to override only some: every method here does nothing.
    """

    def stage(self, number: int, name: str, subject: str) -> None:
        """Report that stage ``number`` of 4 (``measure``, ``fit``, ``verify``, ``report``) starts on ``subject``."""
        return None

    def reused(self, path: Path) -> None:
        """Report that a file a previous run finished is reused instead of made again."""
        return None

    def fitted(self, result: FitResult) -> None:
        """Report that a calibration was fitted and written (``result.path``)."""
        return None

    def verified(self, path: Path) -> None:
        """Report that the verification measurement ``path`` is complete."""
        return None

    def reported(self, outcome: ReportOutcome) -> None:
        """Report that the unit was judged, its PDF written and its run recorded."""
        return None


class _Silent(ChainEvents):
    """The default: nothing is reported."""


@dataclass
class RunOutcome:
    """One unit's run: the files of each stage, the report and the wall time each stage took."""

    characterize: Path
    calibration: Path
    verification: Path
    report: ReportOutcome
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return self.report.report.verdict


def fit_unit(measurement: str | Path, out: str | Path | None = None, events: ChainEvents | None = None) -> FitResult:
    """Fit a characterize measurement (:func:`calib.stages.fit.fit_file`) and tell ``events``."""
    result = fit_file(measurement, out)
    (events or _Silent()).fitted(result)
    return result


def verify_unit(calibration: str | Path, rig_spec: str = "sim", out_dir: str | Path = "measurements",
                resume: bool = False, serial: str | None = None, faults: SimFaults | None = None,
                station: str | Path | Station | None = None, progress: bool | None = None,
                events: ChainEvents | None = None) -> Path:
    """Verify through ``calibration``; with ``resume``, reuse a finished verification or continue one.

    ``serial`` measures another unit through this calibration (a cross-unit
    check); by default the calibration's own unit.
    """
    events = events or _Silent()
    unit = serial or check_serial(read_calibration(calibration).serial, f"{calibration}: serial")
    if resume:
        cal_sha = file_sha256(calibration)
        found = screen_measurements(out_dir, unit, "verify")
        finished = [m for m in found.complete if str(m.attrs.get("calibration_sha256", "")) == cal_sha]
        if finished:  # a finished unit is not verified again
            events.reused(finished[0].path)
            return finished[0].path
        resume = any(str(m.attrs.get("calibration_sha256", "")) == cal_sha for m in found.incomplete)
        if not resume:
            note(f"no verification of {unit} through {calibration} to continue; starting one")
    path = verify_calibration(calibration, rig_spec, out_dir, resume, serial, faults, progress=progress,
                              station=as_station(station))
    events.verified(path)
    return path


def report_unit(verification: str | Path, reports: str | Path = "reports",
                results: str | Path | None = "measurements/results.csv", db: str | None = None,
                station: str | Path | Station | None = None, archive_root: str | Path | None = None,
                events: ChainEvents | None = None) -> ReportOutcome:
    """Judge a verification, write its PDF and record the run (:func:`calib.fleet.recording.report_and_record`).

    Reporting the same verification again records nothing new and keeps its PDF.
    """
    outcome = report_and_record(verification, reports, results, db, as_station(station), archive_root)
    (events or _Silent()).reported(outcome)
    return outcome


def run_unit(
    procedure: str | Path,
    serial: str,
    rig_spec: str = "sim",
    out_dir: str | Path = "measurements",
    reports: str | Path = "reports",
    results: str | Path | None = "measurements/results.csv",
    db: str | None = None,
    archive_root: str | Path | None = None,
    resume: bool = False,
    station: str | Path | Station | None = None,
    faults: SimFaults | None = None,
    progress: bool | None = None,
    events: ChainEvents | None = None,
) -> RunOutcome:
    """Measure, fit, verify and report one unit (``calib run``).

    With ``resume``, a complete characterize measurement of the unit is
    reused (an incomplete one is continued), so is a calibration fitted from
    it and a complete verification through that calibration; what does not
    validate is set aside (:mod:`calib.stages.recovery`), never deleted.
    The unit's lock is held throughout: a second run of the same serial is
    refused at once.
    """
    events = events or _Silent()
    station_obj = as_station(station)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def done(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    with unit_lock(out_dir, serial):
        events.stage(1, "measure", serial)
        characterize = None
        resume_measure = False
        if resume:
            found = screen_measurements(out_dir, serial, "characterize")
            if found.incomplete:
                resume_measure = True
            elif found.complete:
                characterize = found.complete[0].path
                events.reused(characterize)
        if characterize is None:
            characterize = measure_unit(procedure, serial, rig_spec, out_dir, resume_measure, faults, station_obj,
                                        progress)
        done("measure")
        events.stage(2, "fit", str(characterize))
        cal = screen_calibrations(characterize.parent, file_sha256(characterize)) if resume else None
        if cal is None:
            calibration = fit_unit(characterize, None, events).calibration_path
        else:
            calibration = cal.path
            events.reused(calibration)
        done("fit")
        events.stage(3, "verify", str(calibration))
        verification = verify_unit(calibration, rig_spec, out_dir, resume, None, faults, station_obj, progress,
                                   events)
        done("verify")
        events.stage(4, "report", "")
        outcome = report_unit(verification, reports, results, db, station_obj, archive_root, events)
        done("report")
    return RunOutcome(characterize, calibration, verification, outcome, seconds)
