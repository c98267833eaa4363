"""Product geometry lives in [[drivers]]; a procedure without [sim] is a valid real product."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.testing import assert_allclose

from calib.cli.main import EXIT_ERROR, main
from calib.procedure import load_procedure
from calib.rig.virtual_lab import nominal_device

ROOT = Path(__file__).resolve().parents[2]
AURORA = ROOT / "procedures" / "aurora5.toml"
DUO = ROOT / "procedures" / "duo2.toml"


def _without_sim(tmp_path: Path) -> Path:
    text = DUO.read_text()
    path = tmp_path / "duo-real.toml"
    path.write_text(text[: text.index("[sim.drivers.left]")])
    return path


def test_virtual_lab_builds_drivers_at_the_product_geometry():
    proc = load_procedure(AURORA)
    device = nominal_device(proc)
    assert_allclose([d.position_m for d in device.drivers], [d.position_m for d in proc.drivers], rtol=0, atol=0)
    # axis_deg [azimuth, elevation]: mid_left at -60 deg azimuth, up_mid straight up.
    axes = {d.name: d.axis for d in device.drivers}
    assert_allclose(axes["mid_left"], [0.5, -np.sqrt(3) / 2, 0.0], atol=1e-15)
    assert_allclose(axes["up_mid"], [0.0, 0.0, 1.0], atol=1e-15)
    assert_allclose(axes["tweeter"], [1.0, 0.0, 0.0], atol=0)


def test_procedure_without_sim_checks_ok_and_the_sim_rig_refuses_it(tmp_path, capsys):
    path = _without_sim(tmp_path)
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
    code = main(["measure", str(path), "--serial", "SN1", "--out", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert code == EXIT_ERROR == 2
    lines = err.strip().splitlines()
    assert lines == [f"calib: error: {path}: sim: the virtual lab needs a [sim] section (driver physics, noise, "
                     "latency); this procedure has none: measure it with --rig portaudio"], err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").rglob("*.h5"))


def test_devices_lists_turntable_drivers_and_marks_the_lt360_unverified(capsys):
    assert main(["devices"]) in (0, None)
    out = capsys.readouterr().out
    assert "  et250 " in out and "port 6668" in out
    lt360 = next(line for line in out.splitlines() if line.strip().startswith("lt360"))
    assert "UNVERIFIED" in lt360


def test_sim_rig_records_the_simulated_air(tmp_path):
    from calib.rig.virtual_lab import open_sim_rig

    path = tmp_path / "duo-340.toml"
    path.write_text(
        DUO.read_text().replace("[sim.drivers.left]", "[sim]\nspeed_of_sound = 340.0\n\n[sim.drivers.left]")
    )
    with open_sim_rig(load_procedure(path), "SN1") as rig:
        assert (rig.speed_of_sound_m_s, rig.air) == (340.0, "simulated: [sim] speed_of_sound")
