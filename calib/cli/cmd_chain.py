"""``calib fit``, ``calib verify``, ``calib report`` and ``calib run``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from calib.cli.cmd_measure import RIG_HELP, check_measure_inputs, parse_faults
from calib.cli.output import check_table, progress_bars, say, table, verdict_line, warn
from calib.cli.validate import SERIAL, check_folder, check_input_file, check_output_file
from calib.serial import check_serial

if TYPE_CHECKING:  # annotations only: the command modules import the chain lazily (calib --help stays fast)
    from calib.fleet.recording import ReportOutcome
    from calib.stages.fit import FitResult
    from calib.stages.unit_report import UnitReport

EXIT_FAIL = 1


class CliEvents:
    """Print what the chain (:class:`calib.chain.ChainEvents`) reports, as ``calib`` always has."""

    def stage(self, number: int, name: str, subject: str) -> None:
        """Print ``[n/4] stage subject``."""
        say(f"[{number}/4] {name}" + (f" {subject}" if subject else ""))

    def reused(self, path: Path) -> None:
        """Print the reused file."""
        say(f"      reusing {path}")

    def fitted(self, result: FitResult) -> None:
        """Print the calibration written, the predicted verdict and the failing (all: --verbose) checks."""
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

    def verified(self, path: Path) -> None:
        """Print the verification file."""
        say(f"verification: {path}")

    def reported(self, outcome: ReportOutcome) -> None:
        """Print the failing (all: --verbose) checks, the PDF and the recorded run."""
        report = outcome.report
        # Every check with --verbose, the failing ones by default, none with --quiet.
        for line in check_table(report.checks if level_is_verbose() else [c for c in report.checks if not c.passed]):
            say(line)
        say(f"report: {outcome.pdf}" + ("" if outcome.pdf_written else " (already written for this verification)"))
        state = "recorded" if outcome.recorded.created else "already recorded"
        say(f"results: run {outcome.recorded.run_id} {state} in {_shown(outcome.db_url)}; export {outcome.results}")


def level_is_verbose() -> bool:
    """Return True under ``calib --verbose``."""
    from calib.cli.output import VERBOSE, level

    return level() >= VERBOSE


@click.command()
@click.argument("measurement", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Calibration file (default: beside the measurement).")
def fit(measurement: str, out: str | None) -> None:
    """Fit a unit's CTC and beam filters from a characterize MEASUREMENT."""
    from calib.chain import fit_unit

    check_input_file(measurement, "measurement")
    if out is not None:
        check_output_file(out, "--out", may_exist=False)
    fit_unit(measurement, out, CliEvents())


def _check_report_outputs(reports: str, results: str) -> None:
    """Everything the report stage writes to, checked before anything is written."""
    from calib.report.results import read_results

    check_folder(reports, "--reports")
    check_output_file(results, "--results", may_exist=True)
    if Path(results).exists():
        read_results(results)  # an unreadable export stops the command before the PDF is written


def _verdict(report: UnitReport) -> int:
    """Print the unit's one verdict line and return the exit code (0 PASS, 1 FAIL)."""
    verdict_line(report.serial, report.verdict, len(report.checks), sum(not c.passed for c in report.checks))
    return 0 if report.verdict == "PASS" else EXIT_FAIL


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


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
    from calib.chain import report_unit, verify_unit
    from calib.stages.recovery import unit_lock
    from calib.store.calibration import read_calibration

    check_input_file(calibration, "calibration")
    fault_model = parse_faults(faults) if faults else None
    if station is not None:
        check_input_file(station, "station")
    check_folder(out_dir, "--out")
    _check_report_outputs(reports, results)
    serial = unit or check_serial(read_calibration(calibration).serial, f"{calibration}: serial")
    events = CliEvents()
    with unit_lock(out_dir, serial):
        verification = verify_unit(calibration, rig_spec, out_dir, resume, unit, fault_model, station,
                                   progress_bars(), events)
        return _verdict(report_unit(verification, reports, results, db, station, archive_root, events).report)


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
    from calib.chain import report_unit

    check_input_file(verification, "verification")
    _check_report_outputs(reports, results)
    return _verdict(report_unit(verification, reports, results, db, station, archive_root, CliEvents()).report)


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False))
@click.option("--serial", required=True, type=SERIAL, help="Unit serial number.")
@_with_common
def run(procedure: str, serial: str, rig_spec: str, out_dir: str, reports: str, results: str, db: str | None,
        archive_root: str | None, resume: bool, station: str | None, faults: tuple[str, ...]) -> int:
    """Measure, fit, verify and report one unit (exit 0 PASS, 1 FAIL, 2 error)."""
    from calib.chain import run_unit

    fault_model = parse_faults(faults) if faults else None
    check_measure_inputs(procedure, station, out_dir, rig_spec)
    _check_report_outputs(reports, results)
    outcome = run_unit(procedure, serial, rig_spec, out_dir, reports, results, db, archive_root, resume, station,
                       fault_model, progress_bars(), CliEvents())
    paths = {"measure": outcome.characterize, "fit": outcome.calibration, "verify": outcome.verification,
             "report": outcome.report.pdf}
    say(summary_table([(stage, str(paths[stage]), seconds) for stage, seconds in outcome.seconds.items()]))
    return _verdict(outcome.report.report)


def summary_table(rows: list[tuple[str, str, float]]) -> str:
    """Return the closing table of ``calib run``: stage, output, wall time (the verdict line follows it)."""
    total = sum(seconds for _, _, seconds in rows)
    cells = [["stage", "output", "time"]] + [[stage, path, f"{seconds:.1f}s"] for stage, path, seconds in rows]
    return "\n".join(table([*cells, ["total", "", f"{total:.1f}s"]], right=(2,), indent=""))
