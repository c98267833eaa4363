"""The whole chain in real rooms: gated fit and verification against the same unit in free field.

Aurora 5 on a 30-degree grid (12 azimuths including 0 and +-90) with a 1 s
sweep (the physics is the product's; the grid and sweep only save test time) is measured,
fitted and verified in free field and in each room preset; the room runs must
PASS, agree with the free-field run in every band the gates support, and
their filters must describe the unit, not the room: applied to the unit's
free-field truth they do what the free-field filters do.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.cli.main import main
from calib.geometry import HeadPosition
from calib.procedure.load import parse_procedure
from calib.rig.virtual_lab import mic_receivers, unit_device
from calib.sim.lab import EarReceiver, VirtualLab
from calib.stages.fit import fit_file
from calib.stages.measure import measure_unit
from calib.stages.product_metrics import Metrics, horizontal_mic_index, product_metrics, rfft_grid
from calib.stages.unit_report import build_unit_report
from calib.stages.verify import verify_calibration
from calib.store.calibration import read_calibration
from calib.store.measurement import read_measurement

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("treated_booth", "typical_lab", "bare_room")
SERIAL = "SN-ROOM"
CAP_DB = 30.0  # deeper cancellation/nulls sit at the crosstalk ear's noise floor: compared as "at least 30 dB"
pytestmark = pytest.mark.slow


def _procedure_text(room: str | None) -> str:
    text = (ROOT / "procedures" / "aurora5.toml").read_text().replace("step_deg = 5.0", "step_deg = 30.0")
    text = text.replace("duration_s = 2.0", "duration_s = 1.0")
    return text if room is None else text + f'\n[sim.room]\npreset = "{room}"\n'


def _run(base: Path, room: str | None) -> dict:
    folder = base / (room or "free_field")
    folder.mkdir()
    proc_path = folder / "aurora5.toml"
    proc_path.write_text(_procedure_text(room))
    out = folder / "measurements"
    characterize = measure_unit(str(proc_path), SERIAL, "sim", str(out), resume=False)
    fit = fit_file(characterize)
    verification = verify_calibration(fit.path, "sim", out, progress=False)
    return {"proc_path": proc_path, "characterize": characterize, "fit": fit,
            "report": build_unit_report(verification)}


# session: pytest-xdist may interleave other modules, which tears a module fixture down
@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("rooms")
    return {room: _run(base, room) for room in (None, *ROOMS)}


def _capped(x: np.ndarray) -> np.ndarray:
    return np.minimum(x, CAP_DB)


def _supported(room_values: np.ndarray, free_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(room_values, float), np.asarray(free_values, float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


@pytest.mark.parametrize("room", ROOMS)
def test_room_run_passes_and_matches_free_field(runs, room):
    """PASS, and design-position cancellation and beam metrics within 2 dB of free field in every supported band."""
    report, free = runs[room]["report"], runs[None]["report"]
    assert report.verdict == "PASS", [c.line() for c in report.checks if not c.passed]
    assert report.gates is not None and report.gates.binaural.gated
    proc = report.procedure
    names = list(report.verified.ctc.positions)
    design = [names.index(p.name) for p in proc.design_positions()]
    cg_room = report.verified.ctc.cancellation_db[:, design]
    cg_free = free.verified.ctc.cancellation_db[:, design]
    supported = np.isfinite(cg_room)
    assert supported.sum() >= 0.9 * supported.size  # the gate supports (almost) the whole target band
    assert_allclose(_capped(cg_room[supported]), _capped(cg_free[supported]), atol=2.0)
    # Nulls and sector rejection compared up to 30 dB (target 20 dB): deeper is noise and filter detail.
    for key, cap in (("null_depth_db", CAP_DB), ("sector_rejection_db", CAP_DB),
                     ("main_lobe_db", None), ("di_db", None)):
        a, b = _supported(getattr(report.verified.beam, key), getattr(free.verified.beam, key))
        assert a.size > 0
        if cap is not None:
            a, b = np.minimum(a, cap), np.minimum(b, cap)
        assert_allclose(a, b, atol=2.0, err_msg=key)


def _true_metrics(proc_text: str, calibration: Path, lowest_hz: tuple[float, float]) -> Metrics:
    """Metrics of a calibration applied to unit SERIAL's free-field true transfer functions."""
    proc = parse_procedure(proc_text)
    cal = read_calibration(calibration)
    lab = VirtualLab(unit_device(proc, SERIAL), proc.audio.sample_rate, n_ir=proc.sim.true_ir_length)
    fs = proc.audio.sample_rate
    n_fft = 2 * lab.n_ir
    freqs = rfft_grid(n_fft, fs)
    fir = np.fft.rfft(cal.fir.astype(float), n_fft, axis=-1)  # [K, S, F]
    heads = [HeadPosition(p.name, p.xyz_m, p.yaw_deg) for p in proc.positions]
    ears = np.stack([lab.transfer(freqs, [EarReceiver(h, 0), EarReceiver(h, 1)]) for h in heads], axis=1)
    ears_lr = np.einsum("fpes,ksf->fpek", ears, fir[:2])  # [F, P, 2, 2]
    mic = mic_receivers(proc)[horizontal_mic_index(proc)]
    azimuths = proc.turntable.grid_deg()
    arc = np.stack([lab.transfer(freqs, [mic], -az)[:, 0] for az in azimuths], axis=1)  # [F, A, S]
    pattern = np.einsum("fas,sf->fa", arc, fir[2])
    return product_metrics(proc, freqs, ears_lr, [p.name for p in proc.positions], pattern, azimuths, cal.fir, fs,
                           lowest_hz=lowest_hz)


@pytest.mark.parametrize("room", ROOMS)
def test_room_calibration_on_the_free_field_unit_performs_like_the_free_field_calibration(runs, room):
    """The room is not baked into the filters: within 2 dB at design and holdout positions (supported bands).

    Compared up to 20 dB of cancellation (the design target plus its margin):
    beyond it the crosstalk residual is filter detail, and there the room's
    filters must only be no more than 2 dB worse (capped at 30 dB).
    """
    gates = runs[room]["fit"].gates
    mic = horizontal_mic_index(runs[room]["report"].procedure)
    lowest = (gates.binaural.lowest_hz, gates.directivity[mic].lowest_hz)
    text = _procedure_text(None)
    with_room = _true_metrics(text, runs[room]["fit"].path, lowest)
    free = _true_metrics(text, runs[None]["fit"].path, lowest)
    a, b = _supported(with_room.ctc.cancellation_db, free.ctc.cancellation_db)
    assert_allclose(np.minimum(a, 20.0), np.minimum(b, 20.0), atol=2.0)
    assert np.all(_capped(a) >= _capped(b) - 2.0)
    # The beam: a 3 ms gate cannot resolve the woofer's low-frequency ring-down, so the
    # room's nulls on the free-field truth are shallower than the free-field filters' at
    # the band's low end (about 25 dB against 42 dB at 800 Hz): they must still meet the target.
    beam = runs[room]["report"].procedure.targets.beam
    a = with_room.beam.null_depth_db[np.isfinite(with_room.beam.null_depth_db)]
    assert a.size > 0 and np.all(a >= beam.null_depth_min_db - beam.tolerance_db)


@pytest.mark.parametrize("room", ROOMS)
def test_detected_first_reflections_agree_with_the_image_sources(runs, room):
    """Within 0.2 ms of the geometry for every IR where a reflection was detected (nearly all of them)."""
    meas = read_measurement(runs[room]["characterize"])
    for group in ("directivity", "binaural"):
        r = meas.reflections[group]
        detected = r["first_s"] - r["direct_s"]
        geometric = r["geometric_first_s"] - r["geometric_direct_s"]
        found = np.isfinite(detected)
        assert found.mean() > 0.8, (group, found.mean())
        assert np.max(np.abs(detected[found] - geometric[found])) < 0.2e-3
    from calib.cli.cmd_measure import describe_measurement

    text = describe_measurement(runs[room]["characterize"])
    assert re.search(r"reflections arc_0 +first after [0-9.]+ ms \(detected, geometry [0-9.]+ ms\); gate: [0-9.]+ ms "
                     r"reflection-free \((detected|geometry)\), lowest [0-9]+ Hz", text), text


def test_free_field_measurement_is_ungated_and_gives_the_same_filters(runs):
    """No reflection is found in free field, so gating changes nothing (the shipped products are unchanged)."""
    fit = runs[None]["fit"]
    assert not fit.gates.binaural.gated and not any(g.gated for g in fit.gates.directivity)
    meas = read_measurement(runs[None]["characterize"])
    assert all(np.all(np.isnan(meas.reflections[g]["first_s"])) for g in ("directivity", "binaural"))
    from calib.stages.fit import fit_measurement

    meas.procedure_text += '\n[gate]\nmode = "off"\n'
    assert np.array_equal(fit_measurement(meas).calibration.fir, fit.calibration.fir)


def test_check_refuses_a_target_band_below_what_the_room_supports(tmp_path, capsys):
    text = _procedure_text("bare_room").replace("curve_hz_db = [[500.0, 15.0]", "curve_hz_db = [[160.0, 15.0]")
    path = tmp_path / "low.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path}: targets.cancellation: the band starts at 160 Hz" in err[0]
    # The ears' floor reflection, 2 x 1.2 m down and 1 m across: about 4.4 ms, so about 1 / 4.2 ms.
    supported = float(re.search(r"which supports (\d+) Hz and up", err[0]).group(1))
    assert 200 < supported < 300
    assert main(["measure", str(path), "--serial", "X1", "--out", str(tmp_path / "m")]) == 2
    assert not list(tmp_path.rglob("*.h5"))  # refused before anything was measured
