"""calib run end to end on a small product: summary, resume after an interruption, a stalled turntable."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from calib.capture.plan import plan_characterize
from calib.capture.runner import find_measurements, new_measurement_path, run_measurement
from calib.cli.main import main
from calib.procedure import load_procedure
from calib.rig.factory import open_rig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def duo(tmp_path):
    """Duo 2 on a 30-degree grid with 0.5 s sweeps: a whole run in a few seconds."""
    text = (ROOT / "procedures" / "duo2.toml").read_text()
    text = text.replace("step_deg = 10.0", "step_deg = 30.0").replace("duration_s = 1.0", "duration_s = 0.5")
    path = tmp_path / "duo-fast.toml"
    path.write_text(text)
    return path


def _args(duo, tmp_path, *extra):
    return ["run", str(duo), "--serial", "D1", "--out", str(tmp_path / "m"), "--reports", str(tmp_path / "r"),
            "--results", str(tmp_path / "results.csv"), *extra]


def test_run_ends_with_pass_a_pdf_and_a_summary_table(duo, tmp_path, capsys):
    assert main(_args(duo, tmp_path)) == 0
    out = capsys.readouterr().out
    table = out[out.index("stage    output"):]
    assert re.search(r"^measure\s+\S+characterize-\S+\.h5\s+\d+\.\ds$", table, re.M)
    assert re.search(r"^report\s+\S+D1\.pdf\s+\d+\.\ds$", table, re.M)
    assert table.rstrip().endswith("D1: PASS (15 checks, 0 failed)")
    assert (tmp_path / "r" / "D1.pdf").read_bytes()[:5] == b"%PDF-"


def test_run_resume_continues_an_interrupted_measurement(duo, tmp_path, capsys):
    proc = load_procedure(duo)
    plan = plan_characterize(proc)
    path = new_measurement_path(tmp_path / "m", "D1", "characterize")

    class Interrupted(Exception):
        pass

    def stop_after_three(group, index):
        if group == "directivity" and index == 2:
            raise Interrupted

    with open_rig("sim", proc, "D1") as rig, pytest.raises(Interrupted):
        run_measurement(plan, rig, path, serial="D1", procedure_text=proc.source_text,
                        procedure_sha256=proc.sha256, progress=False, on_step=stop_after_three)
    with h5py.File(path, "r") as f:
        assert not f.attrs["complete"] and int(f["directivity/done"][()].sum()) == 3

    assert main(_args(duo, tmp_path, "--resume")) == 0
    out = capsys.readouterr()
    assert f"resuming {path}" in out.err
    assert find_measurements(tmp_path / "m", "D1", "characterize") == [path]  # continued, not restarted
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] and np.all(f["directivity/done"][()])
    # a second --resume reuses the measurement and the calibration fitted from it (verification re-measures)
    (calibration,) = sorted((tmp_path / "m" / "D1").glob("calibration-*.h5"))
    assert main(_args(duo, tmp_path, "--resume")) == 0
    out = capsys.readouterr().out
    assert f"reusing {path}" in out and f"reusing {calibration}" in out
    assert sorted((tmp_path / "m" / "D1").glob("calibration-*.h5")) == [calibration]


def test_stalled_turntable_stops_with_one_line_and_keeps_the_steps(duo, tmp_path, capsys):
    text = duo.read_text() + "\n[sim.faults]\nstall_at_deg = -100.0\n"
    duo.write_text(text)
    code = main(["measure", str(duo), "--serial", "D2", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("calib: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert re.search(r"stalled at -100 deg", lines[0])
    (path,) = find_measurements(tmp_path / "m", "D2", "characterize")
    with h5py.File(path, "r") as f:
        done = f["directivity/done"][()]
        assert not f.attrs["complete"]
        assert 0 < done.sum() < done.size  # the steps before the stall are kept
        assert np.all(np.isfinite(f["directivity/ir"][np.flatnonzero(done)]))
