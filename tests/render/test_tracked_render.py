"""Tracked rendering: a head crossing the area at 0.5 m/s, cells switched with a one-block crossfade.

The bank is fitted from the virtual lab's true ear responses on a coarse grid
(a 10 cm wide area of 4 cells, measured at its two edges), which keeps this
cheap; the measured path is tests/stages/test_tracked_bank.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.signal import fftconvolve

from calib.geometry import HeadPosition
from calib.metrics.bands import band_power_average, third_octave_bands
from calib.procedure.load import parse_procedure
from calib.render.stream import render_blocks
from calib.render.tracked import (
    HeadTrack,
    TrackedConvolver,
    TrackError,
    read_track,
    render_tracked,
)
from calib.rig.virtual_lab import unit_device
from calib.sim.lab import EarReceiver, VirtualLab
from calib.solve.ctc import design_ctc
from calib.solve.fir import synthesize_fir
from calib.stages.fit import design_target_db, virtualizer_fir
from calib.stages.tracked import area_grid, fit_bank
from calib.store.calibration import AreaBank, Calibration

ROOT = Path(__file__).resolve().parents[2]
FS = 48000
N_FFT = 4096  # the lab's IR length: spectra exact, half the bins of a fit
BLOCK = 1024
SPEED_M_S = 0.5


def _small_area_procedure():
    text = (ROOT / "procedures" / "aurora5_area.toml").read_text()
    for key, value in (("lateral_m", 0.05), ("depth_m", 0.0), ("yaw_range_deg", 0.0)):
        text = re.sub(rf"(?m)^{key} = [^ \n]*", f"{key} = {value!r}", text, count=1)
    return parse_procedure(text, "small_area.toml")


@pytest.fixture(scope="module")
def world():
    """The procedure, the unit's lab (truth), and a calibration with a fixed set and a 4-cell bank."""
    proc = _small_area_procedure()
    lab = VirtualLab(unit_device(proc, "SN-RT"), FS, n_ir=4096)

    def irs(xyz, yaws):
        heads = [
            HeadPosition(f"h{i}", tuple(float(v) for v in p), float(w))
            for i, (p, w) in enumerate(zip(xyz, yaws, strict=True))
        ]
        out = lab.true_irs([EarReceiver(h, e) for h in heads for e in (0, 1)])
        return out.reshape(len(heads), 2, *out.shape[1:])

    freqs = np.fft.rfftfreq(N_FFT, 1 / FS)
    target = design_target_db(proc, freqs)
    grid = area_grid(proc)
    grid_tfs = np.moveaxis(np.fft.rfft(irs(*grid.points()), N_FFT), -1, 1).reshape(*grid.shape, freqs.size, 2, 5)
    bank = fit_bank(proc, freqs, grid_tfs, target, 343.0, FS, N_FFT).bank
    design = proc.design_positions()
    plant = np.moveaxis(np.fft.rfft(irs([p.xyz_m for p in design], [p.yaw_deg for p in design]), N_FFT), -1, 0)
    fixed = design_ctc(plant, freqs, target, proc.fit.effort_cap_db, proc.fit.modeling_delay_ms * 1e-3 + 1 / 343.0)
    fir_lr = np.transpose(synthesize_fir(fixed.H, N_FFT, proc.fit.taps, FS), (1, 0, 2))
    fir = np.concatenate([fir_lr, 0.5 * (fir_lr[:1] + fir_lr[1:])])  # centre: any fixed set (C is silent here)
    cal = Calibration(serial="SN-RT", product_id="aurora5", sample_rate=FS, drivers=proc.driver_names,
                      output_channels=[1, 2, 3, 4, 5], fir=fir, virtualizer=virtualizer_fir(proc, FS),
                      virtualizer_delay_samples=32, modeling_delay_s=0.008, measurement_sha256="0" * 64,
                      procedure_sha256="0" * 64, procedure_text="", area=bank)
    return proc, irs, cal


#: Blocks the head holds still at the start: the chain (filters, 43 ms, and plant, 85 ms) fills with signal.
SETTLE_BLOCKS = 7


def _moving_head(n_blocks: int, back: bool = False) -> HeadTrack:
    """A head that holds, crosses the centre and holds or comes back.

    A head holding at y = -4.5 cm, then crossing to +4.5 cm at 0.5 m/s, then holding or coming back
    (a 100 Hz tracker).
    """
    t = np.arange(0, n_blocks * BLOCK / FS, 0.01)
    travel = SPEED_M_S * np.maximum(t - SETTLE_BLOCKS * BLOCK / FS, 0.0)
    if back:
        travel = 0.09 - np.abs(0.09 - travel)
    y = np.clip(-0.045 + travel, -0.045, 0.045)
    return HeadTrack(t, np.column_stack([np.ones_like(t), y, np.zeros_like(t)]), np.full(t.size, 180.0))


def _run(cal, inputs, track, crossfade=True, fixed_cell=None):
    conv = TrackedConvolver(cal, BLOCK, crossfade=crossfade)
    out = []
    for i in range(inputs.shape[-1] // BLOCK):
        xyz, yaw = track.at(i * BLOCK / FS)
        if fixed_cell is not None:
            xyz, yaw = cal.area.centres_m[fixed_cell], cal.area.yaw_deg[fixed_cell]
        out.append(conv.push(inputs[:, i * BLOCK:(i + 1) * BLOCK], xyz, yaw))
    return np.concatenate(out, axis=-1), conv.cells


def test_crossfade_bounds_the_output_slope_where_a_hard_switch_steps(world):
    _, _, cal = world
    n_blocks = SETTLE_BLOCKS + 18
    t = np.arange(n_blocks * BLOCK) / FS
    inputs = np.zeros((3, t.size))
    inputs[0] = 0.5 * np.sin(2 * np.pi * 300.0 * t)  # low: its own slope is small, a step would show
    track = _moving_head(n_blocks, back=True)
    y, cells = _run(cal, inputs, track)
    assert sorted(set(cells)) == [0, 1, 2, 3] and cells[-1] < 3  # across every cell and back (cached cells)
    pure = np.array([_run(cal, inputs, track, fixed_cell=c)[0] for c in range(4)])  # [C, S, N]
    # Exact: each block is its cell's output, and a switching block the raised-cosine mix of both cells.
    fade = np.sin(0.5 * np.pi * (np.arange(BLOCK) + 0.5) / BLOCK) ** 2
    previous = cells[0]
    for i, cell in enumerate(cells):
        seg = slice(i * BLOCK, (i + 1) * BLOCK)
        expected = (
            pure[cell, :, seg] if cell == previous else (1 - fade) * pure[previous, :, seg] + fade * pure[cell, :, seg]
        )
        assert_allclose(y[:, seg], expected, atol=1e-9 * np.max(np.abs(pure)))
        previous = cell
    # On the output: the slope never exceeds what the two cells and the fade allow (module docstring)...
    own = np.max(np.abs(np.diff(pure, axis=-1)))
    bound = own + np.sin(0.5 * np.pi / BLOCK) * np.max(np.abs(pure[1:] - pure[:-1]))
    assert np.max(np.abs(np.diff(y, axis=-1))) <= bound
    # ... while switching hard does step by more than that.
    hard, _ = _run(cal, inputs, track, crossfade=False)
    assert np.max(np.abs(np.diff(hard, axis=-1))) > 1.5 * bound


def test_cancellation_follows_the_moving_head(world):
    proc, irs, cal = world
    n_blocks = SETTLE_BLOCKS + 11  # 9 cm at 0.5 m/s: 8.4 blocks of 21 ms
    rng = np.random.default_rng(3)
    inputs = np.zeros((3, n_blocks * BLOCK))
    inputs[0] = 0.1 * rng.standard_normal(inputs.shape[-1])  # L' only: the left ear should hear, the right not
    track = _moving_head(n_blocks)
    tracked, _ = _run(cal, inputs, track)
    fixed_cal = Calibration(**{**cal.__dict__, "area": None, "path": None})
    from calib.render.in_memory import effective_fir, render_inputs

    fixed = render_inputs(fixed_cal, inputs, fir=effective_fir(fixed_cal))[:, :tracked.shape[-1]]
    # The head during output block i (the middle of the block); ears piecewise per block.
    mid = (np.arange(n_blocks) + 0.5) * BLOCK / FS
    heads = np.array([track.at(t)[0] for t in mid])
    plant = irs(heads, np.full(n_blocks, 180.0))  # [B, 2, S, N]
    bands = third_octave_bands(*proc.targets.cancellation.band_hz())
    freqs = np.fft.rfftfreq(BLOCK, 1 / FS)

    def per_block_cg(feeds):
        """Median over the target's third-octave bands of left over right ear power, per output block."""
        ears = np.zeros((2, n_blocks * BLOCK))
        n_ir = plant.shape[-1]
        for i in range(n_blocks):  # block i hears the feeds through the head's plant of block i
            start = max(0, i * BLOCK - n_ir)
            seg = fftconvolve(feeds[None, :, start:(i + 1) * BLOCK], plant[i], axes=-1).sum(axis=1)  # [2, n]
            ears[:, i * BLOCK:(i + 1) * BLOCK] = seg[:, i * BLOCK - start:(i + 1) * BLOCK - start]
        spectra = np.fft.rfft(ears.reshape(2, n_blocks, BLOCK) * np.hanning(BLOCK), axis=-1)
        power = band_power_average(freqs, np.abs(spectra) ** 2, bands)  # [2, blocks, B]
        return np.median(10 * np.log10(power[0] / power[1]), axis=-1)

    steady = slice(SETTLE_BLOCKS, n_blocks)  # the onset of the noise is not the point here
    cg_tracked, cg_fixed = per_block_cg(tracked)[steady], per_block_cg(fixed)[steady]
    assert np.all(cg_tracked >= 15.0), cg_tracked
    # The fixed +-1 cm zone loses the head at the edges; the tracked bank does not.
    assert np.median(cg_tracked) > np.median(cg_fixed) + 3.0, (cg_tracked, cg_fixed)


def test_track_files_and_errors(tmp_path, world):
    path = tmp_path / "track.csv"
    path.write_text("time_s,x_m,y_m,z_m,yaw_deg\n0,1,0,0,180\n0.5,1,0.1,0,170\n")
    track = read_track(path)
    assert_allclose(track.at(0.49)[0], [1, 0, 0])
    assert_allclose(track.at(0.5)[0], [1, 0.1, 0])
    assert track.at(-1.0)[1] == 180.0
    path.write_text("time_s,x_m,y_m,z_m,yaw_deg\n0,1,0,0\n")
    with pytest.raises(TrackError, match=r"track\.csv: row 2: expected 5 finite numbers"):
        read_track(path)
    path.write_text("time_s,x_m,y_m,z_m,yaw_deg\n1,1,0,0,180\n0.5,1,0,0,180\n")
    with pytest.raises(TrackError, match=r"track\.csv: row 3: time_s: expected ascending times, got 0\.5 after 1"):
        read_track(path)
    path.write_text("time_s\n")
    with pytest.raises(TrackError, match=r"expected a header line and at least one row"):
        read_track(path)
    with pytest.raises(TrackError, match=r"cannot read the head track"):
        read_track(tmp_path / "missing.csv")
    _, _, cal = world
    fixed = Calibration(**{**cal.__dict__, "area": None, "path": None})
    with pytest.raises(TrackError, match=r"no listening area bank"):
        TrackedConvolver(fixed)
    with pytest.raises(ValueError, match=r"inputs: expected shape \[3, 1024\]"):
        TrackedConvolver(cal).push(np.zeros((3, 10)), np.array([1.0, 0, 0]), 180.0)


def test_streamed_tracked_render_equals_the_fixed_render_for_a_one_cell_bank(world):
    """render_tracked is render_blocks with the convolver swapped: same upmix, same filters, same samples."""
    _, _, cal = world
    one = AreaBank(cal.fir[None, :2], np.array([[1.0, 0.0, 0.0]]), np.array([180.0]), (0.0, 0.05, 0.0))
    single = Calibration(**{**cal.__dict__, "area": one, "path": None})
    rng = np.random.default_rng(9)
    stereo = 0.1 * rng.standard_normal((2, 7000))

    def blocks():
        return (stereo[:, i:i + 3000] for i in range(0, stereo.shape[-1], 3000))

    expected = np.concatenate(list(render_blocks(single, blocks, dtype=np.float64)), axis=-1)  # as the tracked
    track = HeadTrack(np.array([0.0]), np.array([[1.0, 0.02, 0.0]]), np.array([180.0]))
    got = np.concatenate(list(render_tracked(single, blocks, track, block=512)), axis=-1)
    assert got.shape == expected.shape
    assert_allclose(got, expected, atol=1e-9 * np.max(np.abs(expected)))


def test_calib_render_with_a_track(world, tmp_path, capsys):
    """``calib render --track``: the streamed tracked render in a WAV; bad input is a one-line exit 2."""
    from scipy.io import wavfile

    from calib.cli.main import main
    from calib.store.calibration import write_calibration

    _, _, cal = world
    cal_path = write_calibration(tmp_path / "tracked.h5", Calibration(**{**cal.__dict__, "path": None}))
    rng = np.random.default_rng(4)
    stereo = (0.1 * rng.standard_normal((2, 6000))).astype(np.float32)
    wavfile.write(tmp_path / "in.wav", FS, stereo.T)
    track = tmp_path / "head.csv"
    track.write_text("time_s,x_m,y_m,z_m,yaw_deg\n0,1,-0.04,0,180\n0.05,1,0.04,0,180\n")
    assert main(["render", str(cal_path), str(tmp_path / "in.wav"), str(tmp_path / "out.wav"),
                 "--track", str(track), "--block", "512"]) == 0
    rate, out = wavfile.read(tmp_path / "out.wav")

    def blocks():
        return iter([stereo.astype(np.float64)])

    expected = np.concatenate(list(render_tracked(cal, blocks, read_track(track), block=512)), axis=-1)
    assert rate == FS and out.shape == expected.T.shape
    # calib render keeps 1 dB of headroom: the feeds scaled so that their peak is -1 dBFS (never raised)
    headroom = min(1.0, 10 ** (-1 / 20) / np.max(np.abs(expected)))
    assert_allclose(out.T, headroom * expected, atol=1e-6 * headroom * np.max(np.abs(expected)))
    capsys.readouterr()
    fixed = write_calibration(tmp_path / "fixed.h5", Calibration(**{**cal.__dict__, "area": None, "path": None}))
    assert main(["render", str(fixed), str(tmp_path / "in.wav"), str(tmp_path / "out2.wav"),
                 "--track", str(track)]) == 2
    err = capsys.readouterr().err
    assert "fixed.h5: --track needs a calibration with a listening area bank" in err and len(err.splitlines()) == 1


def test_camilladsp_export_of_the_bank(world, tmp_path, capsys):
    """One CamillaDSP configuration per cell (its L/R filters, the common C), and cells.json to pick one."""
    import json

    import yaml

    from calib.cli.main import main
    from calib.render.in_memory import effective_fir
    from calib.store.calibration import write_calibration

    _, _, cal = world
    cal_path = write_calibration(tmp_path / "tracked.h5", Calibration(**{**cal.__dict__, "path": None}))
    assert main(["export", str(cal_path), "--format", "camilladsp", "--out", str(tmp_path / "dsp")]) == 0
    assert "cells/: the listening area's bank, 4 configurations" in capsys.readouterr().out
    cells = json.loads((tmp_path / "dsp" / "cells" / "cells.json").read_text())
    assert [c["cell"] for c in cells["cells"]] == [0, 1, 2, 3]
    assert_allclose([c["centre_m"][1] for c in cells["cells"]], cal.area.centres_m[:, 1])
    assert cells["half_size"]["lateral_m"] == cal.area.half_size[1]
    cell = cells["cells"][2]
    config = yaml.safe_load((tmp_path / "dsp" / "cells" / cell["config"]).read_text())
    assert config["devices"]["capture"]["channels"] == 3
    # Cell 2's L' filter to the first driver is the bank's, virtualizer folded in; C is the fixed one.
    folder = tmp_path / "dsp" / "cells" / "cell_002"
    one = Calibration(**{**cal.__dict__, "fir": np.concatenate([cal.area.fir[2], cal.fir[2:]]), "area": None,
                         "path": None})
    eff = effective_fir(one)
    lr = np.fromfile(folder / f"L_to_{cal.drivers[0]}.raw", "<f4")
    assert_allclose(lr, eff[0, 0], atol=1e-7)
    centre = np.fromfile(folder / f"C_to_{cal.drivers[0]}.raw", "<f4")
    assert_allclose(centre, effective_fir(Calibration(**{**cal.__dict__, "area": None, "path": None}))[2, 0],
                    atol=1e-7)


def test_cancellation_map_fixed_against_tracked_with_cells_drawn(world):
    """The map over the area at hidden positions (9 across, between cells and grid points), and its figure."""
    from calib.report.area_map import area_map_figure, cell_boundaries
    from calib.stages.tracked import cancellation_map

    proc, irs, cal = world
    m = cancellation_map(proc, cal.fir[:2], cal.area, irs, FS, n_lateral=9)
    assert m.tracked_db.shape == (1, 9) and m.fixed_db.shape == (1, 9)
    assert_allclose(m.y_m, np.linspace(-0.05, 0.05, 9))
    assert np.all(m.tracked_db >= 15.0), m.tracked_db
    edges = [0, -1]  # 5 cm from the centre: 4 cm outside the fixed zone
    assert np.all(m.tracked_db[0, edges] > m.fixed_db[0, edges] + 3.0), (m.tracked_db, m.fixed_db)
    ys, _ = cell_boundaries(cal.area, 180.0)
    assert_allclose(ys, [-0.05, -0.025, 0.0, 0.025, 0.05], atol=1e-9)
    fig = area_map_figure(m, cal.area, 15.0)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    assert "tracked (cell bank): median" in panels[1].get_title()
    assert len([ln for ln in panels[1].lines if ln.get_xdata()[0] == ln.get_xdata()[1]]) == 5  # cell edges
