"""Export the store's verifications as a wide table (CSV/Parquet for pandas) and import an old ``results.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from calib.errors import CalibError
from calib.fleet.record import CheckRow, StageRun, UnitRecord, relative_or_none, utc_text
from calib.fleet.store import ResultsStore
from calib.report.results import FILE_KEYS, IDENTITY_COLUMNS, SUMMARY_COLUMNS, column_name, read_results

EXPORT_FORMATS = (".csv", ".parquet")


def wide_table(store: ResultsStore, **filters: str | None) -> pd.DataFrame:
    """One row per verification: identity, ``<check>_value`` and ``<check>_pass`` columns, file paths and hashes."""
    runs = store.runs("verify", **filters)
    checks = store.checks("verify", **filters)
    files = store.files("verify", **filters)
    out = runs.drop(columns=["stage", "source_run"]).rename(columns={"sha256": "verification_sha256"})
    if not checks.empty:
        checks = checks.assign(column=checks["check"].map(column_name))
        values = checks.pivot_table(index="run_id", columns="column", values="value", aggfunc="last", dropna=False)
        passed = checks.pivot_table(index="run_id", columns="column", values="passed", aggfunc="last")
        order = list(dict.fromkeys(checks["column"]))
        values = values.reindex(columns=order).add_suffix("_value")
        passed = passed.reindex(columns=order).add_suffix("_pass")
        both = pd.concat([values, passed], axis=1)
        both = both[[c for stem in order for c in (f"{stem}_value", f"{stem}_pass")]]
        out = out.merge(both, left_on="run_id", right_index=True, how="left")
    if not files.empty:
        paths = files.pivot_table(index="run_id", columns="role", values="path", aggfunc="last").add_suffix("_file")
        out = out.merge(paths, left_on="run_id", right_index=True, how="left")
    return out


def export_table(store: ResultsStore, path: str | Path, **filters: str | None) -> int:
    """Write :func:`wide_table` to ``path`` (``.csv`` or ``.parquet``); return the row count."""
    path = Path(path)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise CalibError(f"{path}: export format: expected a .csv or .parquet file name, got {path.suffix or 'none'!r}")
    df = wide_table(store, **filters)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return len(df)


def _csv_checks(row: pd.Series, columns: list[str]) -> list[CheckRow]:
    """Return checks of an old CSV row: every ``<stem>_pass`` with its value column ``<stem>[_unit]``.

    The CSV kept neither the check's name nor its limit: the stem stands for
    the name, the limit and comparison stay unknown (NULL, '').
    """
    taken = set(IDENTITY_COLUMNS) | set(SUMMARY_COLUMNS) | {f"{k}_{x}" for k in FILE_KEYS for x in ("file", "sha256")}
    out = []
    for col in columns:
        if not col.endswith("_pass") or col in taken:
            continue
        stem = col[: -len("_pass")]
        candidates = [c for c in columns if c not in taken and not c.endswith("_pass")
                      and (c == stem or (c.startswith(stem + "_") and "_" not in c[len(stem) + 1:]))]
        if not candidates or pd.isna(row[col]):
            continue
        value = pd.to_numeric(row[candidates[0]], errors="coerce")
        unit = candidates[0][len(stem) + 1:] if candidates[0] != stem else ""
        out.append(CheckRow(stem, float(value), float("nan"), unit, "", str(row[col]).lower() in ("true", "1")))
    return out


def import_results_csv(store: ResultsStore, csv_path: str | Path, root: str | Path = ".") -> tuple[int, int, int]:
    """Import the rows of an old ``results.csv`` as verify runs (keyed by ``verification_sha256``).

    Returns
    -------
    (new, already, skipped)
        Runs created, rows whose verification was recorded already, rows
        without a verification hash (they cannot be keyed, so they are not imported).

    Raises
    ------
    FileFormatError
        If ``csv_path`` is not a results table.
    """
    df = read_results(csv_path)
    columns = list(df.columns)
    records, skipped = [], 0
    for _, row in df.iterrows():
        sha = str(row.get("verification_sha256", "") or "")
        if len(sha) != 64:
            skipped += 1
            continue
        files = []
        for key in FILE_KEYS:
            cell = row.get(f"{key}_file")
            rel = relative_or_none(str(cell), root) if isinstance(cell, str) else None
            file_sha = str(row.get(f"{key}_sha256", "") or "")
            if rel and len(file_sha) == 64:
                files.append((key, rel, file_sha))
        metrics = {c: float(pd.to_numeric(row[c], errors="coerce")) for c in SUMMARY_COLUMNS if c in row}
        run = StageRun("verify", sha, utc_text(str(row["time_utc"])), str(row.get("procedure_sha256", "") or ""),
                       str(row.get("rig", "") or ""), str(row.get("simulated", "")).lower() == "true",
                       verdict=str(row["verdict"]), calibration_serial=_text(row.get("calibration_serial")),
                       checks=_csv_checks(row, columns), files=files,
                       metrics={k: v for k, v in metrics.items() if np.isfinite(v)})
        records.append(UnitRecord(str(row["product_id"]), _text(row.get("product_name")) or "", str(row["serial"]),
                                  _text(row.get("station")) or "imported", [run]))
    results = store.record_many(records)
    new = sum(r.created for r in results)
    return new, len(results) - new, skipped


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
