"""Fixtures of the results-store tests: a throwaway PostgreSQL server, fresh databases, synthetic units."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from calib.fleet.pgserver import PostgresUnavailable, TempPostgres, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres]:
    """A PostgreSQL server started for this test session (skipped, saying why, where none can start)."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty results database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
