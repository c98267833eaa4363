"""The results store: schema versions, idempotent recording, queries, CSV import and CSV/Parquet export, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fleet_helpers import sha, synthetic_unit
from sqlalchemy import text

from calib.cli.main import main
from calib.fleet.db import LATEST_VERSION, ResultsDatabaseError, resolve_url
from calib.fleet.exchange import export_table, import_results_csv
from calib.fleet.record import utc_text
from calib.fleet.store import ResultsStore
from calib.store.archive import ArchivePathError, archive_path

UNIT = {"cancellation L @ centre": (18.5, 12.0, ">="), "filter effort": (7.25, 15.0, "<=")}


def test_recording_twice_is_one_run_with_its_chain(db_url) -> None:
    record = synthetic_unit("SN1", UNIT, "2026-12-01T09:00:00Z", figures={"driver left latency_ms": 5.5})
    with ResultsStore(db_url) as store:
        first, second = store.record(record), store.record(record)
        assert first.created and not second.created and first.run_id == second.run_id
        runs = store.runs()
        assert len(runs) == 1 and runs.loc[0, "verdict"] == "PASS" and runs.loc[0, "checks_total"] == 2
        checks = store.checks()
        np.testing.assert_allclose(checks["value"], [18.5, 7.25], rtol=0)
        assert list(checks["op"]) == [">=", "<="] and checks["passed"].all()
        drift = store.drift_figures()  # verify -> fit -> characterize links
        assert list(drift["metric"]) == ["driver left latency_ms"] and drift.loc[0, "value"] == 5.5
        assert store.files()["path"].tolist() == ["measurements/SN1/verify.h5"]
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == LATEST_VERSION


def test_filters(tmp_path) -> None:
    with ResultsStore(str(tmp_path / "r.db")) as store:
        store.record(synthetic_unit("A1", UNIT, "2026-12-01T09:00:00Z", station="s1"))
        store.record(synthetic_unit("A2", {"filter effort": (20.0, 15.0, "<=")}, "2026-12-02T09:00:00Z", station="s2"))
        store.record(synthetic_unit("B1", UNIT, "2026-12-03T09:00:00Z", product="aurora5"))
        assert store.runs(product="duo2")["serial"].tolist() == ["A1", "A2"]
        assert store.runs(station="s2")["serial"].tolist() == ["A2"]
        assert store.runs(serial="A*")["serial"].tolist() == ["A1", "A2"]
        assert store.runs(since="2026-12-02", until="2026-12-03")["serial"].tolist() == ["A2"]
        assert store.runs(verdict="fail")["serial"].tolist() == ["A2"]
        with pytest.raises(TypeError, match="unknown filter"):
            store.checks(colour="red")


def test_a_newer_schema_and_bad_urls_are_one_line_errors(tmp_path) -> None:
    path = tmp_path / "r.db"
    with ResultsStore(str(path)) as store, store.engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01T00:00:00Z')"))
    with pytest.raises(ResultsDatabaseError, match="schema version 99: expected at most 1 .*upgrade calib"):
        ResultsStore(str(path))
    with pytest.raises(ResultsDatabaseError, match="expected an sqlite or postgresql URL, got 'mysql'"):
        ResultsStore("mysql://x@y/z")
    with pytest.raises(ResultsDatabaseError, match="cannot open the results database"):
        ResultsStore("postgresql+psycopg://calib@/nodb?host=/nonexistent-socket-dir")


def test_url_choice(monkeypatch) -> None:
    monkeypatch.delenv("CALIB_RESULTS_DB", raising=False)
    assert resolve_url() == "sqlite:///measurements/results.db"
    assert resolve_url(None, "postgresql://h/db") == "postgresql://h/db"
    monkeypatch.setenv("CALIB_RESULTS_DB", "/srv/r.db")
    assert resolve_url(None, "postgresql://h/db") == "sqlite:////srv/r.db"
    assert resolve_url("postgresql://a/b", "postgresql://h/db") == "postgresql://a/b"


def test_archive_paths_and_times(tmp_path) -> None:
    (tmp_path / "measurements" / "SN1").mkdir(parents=True)
    assert archive_path(tmp_path / "measurements" / "SN1" / "v.h5", tmp_path) == "measurements/SN1/v.h5"
    with pytest.raises(ArchivePathError, match="outside the archive root"):
        archive_path("/etc/passwd", tmp_path)
    assert utc_text("2026-12-01T10:00:00+01:00") == "2026-12-01T09:00:00Z"


def test_import_an_old_results_csv_then_export(tmp_path) -> None:
    old = pd.DataFrame({
        "serial": ["A1", "A1", "A2", "A3"], "time_utc": ["2026-11-01T10:00:00+00:00"] * 4,
        "product_id": ["duo2"] * 4, "product_name": ["Duo 2"] * 4, "verdict": ["PASS", "PASS", "FAIL", "PASS"],
        "station": ["sim"] * 4, "cancellation_l_centre_db": [18.0, 18.0, 9.0, 17.0],
        "cancellation_l_centre_pass": [True, True, False, True],
        "verification_file": [str(tmp_path / "measurements/A1/v.h5"), "measurements/A1/v.h5", "/elsewhere/v.h5", ""],
        "verification_sha256": [sha("a1"), sha("a1"), sha("a2"), ""],  # a duplicate row and one without a hash
    })
    csv = tmp_path / "results.csv"
    old.to_csv(csv, index=False)
    with ResultsStore(str(tmp_path / "r.db")) as store:
        assert import_results_csv(store, csv, tmp_path) == (2, 1, 1)
        assert import_results_csv(store, csv, tmp_path) == (0, 3, 1)
        checks = store.checks()
        assert checks["check"].tolist() == ["cancellation_l_centre"] * 2 and checks["limit"].isna().all()
        assert store.files()["path"].tolist() == ["measurements/A1/v.h5"]  # /elsewhere is outside the root
        assert export_table(store, tmp_path / "out.parquet") == 2
        table = pd.read_parquet(tmp_path / "out.parquet")
        np.testing.assert_allclose(table["cancellation_l_centre_value"], [18.0, 9.0], rtol=0)
        assert table["cancellation_l_centre_pass"].tolist() == [True, False]
        assert export_table(store, tmp_path / "out.csv", verdict="FAIL") == 1
        assert pd.read_csv(tmp_path / "out.csv")["serial"].tolist() == ["A2"]
        with pytest.raises(Exception, match=r"out.xlsx: export format: expected a .csv or .parquet"):
            export_table(store, tmp_path / "out.xlsx")


def test_cli_results_fleet_limits(tmp_path, capsys) -> None:
    db = str(tmp_path / "r.db")
    with ResultsStore(db) as store:
        for i in range(4):
            effort = {"filter effort": (5.0 + i, 15.0, "<=")}
            store.record(synthetic_unit(f"S{i}", effort, f"2026-12-0{i + 1}T09:00:00Z"))
    assert main(["results", "list", "--db", db, "--serial", "S1"]) == 0
    assert "S1" in capsys.readouterr().out
    assert main(["results", "export", str(tmp_path / "x.csv"), "--db", db]) == 0
    assert main(["fleet", "--db", db, "--pdf", str(tmp_path / "fleet.pdf")]) == 0
    out = capsys.readouterr().out
    assert "yield per product" in out and (tmp_path / "fleet.pdf").exists()
    assert main(["limits", "derive", "duo2", "--golden", "S0,S1,S2", "--db", db]) == 0
    assert "limits v1 from 3 units" in capsys.readouterr().out
    assert main(["limits", "show", "duo2", "--db", db]) == 0
    assert main(["limits", "show", "aurora5", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "aurora5: no golden limits" in err and "Traceback" not in err
    assert main(["limits", "derive", "duo2", "--golden", "S0,S1", "--db", db]) == 2
    assert "expected at least 3 known-good serials" in capsys.readouterr().err
    assert main(["results", "import", str(tmp_path / "missing.csv"), "--db", db]) == 2
    assert "no such results table" in capsys.readouterr().err
    assert main(["fleet", "--db", str(tmp_path / "none.db")]) == 2
    assert "none.db: no results database (calib report creates it" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
