"""Recording a reported verification: the one place a run enters the results store.

``calib verify``, ``calib report`` and ``calib run`` all end here. The
newest golden limits of the product (if any) are added to the checks before
the PDF is written, the unit is recorded (idempotently: reporting the same
verification again records nothing new), and only a newly created run is
appended to the ``results.csv`` export.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from calib.fleet.db import resolve_url
from calib.fleet.limits import golden_checks, load_limits
from calib.fleet.record import add_report_file, archive_path, default_root, unit_record
from calib.fleet.store import Recorded, ResultsStore
from calib.stages.unit_report import UnitReport
from calib.stages.verdict import verdict


@dataclass
class ReportOutcome:
    """A reported unit: the report (with golden checks), its PDF, the store's answer and where it went."""

    report: UnitReport
    pdf: Path
    recorded: Recorded
    db_url: str
    root: Path
    limits_version: int | None
    pdf_written: bool = True
    results: str | Path | None = None
    """The CSV export the row went to (as given)."""


def report_and_record(verify_path: str | Path, reports: str | Path, results_csv: str | Path | None,
                      db: str | None = None, station=None, archive_root: str | Path | None = None,
                      use_limits: bool = True) -> ReportOutcome:
    """Build the unit report of ``verify_path``, judge it, write its PDF, record it and export its row.

    Parameters
    ----------
    db : str, optional
        Database URL or SQLite path; default ``$CALIB_RESULTS_DB``, the
        station's ``[results] url``, else ``results.db`` beside ``results_csv``
        (``measurements/results.db``).
    station : Station, optional
        Its name is the run's station (else the rig name) and its URL the database.
    archive_root : path, optional
        Stored file paths are relative to it; default the current folder, or
        the files' common folder if they lie elsewhere.
    """
    from calib.report.pdf import is_report_of, write_report
    from calib.report.results import DEFAULT_RESULTS_CSV, append_result
    from calib.stages.unit_report import build_unit_report

    station_name = station.station.name if station is not None else None
    report = build_unit_report(verify_path, station=station_name)
    csv_path = Path(results_csv) if results_csv else Path(DEFAULT_RESULTS_CSV)
    url = resolve_url(db, station.results.url if station is not None else None, csv_path.parent / "results.db")
    pdf_path = Path(reports) / f"{report.serial}.pdf"
    root = Path(archive_root) if archive_root else default_root([*report.files.values(), pdf_path])
    archive_path(pdf_path, root)  # fail before anything is written
    with ResultsStore(url) as store:
        record = unit_record(report, root, station_name)
        limits = load_limits(store, report.procedure.product.id) if use_limits else None
        if limits is not None:
            checks = report.checks + golden_checks(limits, record.runs[-1])
            report = dataclasses.replace(report, checks=checks, verdict=verdict(checks))
            record = unit_record(report, root, station_name)
            record.limit_set_id = limits.id
        pdf_written = not is_report_of(pdf_path, report)  # the same verification's PDF is written once
        pdf = write_report(report, pdf_path) if pdf_written else pdf_path
        add_report_file(record, pdf, root)
        recorded = store.record(record)
    if recorded.created and results_csv:
        append_result(report, results_csv, root)
    return ReportOutcome(report, pdf, recorded, url, root, limits.version if limits else None, pdf_written,
                         results_csv)
