"""Opening the results database: URL choice, engine set-up and versioned schema migrations.

Migrations are a small versioned table (``schema_version``) rather than
alembic: the schema is a dozen tables owned by calib alone, and what matters
is that every station migrates safely at first open, several at once, on
SQLite and PostgreSQL alike. :func:`migrate` holds a database-wide lock
(``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on
PostgreSQL) while it reads the version and applies the missing steps, so
eight stations opening a fresh database together create it once.
A fresh database gets the current tables and is stamped with the latest
version; an older one runs the steps after its version, in order.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from calib.errors import CalibError
from calib.fleet import schema

DEFAULT_DB_PATH = "measurements/results.db"
ENV_URL = "CALIB_RESULTS_DB"
_PG_LOCK_KEY = 0x63616C6962  # "calib": one advisory lock id for schema migrations


class ResultsDatabaseError(CalibError, RuntimeError):
    """The results database is unreachable, of an unknown kind, or newer than this calib."""


def utc_now() -> str:
    """Return the current time as ISO-8601 UTC text (sorts like time)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Steps after version 1, each (version, description, function of a connection). A new schema change
# appends a step with its DDL written out (ALTER TABLE ...) and updates schema.py to the result.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = []
INITIAL = (1, "initial schema: products, stations, units, runs, checks, files, metrics, bands, limits")
LATEST_VERSION = max([INITIAL[0], *(m[0] for m in MIGRATIONS)])


def resolve_url(option: str | None = None, station_url: str | None = None,
                default: str | Path = DEFAULT_DB_PATH) -> str:
    """Return the database URL: ``option`` (``--db``), else ``$CALIB_RESULTS_DB``, else the station file's, else SQLite.

    A plain path (no ``://``) means an SQLite file; the default is ``default``
    (``measurements/results.db``).
    """
    for candidate in (option, os.environ.get(ENV_URL) or None, station_url, str(default)):
        if candidate:
            return candidate if "://" in candidate else f"sqlite:///{Path(candidate)}"
    raise AssertionError("unreachable: default is never empty")


def _sqlite_setup(engine: Engine) -> None:
    """SQLite: wait for other writers, WAL for concurrent readers, and BEGIN IMMEDIATE.

    pysqlite's own transaction handling begins lazily (at the first write), so
    two writers that both read first can deadlock; taking the write lock at
    BEGIN serializes them instead (the pattern from SQLAlchemy's SQLite docs).
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_engine(url: str) -> Engine:
    """Return an engine for ``url`` with the schema migrated to :data:`LATEST_VERSION`.

    Raises
    ------
    ResultsDatabaseError
        Unknown URL or driver, unreachable server, or a schema newer than this calib.
    """
    shown = _redacted(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ResultsDatabaseError(f"{url}: results database URL: expected sqlite:///PATH or "
                                   "postgresql+psycopg://USER@HOST/DB, or a file path") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})
        _sqlite_setup(engine)
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":  # psycopg 3 is the driver calib ships with
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise ResultsDatabaseError(f"{shown}: results database driver unavailable ({exc})") from None
    else:
        raise ResultsDatabaseError(f"{shown}: results database URL: expected an sqlite or postgresql URL, "
                                   f"got {backend!r}")
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ResultsDatabaseError(f"{shown}: cannot open the results database ({reason})") from None
    return engine


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def schema_version_of(conn: Connection) -> int:
    """Return the database's schema version (0: no calib tables yet)."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the schema to :data:`LATEST_VERSION` under a database-wide lock; return the version found."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        found = schema_version_of(conn)
        if found > LATEST_VERSION:
            raise ResultsDatabaseError(
                f"{_redacted(engine.url.render_as_string(hide_password=False))}: schema version {found}: "
                f"expected at most {LATEST_VERSION} (written by a newer calib; upgrade calib)"
            )
        if found == 0:
            schema.metadata.create_all(conn)
            conn.execute(schema.schema_version.insert(), [
                {"version": INITIAL[0], "description": INITIAL[1], "applied_utc": utc_now()},
                *({"version": v, "description": d, "applied_utc": utc_now()} for v, d, _ in MIGRATIONS),
            ])
            return found
        for version, description, step in MIGRATIONS:
            if version > found:
                step(conn)
                conn.execute(schema.schema_version.insert(),
                             {"version": version, "description": description, "applied_utc": utc_now()})
    return found
