"""``calib fit``, ``calib verify``, ``calib report`` and ``calib run``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from calib.cli.cmd_measure import RIG_HELP, check_measure_inputs, measure_unit, parse_faults
from calib.cli.output import check_table, progress_bars, say, table, verdict_line, warn
from calib.cli.recovery import screen_calibrations, screen_measurements, unit_lock
from calib.cli.validate import SERIAL, check_folder, check_input_file, check_output_file
from calib.serial import check_serial

EXIT_FAIL = 1


def _fit(measurement: str, out: str | None) -> Path:
    from calib.stages.fit import fit_file

    check_input_file(measurement, "measurement")
    if out is not None:
        check_output_file(out, "--out", may_exist=False)
    result = fit_file(measurement, out)
    failing = [c for c in result.checks if not c.passed]
    for warning in result.warnings:
        warn(warning)
    say(f"calibration: {result.path}")
    # The prediction covers the acoustic checks only: the driver checks (presence, polarity) judge
    # the re-measured drivers, so the verification has more checks than the prediction.
    say(f"predicted: {len(result.checks) - len(failing)} of {len(result.checks)} acoustic checks pass "
        "(driver presence and polarity are judged on the verification only)")
    for line in check_table(result.checks if level_is_verbose() else failing, prefix="predicted "):
        say(line)
    assert result.path is not None  # fit_file always writes the calibration file
    return result.path


def level_is_verbose() -> bool:
    """Return True under ``calib --verbose``."""
    from calib.cli.output import VERBOSE, level

    return level() >= VERBOSE


@click.command()
@click.argument("measurement", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Calibration file (default: beside the measurement).")
def fit(measurement: str, out: str | None) -> None:
    """Fit a unit's CTC and beam filters from a characterize MEASUREMENT."""
    _fit(measurement, out)


def _verify(calibration: str, rig: str, out_dir: str, resume: bool, unit: str | None,
            faults: tuple[str, ...], station: str | None) -> Path:
    """Verify through ``calibration``; with ``resume``, reuse or continue what validates (see recovery)."""
    from calib.stages.verify import verify_calibration
    from calib.store.calibration import file_sha256, read_calibration

    serial = unit or check_serial(read_calibration(calibration).serial, f"{calibration}: serial")
    if resume:
        cal_sha = file_sha256(calibration)
        found = screen_measurements(out_dir, serial, "verify")
        finished = [m for m in found.complete if str(m.attrs.get("calibration_sha256", "")) == cal_sha]
        if finished:  # a finished unit is not verified again
            say(f"      reusing {finished[0].path}")
            return finished[0].path
        resume = any(str(m.attrs.get("calibration_sha256", "")) == cal_sha for m in found.incomplete)
        if not resume:
            click.echo(f"calib: note: no verification of {serial} through {calibration} to continue; starting one",
                       err=True)
    station_obj = None
    if station is not None:
        from calib.procedure.station import load_station

        station_obj = load_station(station)
    path = verify_calibration(calibration, rig, out_dir, resume, unit, parse_faults(faults) if faults else None,
                              progress=progress_bars(), station=station_obj)
    say(f"verification: {path}")
    return path


def _check_report_outputs(reports: str, results: str) -> None:
    """Everything ``_report`` writes to, checked before anything is written."""
    from calib.report.results import read_results

    check_folder(reports, "--reports")
    check_output_file(results, "--results", may_exist=True)
    if Path(results).exists():
        read_results(results)  # an unreadable export stops the command before the PDF is written


def _report(verify_path: Path, reports: str, results: str, db: str | None = None, station: str | None = None,
            archive_root: str | None = None):
    from calib.fleet.recording import report_and_record

    _check_report_outputs(reports, results)
    station_obj = None
    if station is not None:
        from calib.procedure.station import load_station

        station_obj = load_station(station)
    # The one place a run is recorded (idempotent: the same verification reported again adds nothing).
    outcome = report_and_record(verify_path, reports, results, db, station_obj, archive_root)
    report, pdf = outcome.report, outcome.pdf
    # Every check with --verbose, the failing ones by default, none with --quiet.
    for line in check_table(report.checks if level_is_verbose() else [c for c in report.checks if not c.passed]):
        say(line)
    say(f"report: {pdf}" + ("" if outcome.pdf_written else " (already written for this verification)"))
    state = "recorded" if outcome.recorded.created else "already recorded"
    say(f"results: run {outcome.recorded.run_id} {state} in {_shown(outcome.db_url)}; export {results}")
    return report, pdf


def _verdict(report) -> int:
    """Print the unit's one verdict line and return the exit code (0 PASS, 1 FAIL)."""
    verdict_line(report.serial, report.verdict, len(report.checks), sum(not c.passed for c in report.checks))
    return _exit_code(report)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _exit_code(report) -> int:
    return 0 if report.verdict == "PASS" else EXIT_FAIL


_common = [
    click.option("--rig", "rig_spec", default="sim", show_default=True, help=RIG_HELP),
    click.option("--out", "out_dir", default="measurements", show_default=True, help="Measurement folder."),
    click.option("--reports", default="reports", show_default=True, help="Report folder."),
    click.option("--results", default="measurements/results.csv", show_default=True, help="Results CSV export."),
    click.option("--db", help="Results database URL or SQLite file (default: $CALIB_RESULTS_DB, the station's "
                 "[results] url, else results.db beside --results)."),
    click.option("--archive-root", type=click.Path(file_okay=False), help="Recorded file paths are relative to it "
                 "(default: the current folder)."),
    click.option("--resume", is_flag=True, help="Continue an interrupted run of this unit."),
    click.option("--station", type=click.Path(dir_okay=False), help="Station file (channel maps, hardware)."),
    click.option("--sim-fault", "faults", multiple=True,
                 help="Simulated fault: dead=DRIVER or reversed=DRIVER (added to the procedure's [sim.faults])."),
]


def _with_common(fn):
    for option in reversed(_common):
        fn = option(fn)
    return fn


@click.command()
@click.argument("calibration", type=click.Path(dir_okay=False))
@click.option("--serial", "unit", type=SERIAL,
              help="Measure this unit instead of the calibration's own (cross-unit check).")
@_with_common
def verify(calibration: str, unit: str | None, rig_spec: str, out_dir: str, reports: str, results: str,
           db: str | None, archive_root: str | None, resume: bool, station: str | None,
           faults: tuple[str, ...]) -> int:
    """Re-measure through the filters of CALIBRATION and judge against the targets (exit 0 PASS, 1 FAIL)."""
    from calib.store.calibration import read_calibration

    check_input_file(calibration, "calibration")
    if faults:
        parse_faults(faults)
    if station is not None:
        check_input_file(station, "station")
    check_folder(out_dir, "--out")
    _check_report_outputs(reports, results)
    serial = unit or check_serial(read_calibration(calibration).serial, f"{calibration}: serial")
    with unit_lock(out_dir, serial):
        verification = _verify(calibration, rig_spec, out_dir, resume, unit, faults, station)
        return _verdict(_report(verification, reports, results, db, station, archive_root)[0])


@click.command()
@click.argument("verification", type=click.Path(dir_okay=False))
@click.option("--reports", default="reports", show_default=True, help="Report folder.")
@click.option("--results", default="measurements/results.csv", show_default=True, help="Results CSV export.")
@click.option("--db", help="Results database URL or SQLite file (default: results.db beside --results).")
@click.option("--station", type=click.Path(dir_okay=False), help="Station file (its name and [results] url).")
@click.option("--archive-root", type=click.Path(file_okay=False), help="Recorded paths are relative to it.")
def report(verification: str, reports: str, results: str, db: str | None, station: str | None,
           archive_root: str | None) -> int:
    """Write the PDF report of a VERIFICATION measurement and record it (exit 0 PASS, 1 FAIL, 2 error)."""
    check_input_file(verification, "verification")
    return _verdict(_report(Path(verification), reports, results, db, station, archive_root)[0])


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False))
@click.option("--serial", required=True, type=SERIAL, help="Unit serial number.")
@_with_common
def run(procedure: str, serial: str, rig_spec: str, out_dir: str, reports: str, results: str, db: str | None,
        archive_root: str | None, resume: bool, station: str | None, faults: tuple[str, ...]) -> int:
    """Measure, fit, verify and report one unit (exit 0 PASS, 1 FAIL, 2 error)."""
    from calib.store.calibration import file_sha256

    check_measure_inputs(procedure, faults, station, out_dir, rig_spec)
    _check_report_outputs(reports, results)
    rows: list[tuple[str, str, float]] = []
    clock = time.perf_counter()

    def done(stage: str, path: Path) -> None:
        nonlocal clock
        now = time.perf_counter()
        rows.append((stage, str(path), now - clock))
        clock = now

    with unit_lock(out_dir, serial):
        say(f"[1/4] measure {serial}")
        characterize = None
        resume_measure = False
        if resume:
            found = screen_measurements(out_dir, serial, "characterize")
            if found.incomplete:
                resume_measure = True
            elif found.complete:
                characterize = found.complete[0].path
                say(f"      reusing {characterize}")
        if characterize is None:
            characterize = measure_unit(procedure, serial, rig_spec, out_dir, resume_measure, faults, station)
        done("measure", characterize)
        say(f"[2/4] fit {characterize}")
        cal = screen_calibrations(characterize.parent, file_sha256(characterize)) if resume else None
        if cal is None:
            calibration = _fit(str(characterize), None)
        else:
            calibration = cal.path
            say(f"      reusing {calibration}")
        done("fit", calibration)
        say(f"[3/4] verify {calibration}")
        verification = _verify(str(calibration), rig_spec, out_dir, resume, None, faults, station)
        done("verify", verification)
        say("[4/4] report")
        report, pdf = _report(verification, reports, results, db, station, archive_root)
        done("report", pdf)
    say(summary_table(rows))
    return _verdict(report)


def summary_table(rows: list[tuple[str, str, float]]) -> str:
    """Return the closing table of ``calib run``: stage, output, wall time (the verdict line follows it)."""
    total = sum(seconds for _, _, seconds in rows)
    cells = [["stage", "output", "time"]] + [[stage, path, f"{seconds:.1f}s"] for stage, path, seconds in rows]
    return "\n".join(table([*cells, ["total", "", f"{total:.1f}s"]], right=(2,), indent=""))
