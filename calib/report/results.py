"""The results table: one CSV row per verification, for yield and traceability.

Columns are fixed identity and provenance fields, then one value column and
one pass-flag column per check (names derived from the check names, so a
product with other targets simply adds columns), summary metrics, the
verdict and the file hashes. Appending reads the table, concatenates (the
union of columns; cells a product does not have stay empty) and writes it
back atomically (temporary file + ``os.replace``) under an advisory lock, so
two stations finishing at once do not lose a row and a crash never leaves a
truncated table.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from calib.errors import CalibError, FileFormatError
from calib.stages.unit_report import UnitReport
from calib.stages.verdict import Check
from calib.store.archive import archive_path
from calib.store.atomic import write_atomic

DEFAULT_RESULTS_CSV = "measurements/results.csv"
IDENTITY_COLUMNS = (
    "serial", "time_utc", "product_id", "product_name", "procedure_sha256", "rig", "station", "simulated",
    "calibration_serial", "verdict", "checks_total", "checks_failed",
)
SUMMARY_COLUMNS = (
    "min_design_cg_db", "median_holdout_cg_db", "min_null_depth_db", "min_main_lobe_db", "effort_max_db",
)
FILE_KEYS = ("characterize", "calibration", "verification")
REQUIRED_COLUMNS = ("serial", "time_utc", "product_id", "verdict")
LOCK_TIMEOUT_S = 30.0
"""How long an append waits for another process's results lock before giving up with one line."""


def column_name(name: str) -> str:
    """Return a check name as a column stem: lowercase, non-alphanumerics to ``_``.

    Signs in front of numbers are kept as letters so that mirrored checks do
    not collide: ``+90`` -> ``p90``, ``-90`` -> ``m90``, ``+-45`` -> ``pm45``.
    ``"cancellation L @ centre"`` -> ``"cancellation_l_centre"``.
    """
    text = name.lower().replace("±", "+-")
    text = re.sub(r"(?<![a-z0-9])\+-(?=\d)", "pm", text)
    text = re.sub(r"(?<![a-z0-9])\+(?=\d)", "p", text)
    text = re.sub(r"(?<![a-z0-9])-(?=\d)", "m", text)
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def check_columns(checks: list[Check]) -> dict[str, object]:
    """``<stem>_<unit>`` (value) and ``<stem>_pass`` (bool) for every check, in check order."""
    out: dict[str, object] = {}
    for check in checks:
        stem = column_name(check.name)
        base, n = stem, 2
        while f"{stem}_pass" in out:  # two checks with the same stem: number the later ones
            stem, n = f"{base}_{n}", n + 1
        unit = column_name(check.unit.replace("%", "pct"))
        out[f"{stem}_{unit}" if unit else stem] = float(check.value)
        out[f"{stem}_pass"] = bool(check.passed)
    return out


def _nan_stat(func, values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(func(values)) if values.size else float("nan")


def summary_metrics(report: UnitReport) -> dict[str, float]:
    """Return verified headline numbers (NaN where the product has none).

    ``min_design_cg_db``: smallest cancellation gain over inputs, design
    positions and bands; ``median_holdout_cg_db``: median over inputs,
    holdout positions and bands; ``min_null_depth_db`` and
    ``min_main_lobe_db``: worst beam band; ``effort_max_db``: filter effort.
    """
    m = report.verified
    positions = m.ctc.positions
    design = {p.name for p in report.procedure.design_positions()}
    cg = np.asarray(m.ctc.cancellation_db, dtype=float)  # [2, P, B]
    is_design = np.array([p in design for p in positions], dtype=bool)
    return {
        "min_design_cg_db": _nan_stat(np.min, cg[:, is_design]),
        "median_holdout_cg_db": _nan_stat(np.median, cg[:, ~is_design]),
        "min_null_depth_db": _nan_stat(np.min, m.beam.null_depth_db if m.beam else np.array([])),
        "min_main_lobe_db": _nan_stat(np.min, m.beam.main_lobe_db if m.beam else np.array([])),
        "effort_max_db": m.effort.max_db,
    }


def result_row(report: UnitReport, root: str | Path | None = None) -> dict[str, object]:
    """Return the results-table row of one verified unit (file paths relative to ``root`` if given)."""
    row: dict[str, object] = {
        "serial": report.serial,
        "time_utc": report.verification.created_utc,
        "product_id": report.procedure.product.id,
        "product_name": report.procedure.product.name,
        "procedure_sha256": report.verification.procedure_sha256,
        "rig": report.verification.rig,
        "station": report.station,
        "simulated": bool(report.simulated),
        "calibration_serial": report.calibration.serial,
        "verdict": report.verdict,
        "checks_total": len(report.checks),
        "checks_failed": sum(not c.passed for c in report.checks),
    }
    row.update(check_columns(report.checks))
    row.update(summary_metrics(report))
    for key in FILE_KEYS:
        path = report.files.get(key)
        shown = archive_path(path, root) if path is not None and root is not None else path
        row[f"{key}_file"] = str(shown) if shown is not None else ""
        row[f"{key}_sha256"] = report.hashes.get(key, "")
    return row


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Yield an advisory exclusive lock on ``.<name>.lock`` beside ``path`` (POSIX; a no-op where fcntl is absent)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CalibError(f"{lock}: another process held the results lock for {LOCK_TIMEOUT_S:g} s; "
                                     "nothing was written (retry with --resume)") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    # Whole or nothing, with the user's umask permissions (mkstemp's 0600 would survive the rename).
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False), replace=True)


def append_result(report: UnitReport, csv_path: str | Path = DEFAULT_RESULTS_CSV,
                  root: str | Path | None = None) -> dict[str, object]:
    """Append the unit's row to the results CSV (created if missing) and return the row.

    The CSV is an export of the results store: ``calib report`` appends a row
    only when it recorded a new run, with file paths relative to the archive ``root``.

    Existing columns keep their order; new ones (another product's checks)
    are added at the end, empty for the older rows.

    Raises
    ------
    FileFormatError
        If an existing file is not a results table (unreadable, or lacking
        the identity columns).
    """
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = result_row(report, root)
    with _locked(path):
        new = pd.DataFrame([row])
        if path.exists():
            old = read_results(path)
            columns = list(old.columns) + [c for c in new.columns if c not in old.columns]
            df = pd.concat([old, new], ignore_index=True)[columns] if len(old) else new.reindex(columns=columns)
        else:
            df = new
        _write_atomic(df, path)
    return row


def read_results(csv_path: str | Path = DEFAULT_RESULTS_CSV) -> pd.DataFrame:
    """Return the results table as a DataFrame (serials and hashes as strings).

    Raises
    ------
    FileFormatError
        Missing or unreadable file, or one without the columns
        ``serial``, ``time_utc``, ``product_id`` and ``verdict``.
    """
    path = Path(csv_path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such results table (it is written by the first verification)")
    text_columns = {c: str for c in ("serial", "calibration_serial", "product_id", "procedure_sha256", "verdict")}
    text_columns.update({f"{k}_sha256": str for k in FILE_KEYS})
    try:
        df = pd.read_csv(path, dtype=text_columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}: not a readable results CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FileFormatError(
            f"{path}: missing column(s) {', '.join(missing)}: expected a calib results table with "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    return df


def _yield(latest: pd.DataFrame) -> dict[str, object]:
    units = len(latest)
    passed = int((latest["verdict"] == "PASS").sum())
    return {"units": units, "passed": passed, "failed": units - passed,
            "yield_pct": 100.0 * passed / units if units else float("nan")}


def yield_summary(df: pd.DataFrame) -> dict[str, object]:
    """Yield over units, overall and per product.

    A unit (product id + serial) counts once, with the verdict of its latest
    verification (``time_utc``; table order breaks ties), so a unit that was
    reworked and passed on a second try counts as passed; ``verifications``
    counts every row, ``first_pass`` the units whose first verification passed.

    Returns
    -------
    dict
        ``units``, ``passed``, ``failed``, ``yield_pct``, ``verifications``,
        ``first_pass``, ``first_pass_yield_pct`` and ``per_product``
        (product id -> the same keys without ``per_product``).
    """
    missing = [c for c in ("serial", "product_id", "verdict", "time_utc") if c not in df.columns]
    if missing:
        raise ValueError(f"df: expected a results table with columns serial, product_id, verdict, time_utc; "
                         f"missing {', '.join(missing)}")
    ordered = df.assign(_row=np.arange(len(df))).sort_values(["time_utc", "_row"], kind="stable")
    keys = ["product_id", "serial"]

    def block(rows: pd.DataFrame) -> dict[str, object]:
        out = _yield(rows.drop_duplicates(keys, keep="last"))
        first = rows.drop_duplicates(keys, keep="first")
        out["verifications"] = len(rows)
        first_pass = int((first["verdict"] == "PASS").sum())
        out["first_pass"] = first_pass
        out["first_pass_yield_pct"] = 100.0 * first_pass / len(first) if len(first) else float("nan")
        return out

    summary = block(ordered)
    summary["per_product"] = {str(pid): block(rows) for pid, rows in ordered.groupby("product_id", sort=True)}
    return summary
