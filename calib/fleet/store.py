"""The results store: record units idempotently, query runs, checks and figures as DataFrames.

Recording writes a unit's three stage runs (characterize -> fit -> verify)
with their checks, figures, band curves and files in one transaction. Every
run is keyed by its file's SHA-256 and inserted with ``ON CONFLICT DO
NOTHING``, so reporting the same verification twice — or from two stations
at once — leaves one run; products, stations and units are created the same
way on first sight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Engine, Table, and_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from calib.fleet import schema as s
from calib.fleet.db import open_engine, resolve_url, utc_now
from calib.fleet.record import StageRun, UnitRecord


@dataclass(frozen=True)
class Recorded:
    """Outcome of recording one unit: the verify run's id, and whether this call created it."""

    run_id: int
    created: bool


def _finite(value: float | None) -> float | None:
    """NaN and infinities as NULL (SQLite cannot keep NaN; NULL means "not measured")."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class ResultsStore:
    """A results database (SQLite file or PostgreSQL server), migrated on open.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL or SQLite file path; default :func:`calib.fleet.db.resolve_url`.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.engine: Engine = open_engine(self.url)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------------

    def record(self, record: UnitRecord) -> Recorded:
        """Record one unit; a verification recorded before is left as it is (``created=False``)."""
        return self.record_many([record])[0]

    def record_many(self, records: Sequence[UnitRecord]) -> list[Recorded]:
        """Record several units in one transaction (imports, benchmarks); same idempotency as :meth:`record`."""
        if not records:
            return []
        with self.engine.begin() as conn:
            return self._record(conn, records)

    def _insert_ignore(self, conn: Connection, table: Table, rows: list[dict], keys: Sequence[str],
                       returning: Sequence[str] = ()) -> list:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))
        if returning:
            return list(conn.execute(stmt.returning(*(table.c[c] for c in returning)), rows))
        conn.execute(stmt, rows)
        return []

    def _ids(self, conn: Connection, table: Table, rows: list[dict], keys: Sequence[str]) -> dict[tuple, int]:
        """Get-or-create ``rows`` (unique on ``keys``); map key tuple -> id."""
        unique = list({tuple(r[k] for k in keys): r for r in rows}.values())
        self._insert_ignore(conn, table, unique, keys)
        wanted = [tuple(r[k] for k in keys) for r in unique]
        cols = [table.c[k] for k in keys]
        out: dict[tuple, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            where = cols[0].in_([w[0] for w in chunk]) if len(cols) == 1 else tuple_(*cols).in_(chunk)
            for row in conn.execute(select(table.c.id, *cols).where(where)):
                out[tuple(row[1:])] = int(row[0])
        return out

    def _record(self, conn: Connection, records: Sequence[UnitRecord]) -> list[Recorded]:
        product = self._ids(conn, s.products, [{"product_id": r.product_id, "name": r.product_name}
                                                for r in records], ["product_id"])
        station = self._ids(conn, s.stations, [{"name": r.station} for r in records], ["name"])
        unit = self._ids(conn, s.units, [{"product_ref": product[(r.product_id,)], "serial": run.serial or r.serial}
                                         for r in records for run in r.runs], ["product_ref", "serial"])
        now = utc_now()
        run_ids: dict[str, int] = {}
        created: set[str] = set()
        for stage in s.STAGES:  # parents first, so that source_run can point at them
            todo = [(r, i, run) for r in records for i, run in enumerate(r.runs) if run.stage == stage]
            if not todo:
                continue
            rows = [{
                "unit_ref": unit[(product[(r.product_id,)], run.serial or r.serial)],
                "station_ref": station[(r.station,)],
                "stage": run.stage, "sha256": run.sha256, "time_utc": run.time_utc,
                "source_run": run_ids.get(r.runs[i - 1].sha256) if i else None,
                "procedure_sha256": run.procedure_sha256, "rig": run.rig, "simulated": run.simulated,
                "calibration_serial": run.calibration_serial, "verdict": run.verdict,
                "checks_total": len(run.checks) if run.checks else None,
                "checks_failed": sum(not c.passed for c in run.checks) if run.checks else None,
                "limit_set_ref": r.limit_set_id if run.stage == "verify" else None, "recorded_utc": now,
            } for r, i, run in todo]
            for run_id, sha in self._insert_ignore(conn, s.runs, rows, ["sha256"], ("id", "sha256")):
                run_ids[sha] = int(run_id)
                created.add(sha)
            missing = [row["sha256"] for row in rows if row["sha256"] not in run_ids]
            for start in range(0, len(missing), 500):
                for run_id, sha in conn.execute(select(s.runs.c.id, s.runs.c.sha256)
                                                .where(s.runs.c.sha256.in_(missing[start:start + 500]))):
                    run_ids[sha] = int(run_id)
            fresh = {run.sha256: (run_ids[run.sha256], run) for _, _, run in todo if run.sha256 in created}
            self._children(conn, list(fresh.values()))
        out = []
        for r in records:  # a verification listed twice in one call is created by its first listing only
            sha = r.runs[-1].sha256
            out.append(Recorded(run_ids[sha], sha in created))
            created.discard(sha)
        return out

    def _children(self, conn: Connection, new_runs: list[tuple[int, StageRun]]) -> None:
        """Insert the checks, files, figures and band curves of freshly inserted runs."""
        check_rows = [{"run_ref": rid, "position": k, "name": c.name, "value": _finite(c.value),
                       "limit_value": _finite(c.limit), "unit": c.unit, "op": c.op, "passed": bool(c.passed),
                       "detail": c.detail} for rid, run in new_runs for k, c in enumerate(run.checks)]
        file_rows = [{"run_ref": rid, "role": role, "path": path, "sha256": sha}
                     for rid, run in new_runs for role, path, sha in run.files]
        metric_rows = [{"run_ref": rid, "name": name, "value": _finite(value)}
                       for rid, run in new_runs for name, value in run.metrics.items()]
        band_rows = [{"run_ref": rid, "name": name, "band_hz": float(band), "value": _finite(value)}
                     for rid, run in new_runs for name, band, value in run.bands]
        for table, rows in ((s.checks, check_rows), (s.files, file_rows), (s.metrics, metric_rows),
                            (s.bands, band_rows)):
            if rows:
                conn.execute(table.insert(), rows)

    # -- queries ---------------------------------------------------------------------------------

    def _run_query(self, stage: str, product: str | None, station: str | None, serial: str | None,
                   since: str | None, until: str | None, verdict: str | None):
        r, u, p, st = s.runs, s.units, s.products, s.stations
        q = (select(r.c.id.label("run_id"), p.c.product_id, u.c.serial, st.c.name.label("station"), r.c.stage,
                    r.c.time_utc, r.c.verdict, r.c.checks_total, r.c.checks_failed, r.c.calibration_serial,
                    r.c.rig, r.c.simulated, r.c.sha256, r.c.procedure_sha256, r.c.source_run, r.c.limit_set_ref)
             .select_from(r.join(u, r.c.unit_ref == u.c.id).join(p, u.c.product_ref == p.c.id)
                          .join(st, r.c.station_ref == st.c.id)))
        conditions = [r.c.stage == stage]
        if product:
            conditions.append(p.c.product_id == product)
        if station:
            conditions.append(st.c.name == station)
        if serial:
            conditions.append(u.c.serial.like(serial.replace("*", "%")))
        if since:
            conditions.append(r.c.time_utc >= since)
        if until:
            conditions.append(r.c.time_utc < until)
        if verdict:
            conditions.append(r.c.verdict == verdict.upper())
        return q.where(and_(*conditions))

    def runs(self, stage: str = "verify", product: str | None = None, station: str | None = None,
             serial: str | None = None, since: str | None = None, until: str | None = None,
             verdict: str | None = None) -> pd.DataFrame:
        """Return runs of one ``stage``, oldest first, filtered.

        ``serial`` may hold ``*`` wildcards; times are UTC text.
        """
        q = self._run_query(stage, product, station, serial, since, until, verdict).order_by(s.runs.c.time_utc,
                                                                                            s.runs.c.id)
        with self.engine.connect() as conn:
            return pd.read_sql_query(q, conn)

    def _long(self, table: Table, columns: Iterable, stage: str, **filters: str | None) -> pd.DataFrame:
        runs = self._run_query(stage, **filters).subquery()
        q = (select(runs.c.run_id, runs.c.product_id, runs.c.serial, runs.c.station, runs.c.time_utc,
                    runs.c.verdict, *columns)
             .select_from(runs.join(table, table.c.run_ref == runs.c.run_id))
             .order_by(runs.c.time_utc, runs.c.run_id, table.c.id))
        with self.engine.connect() as conn:
            return pd.read_sql_query(q, conn)

    def checks(self, stage: str = "verify", **filters: str | None) -> pd.DataFrame:
        """Every check of the matching runs, one row each (``value`` NaN where not measured)."""
        c = s.checks.c
        df = self._long(s.checks, (c.position, c.name.label("check"), c.value, c.limit_value.label("limit"), c.op,
                                   c.unit, c.passed, c.detail), stage, **_filters(filters))
        df["passed"] = df["passed"].astype(bool)
        df["value"] = df["value"].astype(float)
        return df

    def metrics(self, stage: str = "verify", **filters: str | None) -> pd.DataFrame:
        """Scalar figures of the matching runs (``characterize``: driver sensitivity, latency, THD)."""
        c = s.metrics.c
        df = self._long(s.metrics, (c.name.label("metric"), c.value), stage, **_filters(filters))
        df["value"] = df["value"].astype(float)
        return df

    def bands(self, **filters: str | None) -> pd.DataFrame:
        """Per-band curves of the matching verify runs."""
        c = s.bands.c
        df = self._long(s.bands, (c.name.label("curve"), c.band_hz, c.value), "verify", **_filters(filters))
        df["value"] = df["value"].astype(float)
        return df

    def files(self, stage: str = "verify", **filters: str | None) -> pd.DataFrame:
        """Files of the matching runs: role, path relative to the archive root, SHA-256."""
        c = s.files.c
        return self._long(s.files, (c.role, c.path, c.sha256.label("file_sha256")), stage, **_filters(filters))

    def drift_figures(self, **filters: str | None) -> pd.DataFrame:
        """Per verify run, the characterize figures of the same unit (by ``source_run`` links) beside it."""
        runs = self.runs(**_filters(filters))
        if runs.empty:
            return pd.DataFrame(columns=["run_id", "serial", "time_utc", "metric", "value"])
        r = s.runs
        with self.engine.connect() as conn:
            links = pd.read_sql_query(select(r.c.id.label("fit_id"), r.c.source_run.label("char_id"))
                                      .where(r.c.stage == "fit"), conn)
            figures = pd.read_sql_query(select(s.metrics.c.run_ref.label("char_id"), s.metrics.c.name.label("metric"),
                                               s.metrics.c.value).join(r, r.c.id == s.metrics.c.run_ref)
                                        .where(r.c.stage == "characterize"), conn)
        chain = runs[["run_id", "product_id", "serial", "station", "time_utc", "source_run"]].merge(
            links, left_on="source_run", right_on="fit_id").merge(figures, on="char_id")
        chain["value"] = chain["value"].astype(float)
        return chain[["run_id", "product_id", "serial", "station", "time_utc", "metric", "value"]]


def _filters(filters: dict) -> dict:
    keys = ("product", "station", "serial", "since", "until", "verdict")
    unknown = set(filters) - set(keys)
    if unknown:
        raise TypeError(f"unknown filter(s) {', '.join(sorted(unknown))}; expected {', '.join(keys)}")
    return {k: filters.get(k) for k in keys}
