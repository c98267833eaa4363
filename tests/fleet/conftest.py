"""Fixtures of the results-store tests: fresh databases (PostgreSQL: the run's server, tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty results database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
