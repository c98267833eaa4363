"""SOFA export: read back by independent readers (sofar, netCDF4), AES69-verified, geometry checked."""

from __future__ import annotations

from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import sofar

from calib.errors import FileFormatError
from calib.procedure import parse_procedure
from calib.procedure.layout import head_position
from calib.store.measurement import StepQuality, create_measurement, write_step
from calib.store.sofa import export_sofa

ROOT = Path(__file__).resolve().parents[2]
AURORA = ROOT / "procedures" / "aurora5.toml"
DUO = ROOT / "procedures" / "duo2.toml"
N = 96


def _quality(n_recv: int, n_src: int) -> StepQuality:
    return StepQuality(np.zeros((n_recv, n_src)), np.zeros((n_recv, n_src)), np.zeros(n_recv), np.zeros(n_src, int))


def _measurement(tmp_path: Path, text: str, *, skip: tuple[str, int] | None = None, seed: int = 0):
    """A measurement file with random IRs for every step (but ``skip``); returns (path, proc, dir_ir, bin_ir)."""
    proc = parse_procedure(text)
    az = proc.turntable.grid_deg()
    positions = [head_position(p) for p in proc.positions]
    n_s, n_r = len(proc.drivers), len(proc.mics)
    path = create_measurement(
        tmp_path / "m.h5", serial="SN42", stage="characterize", sample_rate=proc.audio.sample_rate, rig="sim",
        simulated=True, procedure_text=text, procedure_sha256=proc.sha256, sources=proc.driver_names,
        azimuth_deg=az, receivers=proc.mic_names, positions=positions, ir_length=N,
    )
    rng = np.random.default_rng(seed)
    dir_ir = rng.standard_normal((len(az), n_r, n_s, N)).astype(np.float32)
    bin_ir = rng.standard_normal((len(positions), 2, n_s, N)).astype(np.float32)
    for i in range(len(az)):
        if skip != ("directivity", i):
            write_step(path, "directivity", i, dir_ir[i], _quality(n_r, n_s))
    for i in range(len(positions)):
        if skip != ("binaural", i):
            write_step(path, "binaural", i, bin_ir[i], _quality(2, n_s))
    return path, proc, dir_ir, bin_ir


def _rotation_from_view(view_sph: np.ndarray) -> np.ndarray:
    """[M, 3, 3] local -> global rotation for a horizontal view (azimuth, 0, 1) and up = +z."""
    az = np.deg2rad(view_sph[:, 0])
    x = np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], -1)
    z = np.broadcast_to([0.0, 0.0, 1.0], x.shape)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)  # columns: local axes in global coordinates


def test_directivity_round_trip_and_geometry(tmp_path):
    path, proc, dir_ir, _ = _measurement(tmp_path, AURORA.read_text())
    out = export_sofa(path, tmp_path / "unit.sofa")
    assert out == tmp_path / "unit.sofa"

    sofa = sofar.read_sofa(str(out), verify=True, verbose=False)
    sofa.verify()  # AES69 rules as sofar implements them; raises on a violation
    assert sofa.GLOBAL_SOFAConventions == "GeneralFIR-E" and sofa.GLOBAL_DataType == "FIR-E"
    assert sofa.GLOBAL_ApplicationName == "calib" and sofa.GLOBAL_calibSerial == "SN42"
    assert sofa.GLOBAL_RoomType == "free field" and sofa.GLOBAL_calibIRUnit == "FS/FS"
    # Data.IR is [M, R, N, E]; ours [A, Rm, S, N]. Stored as float32, so compare at float32 precision.
    np.testing.assert_allclose(sofa.Data_IR, np.moveaxis(dir_ir, 2, 3), rtol=1e-6, atol=1e-7)
    assert float(sofa.Data_SamplingRate) == 48000.0
    np.testing.assert_array_equal(np.asarray(sofa.Data_Delay), np.zeros((1, 2, 5)))

    with netCDF4.Dataset(out) as nc:  # an independent netCDF-4 reader sees the AES69 dimensions
        dims = {name: len(dim) for name, dim in nc.dimensions.items()}
        assert nc.getncattr("SOFAConventions") == "GeneralFIR-E"
        assert nc.variables["Data.IR"].dimensions == ("M", "R", "N", "E")
    assert (dims["M"], dims["R"], dims["N"], dims["E"]) == (72, 2, N, 5)

    # Measurement m: the arc stands at the recorded azimuth in the device frame.
    az = proc.turntable.grid_deg()
    np.testing.assert_allclose(sofa.ListenerPosition[:, 0], np.mod(az, 360.0), atol=1e-12)
    np.testing.assert_allclose(sofa.ListenerPosition[:, 1:], [[0.0, 2.0]] * 72, atol=1e-12)
    # Every receiver's global position = listener + rotated local offset = the mic on the arc (az, el, d).
    lp = np.deg2rad(sofa.ListenerPosition)
    listener_xyz = 2.0 * np.stack([np.cos(lp[:, 0]), np.sin(lp[:, 0]), np.zeros(72)], -1)
    rot = _rotation_from_view(np.asarray(sofa.ListenerView))
    mic_xyz = listener_xyz[:, None, :] + np.einsum("mij,rj->mri", rot, np.asarray(sofa.ReceiverPosition))
    el = np.deg2rad([0.0, 30.0])
    a = np.deg2rad(az)[:, None]
    expected = 2.0 * np.stack([np.cos(el) * np.cos(a), np.cos(el) * np.sin(a), np.sin(el) + 0 * a], -1)
    np.testing.assert_allclose(mic_xyz, expected, atol=1e-12)
    # Emitters: the product's drivers ([[drivers]] position_m), device frame, in source order.
    np.testing.assert_allclose(sofa.EmitterPosition, [d.position_m for d in proc.drivers], rtol=0, atol=0)
    np.testing.assert_allclose(sofa.EmitterPosition, [[0.03, -0.065, 0.0], [0.03, 0.065, 0.0], [0.075, 0.0, 0.02],
                                                      [0.0, 0.0, 0.09], [0.06, 0.0, -0.06]], rtol=0, atol=0)
    assert "mid_left, mid_right, tweeter, up_mid, woofer" in sofa.GLOBAL_EmitterDescription


def test_binaural_export(tmp_path):
    path, proc, _, bin_ir = _measurement(tmp_path, DUO.read_text(), seed=1)
    with h5py.File(path, "r+") as f:  # as the engine records absolute level (per group, else global)
        f.attrs["ir_unit"] = "FS/FS"
        f.attrs["ir_unit_binaural"] = "Pa/FS"
    out = export_sofa(path, tmp_path / "ears", group="binaural")
    assert out.suffix == ".sofa"
    sofa = sofar.read_sofa(str(out), verify=True, verbose=False)
    np.testing.assert_allclose(sofa.Data_IR, np.moveaxis(bin_ir, 2, 3), rtol=1e-6, atol=1e-7)
    assert sofa.Data_IR.shape == (5, 2, N, 2)
    np.testing.assert_allclose(sofa.ListenerPosition, [p.xyz_m for p in proc.positions])
    np.testing.assert_allclose(sofa.ListenerView[:, 0], np.mod([p.yaw_deg for p in proc.positions], 360.0))
    # Ears: left at +100 deg, right at -100 deg (= 260) on the 8.75 cm sphere, in the head frame.
    np.testing.assert_allclose(sofa.ReceiverPosition, [[100.0, 0.0, 0.0875], [260.0, 0.0, 0.0875]])
    assert sofa.GLOBAL_calibIRUnit == "Pa/FS" and sofa.GLOBAL_Comment.startswith("IR unit Pa/FS;")

    # A station's [dummy_head], recorded in the file, places the receivers instead.
    with h5py.File(path, "r+") as f:
        f.attrs["ear_radius_m"] = 0.075
        f.attrs["ear_azimuth_deg"] = 90.0
    sofa = sofar.read_sofa(str(export_sofa(path, tmp_path / "kemar", group="binaural")), verify=True, verbose=False)
    np.testing.assert_allclose(sofa.ReceiverPosition, [[90.0, 0.0, 0.075], [270.0, 0.0, 0.075]])


def test_without_sim_section_emitters_are_the_product_geometry(tmp_path):
    """A real product's procedure (no [sim]): non-zero emitters from [[drivers]], AES69-valid."""
    text = DUO.read_text()
    text = text[: text.index("[sim.drivers.left]")]
    path, proc, _, _ = _measurement(tmp_path, text)
    assert proc.sim is None
    with h5py.File(path, "r+") as f:  # as the engine records the station's air
        f.attrs["speed_of_sound_m_s"] = 344.25
        f.attrs["speed_of_sound_source"] = "station [air]: 22 degC"
    sofa = sofar.read_sofa(str(export_sofa(path, tmp_path / "x.sofa")), verify=True, verbose=False)
    sofa.verify()
    np.testing.assert_allclose(sofa.EmitterPosition, [[0.03, -0.075, 0.0], [0.03, 0.075, 0.0]], rtol=0, atol=0)
    assert sofa.GLOBAL_calibSpeedOfSound == "344.25 m/s (station [air]: 22 degC)"
    assert sofa.GLOBAL_RoomType == "reverberant"  # no [sim] room model to vouch for a free field
    assert "not described" in sofa.GLOBAL_RoomDescription  # AES69: mandatory for a reverberant room


def test_old_file_speed_of_sound_default_and_verify_emitters(tmp_path):
    """A file without the recorded air reads as 343 m/s; verify sources (L, R, C) sit at the driver centroid."""
    path, proc, _, _ = _measurement(tmp_path, DUO.read_text())
    sofa = sofar.read_sofa(str(export_sofa(path, tmp_path / "x.sofa")), verify=True, verbose=False)
    assert sofa.GLOBAL_calibSpeedOfSound == "343.00 m/s (not recorded: calib default)"
    from calib.store.measurement import read_measurement
    from calib.store.sofa import _emitter_positions

    meas = read_measurement(path)
    meas.sources = ["L", "R", "C"]
    np.testing.assert_allclose(_emitter_positions(meas, proc), [[0.03, 0.0, 0.0]] * 3, atol=1e-15)


def test_export_errors(tmp_path):
    path, _, _, _ = _measurement(tmp_path, DUO.read_text(), skip=("directivity", 3))
    with pytest.raises(
        FileFormatError, match=r"directivity: expected every step measured .* 1 of 36 missing \(first: index 3\)"
    ):
        export_sofa(path, tmp_path / "a.sofa")
    export_sofa(path, tmp_path / "b.sofa", group="binaural")  # that group is complete
    with pytest.raises(FileExistsError, match="exists already"):
        export_sofa(path, tmp_path / "b.sofa", group="binaural")
    with pytest.raises(ValueError, match=r"group: expected one of directivity, binaural, got 'ears'"):
        export_sofa(path, tmp_path / "c.sofa", group="ears")
    with pytest.raises(FileFormatError, match=r"nope\.h5: no such file"):
        export_sofa(tmp_path / "nope.h5", tmp_path / "d.sofa")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.sofa", "m.h5"]  # no partial files left
