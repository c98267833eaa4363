"""``calib report`` on a real verification: recorded once however often it is reported, golden limits applied."""

from __future__ import annotations

import pandas as pd

from calib.cli.main import main
from calib.fleet.store import ResultsStore


def test_the_same_verification_reported_twice_is_one_run(reports, tmp_path, capsys) -> None:  # noqa: ANN001
    unit = reports["pass"]
    verification = unit.files["verification"]
    root = verification.parents[2]  # the chain's folder: measurements/ lives in it
    db, csv = tmp_path / "results.db", tmp_path / "results.csv"
    args = ["report", str(verification), "--reports", str(root / "reports"), "--results", str(csv), "--db", str(db),
            "--archive-root", str(root)]
    assert main(args) == 0
    assert "recorded in sqlite" in capsys.readouterr().out
    assert main(args) == 0
    assert "already recorded" in capsys.readouterr().out
    with ResultsStore(str(db)) as store:
        runs = store.runs()
        assert runs["serial"].tolist() == [unit.serial] and runs.loc[0, "sha256"] == unit.hashes["verification"]
        assert len(store.runs(stage="characterize")) == 1 and len(store.runs(stage="fit")) == 1
        checks = store.checks()
        assert checks["check"].tolist() == [c.name for c in unit.checks]
        files = store.files().set_index("role")
        assert files.loc["verification", "path"] == verification.relative_to(root).as_posix()
        assert files.loc["report", "path"] == f"reports/{unit.serial}.pdf"
        figures = store.drift_figures()
        assert {"driver left sensitivity_db", "driver left latency_ms", "driver left thd_pct"} <= set(figures["metric"])
        assert len(store.bands()) > 0
    table = pd.read_csv(csv)
    assert len(table) == 1 and not table.loc[0, "verification_file"].startswith("/")  # relative, once


def test_report_outside_the_archive_root_is_a_one_line_error(reports, tmp_path, capsys) -> None:  # noqa: ANN001
    verification = reports["pass"].files["verification"]
    code = main(["report", str(verification), "--reports", str(tmp_path / "r"), "--db", str(tmp_path / "r.db"),
                 "--results", str(tmp_path / "r.csv"), "--archive-root", str(tmp_path / "elsewhere")])
    err = capsys.readouterr().err
    assert code == 2 and "outside the archive root" in err and "Traceback" not in err
