"""The results schema (SQLAlchemy Core tables).

::

    products  1─n  units  1─n  runs  1─n  checks    (value, limit, op, verdict of every check)
    stations  1─n  runs              1─n  files     (role, path relative to the archive root, sha256)
                                     1─n  metrics   (scalar figures: driver sensitivity, latency, THD, ...)
                                     1─n  bands     (per-band curves: cancellation, null depth, main lobe)
    products  1─n  limit_sets 1─n limit_values      (golden-sample limits, versioned per product)

A run is one stage of one unit: ``characterize`` (its measurement file),
``fit`` (its calibration file, ``source_run`` -> the characterize run) or
``verify`` (its verification file, ``source_run`` -> the fit run). Every run
is keyed by the SHA-256 of the file it produced (``runs.sha256`` is unique),
which makes recording idempotent: the same verification reported twice is one
run. Times are ISO-8601 UTC text (``2026-12-01T23:40:00Z``), which sorts and
compares the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

STAGES = ("characterize", "fit", "verify")

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_utc", String(32), nullable=False),
)

products = Table(
    "products", metadata,
    Column("id", Integer, primary_key=True),
    Column("product_id", String(200), nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
)

stations = Table(
    "stations", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
)

units = Table(
    "units", metadata,
    Column("id", Integer, primary_key=True),
    Column("product_ref", Integer, ForeignKey("products.id"), nullable=False),
    Column("serial", String(200), nullable=False),
    UniqueConstraint("product_ref", "serial", name="uq_units_product_serial"),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("unit_ref", Integer, ForeignKey("units.id"), nullable=False),
    Column("station_ref", Integer, ForeignKey("stations.id"), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),  # of the file the stage wrote: the idempotency key
    Column("time_utc", String(32), nullable=False),
    Column("source_run", Integer, ForeignKey("runs.id"), nullable=True),
    Column("procedure_sha256", String(64), nullable=False, default=""),
    Column("rig", String(200), nullable=False, default=""),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("calibration_serial", String(200), nullable=True),  # verify: whose filters (cross-unit checks differ)
    Column("verdict", String(8), nullable=True),  # verify: PASS / FAIL; fit: predicted verdict
    Column("checks_total", Integer, nullable=True),
    Column("checks_failed", Integer, nullable=True),
    Column("limit_set_ref", Integer, ForeignKey("limit_sets.id"), nullable=True),  # golden limits judged against
    Column("recorded_utc", String(32), nullable=False),
    Index("ix_runs_stage_time", "stage", "time_utc"),
    Index("ix_runs_unit", "unit_ref"),
)

checks = Table(
    "checks", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_ref", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # order in the report
    Column("name", String(200), nullable=False),
    Column("value", Float, nullable=True),  # NaN is stored as NULL
    Column("limit_value", Float, nullable=True),  # NULL: unknown (rows imported from an old results.csv)
    Column("unit", String(32), nullable=False, default=""),
    Column("op", String(2), nullable=False, default=""),  # '>=', '<=', '==' or '' (unknown: imported rows)
    Column("passed", Boolean, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_checks_run", "run_ref"),
    Index("ix_checks_name", "name"),
)

files = Table(
    "files", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_ref", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(32), nullable=False),  # characterize, calibration, verification, report
    Column("path", Text, nullable=False),  # POSIX path relative to the archive root
    Column("sha256", String(64), nullable=False),
    Index("ix_files_run", "run_ref"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_ref", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("value", Float, nullable=True),
    Index("ix_metrics_run", "run_ref"),
)

bands = Table(
    "bands", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_ref", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),  # e.g. "cancellation L @ centre"
    Column("band_hz", Float, nullable=False),
    Column("value", Float, nullable=True),
    Index("ix_bands_run", "run_ref"),
)

limit_sets = Table(
    "limit_sets", metadata,
    Column("id", Integer, primary_key=True),
    Column("product_ref", Integer, ForeignKey("products.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("k", Float, nullable=False),
    Column("n_units", Integer, nullable=False),
    Column("serials", Text, nullable=False),  # the golden units, comma-separated
    Column("created_utc", String(32), nullable=False),
    Column("note", Text, nullable=False, default=""),
    UniqueConstraint("product_ref", "version", name="uq_limit_sets_product_version"),
)

limit_values = Table(
    "limit_values", metadata,
    Column("id", Integer, primary_key=True),
    Column("limit_set_ref", Integer, ForeignKey("limit_sets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),  # a check name, or a band curve name
    Column("band_hz", Float, nullable=True),  # NULL: the check's scalar value
    Column("mean", Float, nullable=False),
    Column("std", Float, nullable=False),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Index("ix_limit_values_set", "limit_set_ref"),
)
