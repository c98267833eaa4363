"""``calib report`` on a real verification: recorded once however often it is reported, golden limits applied."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from calib.cli.main import main
from calib.fleet.store import ResultsStore


def test_the_same_verification_reported_twice_is_one_run(reports, tmp_path, capsys) -> None:
    unit = reports["pass"]
    verification = unit.files["verification"]
    root = verification.parents[2]  # the chain's folder: measurements/ lives in it
    db, csv = tmp_path / "results.db", tmp_path / "results.csv"
    args = ["report", str(verification), "--reports", str(root / "reports"), "--results", str(csv), "--db", str(db),
            "--archive-root", str(root)]
    verdict = f"{unit.serial}: PASS ({len(unit.checks)} checks, 0 failed)"
    assert main(["--quiet", *args]) == 0
    assert capsys.readouterr().out.splitlines() == [verdict]  # --quiet: the verdict line alone
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "already recorded" in out and out.count(f"{unit.serial}: PASS") == 1 and out.splitlines()[-1] == verdict
    assert main(["--verbose", *args]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  PASS  ")]
    assert len(rows) == len(unit.checks)  # --verbose: every check, in aligned columns
    assert len({line.rindex("(") for line in rows}) == 1  # the limits start in one column
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


def test_report_outside_the_archive_root_is_a_one_line_error(reports, tmp_path, capsys) -> None:
    verification = reports["pass"].files["verification"]
    code = main(["report", str(verification), "--reports", str(tmp_path / "r"), "--db", str(tmp_path / "r.db"),
                 "--results", str(tmp_path / "r.csv"), "--archive-root", str(tmp_path / "elsewhere")])
    err = capsys.readouterr().err
    assert code == 2 and "outside the archive root" in err and "Traceback" not in err


def _golden_db(unit, root, db, shifts: tuple[float, ...]) -> None:
    """A database holding three golden copies of ``unit`` with every value shifted, and limits derived from them."""
    import copy
    import dataclasses
    import hashlib

    from calib.fleet.limits import derive_limits
    from calib.fleet.record import unit_record

    base = unit_record(unit, root)
    golden = []
    for i, shift in enumerate(shifts):
        record = copy.deepcopy(base)
        record.serial = f"GOLD{i}"
        for run in record.runs:
            run.sha256 = hashlib.sha256(f"gold {i} {run.stage}".encode()).hexdigest()
        verify = record.runs[-1]
        verify.checks = [c if c.op == "==" else dataclasses.replace(c, value=c.value + shift) for c in verify.checks]
        verify.bands = [(name, band, value + shift) for name, band, value in verify.bands]
        golden.append(record)
    with ResultsStore(str(db)) as store:
        store.record_many(golden)
        derive_limits(store, unit.procedure.product.id, [r.serial for r in golden], k=3.0)


def test_golden_limits_enter_the_verdict_of_later_reports(reports, tmp_path, capsys) -> None:
    unit = reports["pass"]
    verification = unit.files["verification"]
    root = verification.parents[2]
    for name, shifts, code, verdict in (("near", (-1.0, 0.0, 1.0), 0, "PASS"), ("far", (9.0, 10.0, 11.0), 1, "FAIL")):
        db = tmp_path / f"{name}.db"
        _golden_db(unit, root, db, shifts)
        assert main(["--verbose", "report", str(verification), "--reports", str(root / f"reports-{name}"),
                     "--db", str(db),
                     "--results", str(tmp_path / f"{name}.csv"), "--archive-root", str(root)]) == code
        out = capsys.readouterr().out
        golden_lines = [line for line in out.splitlines() if re.match(r"\s*(PASS|FAIL)\s+golden: ", line)]
        assert len(golden_lines) >= 2 and f"{unit.serial}: {verdict}" in out
        # shifted golden units: the unit sits 0 sigma (near) or 10 sigma (far) from their mean, in every quantity
        assert all(line.lstrip().startswith("PASS" if code == 0 else "FAIL") for line in golden_lines)
        with ResultsStore(str(db)) as store:
            run = store.runs(serial=unit.serial).iloc[0]
            assert run["verdict"] == verdict and run["limit_set_ref"] is not None
            golden = store.checks(serial=unit.serial)
            golden = golden[golden["check"].str.startswith("golden: ")]
            expected = 0.0 if code == 0 else 10.0
            assert ((golden["value"] - expected).abs() < 1e-6).all(), golden[["check", "value"]]


@pytest.fixture(scope="module")
def line_dbs(request, tmp_path_factory) -> tuple[dict[str, str], str | None]:
    """A fresh results database of each kind that can run here, and why PostgreSQL cannot (None if it can).

    PostgreSQL: the run's throwaway server (``postgres``, tests/conftest.py).
    """
    dbs = {"sqlite": str(tmp_path_factory.mktemp("db") / "results.db")}
    try:
        server = request.getfixturevalue("postgres")
    except pytest.skip.Exception as exc:
        return dbs, str(exc)
    dbs["postgresql"] = server.create_database("reports")
    return dbs, None


def test_eight_calib_report_processes_at_once_record_eight_runs(reports, line_dbs, tmp_path) -> None:
    """Eight stations finish at once: eight ``calib report`` processes on eight units' verifications.

    The eight verifications are copies of one real verification re-labelled
    with other serials (so eight files, eight hashes, eight units) rather than
    eight measured units, to keep the test affordable on two cores. Each
    process reports into each kind of database in turn (SQLite, then
    PostgreSQL), as eight processes at once per database: its PDF is drawn
    by the first report and stands for the second (the same verification),
    so the eight PDFs are drawn once, not once per database.
    """
    import json
    import os
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    import h5py

    from calib.stages.custody import seal

    dbs, no_postgres = line_dbs
    source = reports["pass"].files["verification"]
    root = source.parents[2]
    serials = [f"SN-LINE-{i}" for i in range(8)]
    copies = []
    for serial in serials:
        folder = root / "measurements" / serial
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / source.name
        shutil.copyfile(source, copy)
        with h5py.File(copy, "r+") as f:  # as a cross-unit verification of this serial would be: sealed anew
            f.attrs["serial"] = serial
            f.attrs["custody_seal"] = seal(dict(f.attrs))
        copies.append(copy)
    go = tmp_path / "go"
    repo = Path(__file__).resolve().parents[2]
    wait = f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.005)\n"
    code = wait + ("import json, sys\nfrom calib.cli.main import main\n"
                   "sys.exit(max(main(args) for args in json.loads(sys.argv[1])))")
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def argv(copy: Path, kind: str) -> list[str]:
        return ["report", str(copy), "--db", dbs[kind], "--reports", str(root / "reports-line"), "--results",
                str(tmp_path / f"line-{kind}.csv"), "--archive-root", str(root)]

    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps([argv(copy, kind) for kind in dbs])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for copy in copies]
    time.sleep(1.0)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert out.count("recorded in") == len(dbs) and "already recorded" not in out, out
        assert out.count("(already written for this verification)") == len(dbs) - 1, out  # one PDF per process
    for kind, url in dbs.items():
        with ResultsStore(url) as store:
            runs = store.runs(serial="SN-LINE-*")
            assert sorted(runs["serial"]) == serials and runs["sha256"].nunique() == 8, kind
            assert len(store.runs(stage="fit")) == 1, kind  # one calibration, verified for eight serials
        assert sorted(pd.read_csv(tmp_path / f"line-{kind}.csv")["serial"]) == serials, kind
    if no_postgres is not None:
        pytest.skip(f"SQLite passed; {no_postgres}")
