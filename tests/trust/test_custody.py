"""Chain of custody, idempotent reports, permissions, the unit lock, the last-resort handler, fault merging."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import h5py
import pandas as pd
import pytest

from calib.cli.main import main
from calib.errors import CalibError
from calib.procedure.spec import SimFaults
from calib.stages.fit import fit_file
from calib.stages.recovery import unit_lock


def _report_args(a: dict[str, Path], verification: Path | None = None) -> list[str]:
    return ["report", str(verification or a["verification"]), "--reports", str(a["reports"]),
            "--results", str(a["results"])]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calib: error: "), err
    return err[0]


def test_verification_records_hashes_and_relative_paths(archive) -> None:
    from calib.store.calibration import file_sha256

    with h5py.File(archive["verification"], "r") as f:
        attrs = dict(f.attrs)
    assert attrs["calibration_path"] == f"T1/{archive['calibration'].name}"
    assert attrs["characterize_path"] == f"T1/{archive['characterize'].name}"
    assert attrs["calibration_sha256"] == file_sha256(archive["calibration"])
    assert attrs["characterize_sha256"] == file_sha256(archive["characterize"])


def test_swapped_calibration_is_refused(archive, capsys) -> None:
    """Another calibration fitted from the same measurement, put under the recorded name."""
    other = fit_file(archive["characterize"], archive["base"] / "other-cal.h5").path
    os.replace(other, archive["calibration"])
    assert main(_report_args(archive)) == 2
    line = _one_error(capsys)
    assert "calibration_sha256" in line and archive["calibration"].name in line
    assert main(["inspect", str(archive["verification"])]) == 2
    assert "calibration_sha256" in _one_error(capsys)


def test_edited_serial_is_refused_even_if_the_file_is_moved_to_that_serial(archive, capsys) -> None:
    with h5py.File(archive["verification"], "r+") as f:
        f.attrs["serial"] = "T2"
    moved = archive["out"] / "T2" / archive["verification"].name
    moved.parent.mkdir()
    shutil.copy2(archive["verification"], moved)
    for path in (archive["verification"], moved):
        assert main(_report_args(archive, path)) == 2
        assert "custody_seal" in _one_error(capsys)


def test_moved_archive_still_reports_the_same_verdict_once(archive, tmp_path, capsys) -> None:
    moved = tmp_path / "elsewhere" / "archive"
    shutil.move(str(archive["base"]), moved)
    verification = moved / "m" / "T1" / archive["verification"].name
    rows_before = len(pd.read_csv(moved / "results.csv"))
    pdf_before = (moved / "r" / "T1.pdf").read_bytes()
    args = ["report", str(verification), "--reports", str(moved / "r"), "--results", str(moved / "results.csv")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "already recorded" in out and "already written for this verification" in out
    assert len(pd.read_csv(moved / "results.csv")) == rows_before == 1
    assert (moved / "r" / "T1.pdf").read_bytes() == pdf_before
    assert main(["inspect", str(verification)]) == 0
    assert "seal and SHA-256 intact" in capsys.readouterr().out


def test_report_to_a_new_place_writes_pdf_and_row_with_umask_permissions(archive, tmp_path, capsys) -> None:
    old = os.umask(0o022)
    try:
        args = ["report", str(archive["verification"]), "--reports", str(tmp_path / "r2"),
                "--results", str(tmp_path / "t.csv")]
        assert main(args) == 0
        assert main(args) == 0  # twice: one PDF, one row
    finally:
        os.umask(old)
    pdf = tmp_path / "r2" / "T1.pdf"
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o644
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1
    assert [p.name for p in pdf.parent.iterdir()] == ["T1.pdf"]


def test_stale_temporary_pdf_of_a_killed_writer_is_removed(archive, tmp_path) -> None:
    reports = tmp_path / "r3"
    reports.mkdir()
    stale = reports / ".T1.pdf.999999999.tmp"  # no such pid
    stale.write_bytes(b"%PDF-half")
    args = ["report", str(archive["verification"]), "--reports", str(reports), "--results", str(tmp_path / "t.csv")]
    assert main(args) == 0
    assert sorted(p.name for p in reports.iterdir()) == ["T1.pdf"]


def test_second_run_of_the_same_unit_is_refused_in_one_line(archive, capsys) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()

    def hold() -> None:
        with unit_lock(archive["out"], "T1"):
            ready.set()
            release.wait(30)

    holder = ctx.Process(target=hold)
    holder.start()
    try:
        assert ready.wait(30)
        args = ["run", str(archive["proc"]), "--serial", "T1", "--out", str(archive["out"]), "--reports",
                str(archive["reports"]), "--results", str(archive["results"]), "--resume"]
        assert main(args) == 2
        line = _one_error(capsys)
        assert f"pid {holder.pid}" in line and "T1" in line and ".lock" in line
    finally:
        release.set()
        holder.join(30)
    with unit_lock(archive["out"], "T1"), pytest.raises(CalibError, match="another calib process"):
        with _other_process_lock(archive["out"]):
            pass


class _other_process_lock:  # lower case: a context manager used once
    """Take the unit lock from a forked child and report its error (the parent holds it)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __enter__(self) -> None:
        import multiprocessing as mp

        queue = mp.get_context("fork").Queue()

        def child() -> None:
            from calib.stages import recovery

            recovery._HELD.clear()  # a fresh process holds nothing
            try:
                with unit_lock(self.out, "T1"):
                    queue.put("")
            except CalibError as exc:
                queue.put(str(exc))

        p = mp.get_context("fork").Process(target=child)
        p.start()
        message = queue.get(timeout=30)
        p.join(30)
        if message:
            raise CalibError(message)

    def __exit__(self, *exc: object) -> None:
        return None


def test_unexpected_error_is_one_line_with_a_logged_trace(archive, tmp_path, capsys, monkeypatch) -> None:
    import calib.stages.unit_report as unit

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(unit, "build_unit_report", broken)
    monkeypatch.setenv("CALIB_LOG_DIR", str(tmp_path / "logs"))
    assert main(_report_args(archive)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calib: internal error: ZeroDivisionError: a bug (trace in ")
    (log,) = (tmp_path / "logs").iterdir()
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_os_error_is_one_line_exit_2(archive, capsys, monkeypatch) -> None:
    import errno

    import calib.report.results as results

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(archive["results"]))

    monkeypatch.setattr(results, "_write_atomic", full)
    (tmp := archive["base"] / "elsewhere").mkdir()
    # The archive's own reports folder: its PDF of this verification stands (calib.report.pdf.is_report_of),
    # so none is drawn again before the results table is written.
    args = ["report", str(archive["verification"]), "--reports", str(archive["reports"]), "--results",
            str(tmp / "t.csv")]
    assert main(args) == 2
    line = _one_error(capsys)
    assert "No space left on device" in line and "--resume" in line


def test_sim_fault_option_adds_to_the_procedures_faults() -> None:
    declared = SimFaults(dead_drivers=["left"], stall_at_deg=-90.0)
    merged = declared.merged(SimFaults(reversed_drivers=["right"], dead_drivers=["right"]))
    assert merged.dead_drivers == ["left", "right"] and merged.reversed_drivers == ["right"]
    assert merged.stall_at_deg == -90.0


def test_results_lock_wait_times_out_with_one_line(archive, tmp_path, capsys, monkeypatch) -> None:
    import fcntl

    import calib.report.results as results

    monkeypatch.setattr(results, "LOCK_TIMEOUT_S", 0.3)
    table = tmp_path / "t.csv"
    with open(tmp_path / ".t.csv.lock", "a") as held:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        ready, release = ctx.Event(), ctx.Event()

        def hold() -> None:
            with open(tmp_path / ".t.csv.lock", "a") as h:
                fcntl.flock(h, fcntl.LOCK_EX)
                ready.set()
                release.wait(600)  # held until the test releases it: a report slowed by a busy machine still meets it

        p = ctx.Process(target=hold)
        p.start()
        assert ready.wait(30)
        try:
            # the archive's PDF of this verification stands: none is drawn before the table's lock is taken
            args = ["report", str(archive["verification"]), "--reports", str(archive["reports"]), "--results",
                    str(table)]
            assert main(args) == 2
            line = _one_error(capsys)
            assert ".t.csv.lock" in line and "0.3 s" in line
        finally:
            release.set()
            p.join(30)
        assert not held.closed
    assert not table.exists()


def test_resume_sets_aside_what_does_not_validate_and_does_not_verify_a_finished_unit(archive, capsys) -> None:
    unit = archive["unit"]
    junk = {
        "characterize-29990101T000000Z.h5": b"",  # a 0-byte file newer than the real one
        "calibration-29990101T000000Z.h5": archive["calibration"].read_bytes()[:96],  # killed while written
        "verify-29990101T000000Z.h5": archive["verification"].read_bytes()[:4096],  # truncated by a full disk
    }
    for name, data in junk.items():
        (unit / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in unit.glob("*-*.h5")}
    args = ["run", str(archive["proc"]), "--serial", "T1", "--out", str(archive["out"]), "--reports",
            str(archive["reports"]), "--results", str(archive["results"]), "--resume"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("calib: note: set aside")]
    assert len(notes) == 3 and all(any(name in line for line in notes) for name in junk), err
    for name, data in junk.items():
        (aside,) = unit.glob(f"{name}.set-aside-*")
        assert aside.read_bytes() == data, "set aside, never deleted or changed"
    assert {p.name: p.read_bytes() for p in unit.glob("*-*.h5")} == {k: v for k, v in before.items()
                                                                       if k not in junk}
    assert f"reusing {archive['verification']}" in out and "already recorded" in out
    assert len(pd.read_csv(archive["results"])) == 1
    assert main(["verify", str(archive["calibration"]), "--out", str(archive["out"]), "--reports",
                 str(archive["reports"]), "--results", str(archive["results"]), "--resume"]) == 0
    assert f"reusing {archive['verification']}" in capsys.readouterr().out
    assert sorted(p.name for p in unit.glob("verify-*.h5")) == [archive["verification"].name]


def test_results_table_gets_umask_permissions(archive, tmp_path) -> None:
    old = os.umask(0o027)
    try:
        table = tmp_path / "t.csv"
        args = ["report", str(archive["verification"]), "--reports", str(tmp_path / "r"), "--results", str(table)]
        assert main(args) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(table.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "r" / "T1.pdf").stat().st_mode) == 0o640
