"""Spinoramas of one simulated aurora5 unit measured on the sphere: predicted vs verified, the lab's physics, exports.

One unit (``procedures/aurora5_sphere.toml`` at 10 deg, 0.15 s sweeps, IRs of
2048 samples from a 4096-sample truth, harmonics up to the 3rd (the model's
highest), 1024-tap filters) is characterized, fitted and verified once for the
whole module (``sphere_unit``, its own xdist group); the report pages are
drawn, not printed to PDF.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import CalibError
from calib.export.directivity import (
    SPINORAMA_COLUMNS,
    write_balloon_csv,
    write_balloon_sofa,
    write_orbit_txt,
    write_spinorama_csv,
)
from calib.metrics.spinorama import CURVES, DI_CURVES, ORBIT_DEG, orbit_directions, spinorama
from calib.procedure.layout import sphere_problem
from calib.procedure.load import load_procedure
from calib.report.pdf import page_count
from calib.report.spinorama_page import di_band_table, spinorama_page_count, spinorama_pages
from calib.sim.driver import driver_directivity
from calib.stages.spinorama import unit_spinorama

PROCEDURES = Path(__file__).resolve().parents[2] / "procedures"


@pytest.fixture(scope="module")
def sphere_unit(sim_units):
    unit = sim_units.unit("aurora5_sphere", "SPH0001", step_deg=10.0, duration_s=0.15,
                          settings=(("true_ir_length", 4096), ("ir_length", 2048), ("n_harmonics", 3),
                                    ("taps", 1024)))
    return unit.verified()


def test_centre_directivity_indices_predicted_and_verified_agree(sphere_unit):
    report = sphere_unit
    pred, ver = report.spinorama["predicted"], report.spinorama["verified"]
    assert_allclose(pred.bands_hz, ver.bands_hz)
    lo, hi = report.procedure.targets.beam.band_hz
    beam = (pred.bands_hz >= lo) & (pred.bands_hz <= hi)
    for source in ("C", "L", "R"):
        for name in DI_CURVES:
            p, v = pred.curves[source][name], ver.curves[source][name]
            assert np.all(np.isfinite(p[beam])) and np.all(np.isfinite(v[beam]))
            assert np.max(np.abs(p[beam] - v[beam])) < 1.0, (source, name)  # the bound, per 1/12 octave
    # The table on the page: mean over the beam band, the same numbers.
    rows = {name: (p, v) for name, p, v in di_band_table(report)}
    assert set(rows) == set(DI_CURVES)
    assert all(abs(p - v) < 1.0 for p, v in rows.values())
    assert_allclose(rows["Sound Power DI"][1], np.mean(ver.curves["C"]["Sound Power DI"][beam]), atol=1e-9)


def test_measured_driver_indices_match_the_labs_pistons(sphere_unit):
    # Each driver about its own axis (side mids at +-60 deg, the up-firing mid at 90 deg elevation) against the
    # lab's nominal model (piston x rear attenuation) on the standard's orbits: the whole measurement chain
    # (turntable, elevated microphones, orbits about a driver axis) checked against physics.
    report = sphere_unit
    spin = report.spinorama["predicted"]
    sim = report.procedure.sim.drivers
    assert spin.axes["mid_left"] == (-60.0, 0.0) and spin.axes["up_mid"] == (0.0, 90.0)
    for drv in report.procedure.drivers:
        model = sim[drv.name]
        f = spin.bands_hz
        band = (f >= 200.0) & (f <= model.lowpass_hz)

        def pattern(u: np.ndarray) -> np.ndarray:
            return driver_directivity(f, model.radius_m, u[:, 0], model.rear_attenuation_db)  # noqa: B023 - this iteration

        want = spinorama(pattern(orbit_directions(ORBIT_DEG, "h")), pattern(orbit_directions(ORBIT_DEG, "v")))
        for name in DI_CURVES:
            err = spin.curves[drv.name][name][band] - want[name][band]
            assert np.max(np.abs(err)) < 0.5, (drv.name, name, float(np.max(np.abs(err))))
        # The 70-point sound power against the whole measured sphere: 0.5 dB up to ka 3.4, as for the model.
        ka = 2 * np.pi * f * model.radius_m / report.procedure.sim.speed_of_sound
        err = spin.curves[drv.name]["Sound Power"] - spin.sphere_power_db[drv.name]
        assert np.max(np.abs(err[band & (ka <= 3.4)])) < 0.5, drv.name
        assert np.max(np.abs(err[band])) < 0.7, drv.name


def test_spinorama_pages_are_in_the_report(sphere_unit):
    report = sphere_unit
    pages = spinorama_pages(report)
    assert len(pages) == spinorama_page_count(report) == 2
    assert page_count(report) >= 2 + spinorama_page_count(report)
    top = pages[0].axes[0]
    assert top.get_title().startswith("C: beamformed centre")
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels[:len(CURVES)] == list(CURVES) and "Sound Power DI (predicted)" in labels
    assert "directivity index" in pages[0].axes[-1].get_ylabel() or any(
        "directivity index" in ax.get_ylabel() for ax in pages[0].axes)


def test_exports(sphere_unit, tmp_path):
    spin = sphere_unit.spinorama["verified"]
    path = write_spinorama_csv(spin, "C", tmp_path / "C.csv")
    with path.open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == SPINORAMA_COLUMNS
    table = np.array(rows[1:], dtype=float)
    assert_allclose(table[:, 0], spin.bands_hz, atol=0.01)
    assert_allclose(table[:, 4], spin.curves["C"]["Sound Power"], atol=1e-3)

    folder = write_orbit_txt(spin, "C", tmp_path / "C_orbits")
    assert len(list(folder.glob("*_H.txt"))) == len(list(folder.glob("*_V.txt"))) == 36
    on_axis = np.loadtxt(folder / "0_H.txt", skiprows=1)
    assert_allclose(on_axis[:, 1], spin.curves["C"]["On Axis"], atol=1e-3)

    pred = sphere_unit.spinorama["predicted"]
    grid = np.loadtxt(write_balloon_csv(pred, "woofer", tmp_path / "woofer.csv"), delimiter=",", skiprows=1)
    assert grid.shape == (36 * 19, 2 + pred.bands_hz.size)
    assert_allclose(grid[:, 2:].reshape(36, 19, -1), pred.sphere_db["woofer"], atol=1e-3)

    sofar = pytest.importorskip("sofar")
    sofa_path = write_balloon_sofa(pred, "woofer", tmp_path / "woofer", 2.0, (0.06, 0.0, -0.06))
    sofa = sofar.read_sofa(str(sofa_path))
    assert sofa.GLOBAL_SOFAConventions == "FreeFieldDirectivityTF"
    assert sofa.Data_Real.shape == (1, 36 * 19, pred.bands_hz.size)
    assert_allclose(sofa.N, pred.bands_hz)
    assert pred.reference == 1.0 and pred.level_label == "dB re 1 FS"  # the sim's inputs are not calibrated to Pa
    assert_allclose(sofa.Data_Real[0], 10 ** (pred.sphere_db["woofer"].reshape(36 * 19, -1) / 20), rtol=1e-9)

    with pytest.raises(CalibError, match="C.csv: exists; not overwritten"):
        write_spinorama_csv(spin, "C", tmp_path / "C.csv")
    with pytest.raises(CalibError, match="C_orbits: exists; not overwritten"):
        write_orbit_txt(spin, "C", tmp_path / "C_orbits")
    with pytest.raises(CalibError, match="source 'X': expected one of L, R, C"):
        write_spinorama_csv(spin, "X", tmp_path / "X.csv")
    with pytest.raises(CalibError, match=r"driver 'woofer': expected one of \(no driver balloons\)"):
        write_balloon_csv(spin, "woofer", tmp_path / "w.csv")  # the verified inputs have no driver balloons


def test_default_procedures_do_not_measure_the_sphere():
    proc = load_procedure(PROCEDURES / "aurora5.toml")
    assert sphere_problem(proc) == ("mics: the spinorama needs arc microphones at every 10 deg from -90 to 90 deg "
                                    "elevation, missing -90, -80, -70, -60, -50, -40, -30, -20, -10, 10, 20, 40, "
                                    "50, 60, 70, 80, 90")
    with pytest.raises(ValueError, match="the spinorama needs arc microphones"):
        unit_spinorama(proc, None)  # refused before the measurement is read
    sphere = load_procedure(PROCEDURES / "aurora5_sphere.toml")
    assert sphere_problem(sphere) is None
    coarse = sphere.model_copy(update={"turntable": sphere.turntable.model_copy(update={"step_deg": 20.0})})
    assert sphere_problem(coarse).startswith("turntable: the spinorama needs every 10 deg of azimuth, missing -170")


def test_cli_exports_everything(sphere_unit, tmp_path, monkeypatch):
    # The report is the module's (building it again is the unit report's business, tested above).
    from click.testing import CliRunner

    import calib.stages.unit_report
    from calib.cli.main import cli

    verification = sphere_unit.files["verification"]
    monkeypatch.setattr(calib.stages.unit_report, "build_unit_report", lambda path: sphere_unit)
    out = tmp_path / "spin"
    result = CliRunner().invoke(cli, ["spinorama", str(verification), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    drivers = [d.name for d in sphere_unit.procedure.drivers]
    assert "spin-C-verified.csv" in names and "spin-C-predicted.csv" in names and "orbits-L-verified" in names
    assert all(f"balloon-{d}.sofa" in names and f"balloon-{d}.csv" in names and f"spin-{d}-predicted.csv" in names
               for d in drivers)
    assert "C Sound Power DI, beam band mean: predicted" in result.output

    again = CliRunner().invoke(cli, ["spinorama", str(verification), "--out", str(out)])
    assert again.exit_code == 2
    assert f"--out: {out}: exists already; nothing was overwritten" in again.output
    missing = CliRunner().invoke(cli, ["spinorama", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "nope.h5: no such file (expected a verification file)" in missing.output


def test_export_refuses_a_unit_without_the_sphere(sphere_unit, tmp_path):
    from dataclasses import replace

    from calib.export.directivity import export_unit_directivity

    flat = replace(sphere_unit, spinorama=None, procedure=load_procedure(PROCEDURES / "aurora5.toml"))
    with pytest.raises(CalibError, match="no spinorama: mics: the spinorama needs arc microphones"):
        export_unit_directivity(flat, tmp_path / "out")
    assert not (tmp_path / "out").exists()
