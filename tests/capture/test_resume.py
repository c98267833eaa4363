"""Resumable measurements: a run killed with SIGKILL, continued with ``--resume``, equals an uninterrupted one.

The simulator draws its noise and latency from the serial, the lab state
(turntable angle, head position) and a per-state call counter, so a resumed
run measures its remaining steps with exactly the samples an uninterrupted
run gets: the files are bit-identical (IRs and quality).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from calib.capture import runner as engine
from calib.capture.runner import latest_incomplete, run_measurement
from calib.cli.main import main
from calib.errors import FileFormatError, MeasurementError
from calib.procedure import parse_procedure
from calib.store.measurement import GROUPS, read_measurement

KILL_AFTER_STEPS = 3
TIMEOUT_S = 120.0
HOLD_FILE = """
import sys, time, h5py
f = h5py.File(sys.argv[1], "r")  # a viewer: shared HDF5 file lock
print("held", flush=True)
time.sleep(float(sys.argv[2]))
f.close()
"""


def _done_steps(path: Path) -> int | None:
    """Steps flagged done, read without taking the HDF5 file lock (the writer holds the file); None if unreadable."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(sum(np.count_nonzero(f[f"{g}/done"][()]) for g in GROUPS))
    except (OSError, KeyError):  # not yet created, or caught mid-creation
        return None


def _interrupted(cap, text: str, folder: Path, n_steps: int):
    """A run stopped (KeyboardInterrupt, as Ctrl-C) after ``n_steps`` steps were written."""
    run = cap.start_run(text, folder)
    written = []

    def interrupt(group: str, index: int) -> None:
        written.append((group, index))
        if len(written) == n_steps:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cap.measure(run, on_step=interrupt)
    return run


def _assert_same_measurement(a: Path, b: Path) -> None:
    ma, mb = read_measurement(a), read_measurement(b)
    assert ma.complete and mb.complete
    assert_array_equal(ma.directivity_ir, mb.directivity_ir)
    assert_array_equal(ma.binaural_ir, mb.binaural_ir)
    for group in GROUPS:
        for key in ma.quality[group]:
            assert_array_equal(ma.quality[group][key], mb.quality[group][key], err_msg=f"{group}/{key}")


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, cap, capsys):
    azimuths = tuple(float(a) for a in range(-180, 180, 30))  # 12 azimuths + 2 positions, ~0.15 s per step
    proc_file = tmp_path / "aurora_small.toml"
    proc_file.write_text(cap.aurora_text("mesm", azimuths_deg=azimuths))
    n_steps = len(azimuths) + 2
    serial = "SN-KILL-1"
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "calib.cli.main", "measure", str(proc_file), "--serial", serial, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        done = None
        while time.monotonic() < deadline and proc.poll() is None:
            files = sorted((out / serial).glob("characterize-*.h5"))
            done = _done_steps(files[0]) if files else None
            if done is not None and done >= KILL_AFTER_STEPS:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"not killed (rc {proc.returncode}, {done} steps seen): {err.decode()}"
    files = sorted((out / serial).glob("characterize-*.h5"))
    assert len(files) == 1
    half = read_measurement(files[0])  # the half-written file opens and says what it holds
    n_done = int(half.directivity_done.sum() + half.binaural_done.sum())
    assert not half.complete
    assert KILL_AFTER_STEPS <= n_done < n_steps
    assert np.all(np.isfinite(half.directivity_ir[half.directivity_done]))
    assert np.all(np.isnan(half.directivity_ir[~half.directivity_done]))
    assert latest_incomplete(out, serial, "characterize") == files[0]

    capsys.readouterr()
    assert main(["measure", str(proc_file), "--serial", serial, "--out", str(out), "--resume"]) == 0
    assert f"resuming {files[0]}" in capsys.readouterr().err
    assert sorted((out / serial).glob("characterize-*.h5")) == files  # continued in place, no new file
    assert main(["measure", str(proc_file), "--serial", serial, "--out", str(tmp_path / "whole")]) == 0
    (whole,) = (tmp_path / "whole" / serial).glob("characterize-*.h5")
    _assert_same_measurement(files[0], whole)
    print(f"\nkilled after {n_done} of {n_steps} steps; resumed file equals the uninterrupted one")


def test_resume_measures_only_the_missing_steps(tmp_path, cap):
    text = cap.aurora_text("mesm")
    first = _interrupted(cap, text, tmp_path / "a", 3)
    m = first.m
    assert_array_equal(m.directivity_done, [True, True])
    assert_array_equal(m.binaural_done, [True, False])
    again = cap.start_run(text, tmp_path / "a")  # a new process: a fresh rig
    cap.measure(again, resume=True)
    assert len(again.latencies) == 1  # MESM: one capture, the missing head position only
    assert [p.name for p in again.rig.positioner.placed] == ["left_1cm"]
    whole = cap.measure(cap.start_run(text, tmp_path / "b"))
    _assert_same_measurement(first.path, whole.path)


def test_resume_refuses_a_file_that_does_not_match(tmp_path, cap):
    text = cap.aurora_text("mesm")
    run = _interrupted(cap, text, tmp_path, 1)
    plan, rig = run.plan, run.rig
    common = {"procedure_text": text, "progress": False, "resume": True}
    with pytest.raises(FileFormatError, match=r"cannot resume: serial is 'SN-CAP-1', this run needs 'SN-OTHER'"):
        run_measurement(plan, rig, run.path, serial="SN-OTHER", procedure_sha256=run.proc.sha256, **common)
    other = parse_procedure(text + "\n# edited\n")
    with pytest.raises(FileFormatError, match=r"cannot resume: procedure_sha256 is '[0-9a-f]{64}', this run needs"):
        run_measurement(plan, rig, run.path, serial=cap.SERIAL, procedure_sha256=other.sha256, **common)
    with pytest.raises(FileFormatError, match=r"missing\.h5: no such file"):
        run_measurement(plan, rig, tmp_path / "missing.h5", serial=cap.SERIAL, procedure_sha256=run.proc.sha256,
                        **common)
    run_measurement(plan, rig, run.path, serial=cap.SERIAL, procedure_sha256=run.proc.sha256, **common)
    assert read_measurement(run.path).complete
    with pytest.raises(FileFormatError, match=r"cannot resume: the measurement is already complete"):
        run_measurement(plan, rig, run.path, serial=cap.SERIAL, procedure_sha256=run.proc.sha256, **common)


@pytest.mark.parametrize(("hold_s", "timeout_s"), [(1.0, 30.0), (60.0, 0.3)])
def test_a_reader_holding_the_file_makes_the_writer_wait(tmp_path, cap, monkeypatch, hold_s, timeout_s):
    # Another process reading the file (HDF5 viewer, calib inspect) holds a shared lock; the engine's
    # next write waits for it instead of crashing, up to LOCKED_FILE_TIMEOUT_S, then fails cleanly.
    text = cap.aurora_text("mesm")
    first = _interrupted(cap, text, tmp_path, 1)
    monkeypatch.setattr(engine, "LOCKED_FILE_TIMEOUT_S", timeout_s)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(first.path), str(hold_s)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        again = cap.start_run(text, tmp_path)
        if hold_s < timeout_s:
            cap.measure(again, resume=True)
        else:
            with pytest.raises(MeasurementError, match=r"SN-CAP-1\.h5: another program kept the file open for "
                               r"0\.3 s \(HDF5 viewer\?\); close it and continue with --resume"):
                cap.measure(again, resume=True)
    finally:
        holder.kill()
        holder.wait()
    m = read_measurement(first.path)
    assert m.complete == (hold_s < timeout_s)
    assert_array_equal(m.directivity_done, [True, hold_s < timeout_s])
