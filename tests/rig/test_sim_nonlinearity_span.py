"""The simulator's nonlinearity runs only where a driver plays, with the same output as everywhere."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import calib.rig.sim as sim
from calib.rig.sim import _where_drivers_play, make_sim_rig
from calib.sim.driver import nonlinearity_band_limited
from calib.sim.lab import mic_arc
from calib.sim.params import DeviceModel, DriverModel, LatencyModel, NoiseModel

FS, N_IR = 48000, 2048
DEVICE = DeviceModel((
    DriverModel("a", (0.0, 0.05, 0.0), fc_hz=100.0, h2=0.05, h3=0.02),
    DriverModel("b", (0.0, -0.05, 0.0), fc_hz=100.0, h2=0.03, h3=0.01),
))
QUIET = NoiseModel(background_spl_db=None, self_noise_dbfs=None, input_fs_per_pa=0.05)


@pytest.mark.parametrize(("start", "stop"), [(0, 9000), (1, 8999), (4321, 7000), (2, 3)])
def test_cropped_nonlinearity_equals_the_full_length_one(start, stop):
    rng = np.random.default_rng(2)
    x = np.zeros((2, 9000))
    x[:, start:stop] = 0.5 * rng.standard_normal((2, stop - start))
    full = nonlinearity_band_limited(x, 0.05, 0.02)
    used, lo, hi = _where_drivers_play(x, np.array([0, 1]))
    assert list(used) == [0, 1]
    assert lo <= max(start - 20, 0) and hi >= min(stop + 20, 9000)
    cropped = np.zeros_like(x)
    cropped[:, lo:hi] = nonlinearity_band_limited(x[:, lo:hi], 0.05, 0.02)
    assert_allclose(cropped, full, rtol=0, atol=1e-15)
    assert np.all(full[:, :lo] == 0) and np.all(full[:, hi:] == 0)  # what the crop drops is silence


def test_playrec_is_unchanged_by_skipping_silent_outputs(monkeypatch):
    def capture(rig_x):
        r = make_sim_rig(DEVICE, mic_arc(1.0, [0.0, 45.0]), sample_rate=FS, n_ir=N_IR, noise=QUIET,
                         latency=LatencyModel(0, 0))
        return r.audio.playrec(rig_x)

    x = np.zeros((3, 12000))
    x[0, 3000:6000] = 0.4 * np.sin(2 * np.pi * 440 * np.arange(3000) / FS)  # driver b (output 1) silent
    x[2, 3000] = 1.0  # the loopback
    got = capture(x)
    # Reference: the nonlinearity over every output and every sample, as before the crop.
    monkeypatch.setattr(sim, "_where_drivers_play", lambda x, drv: (np.flatnonzero(drv >= 0), 0, x.shape[-1]))
    ref = capture(x)
    assert_allclose(got, ref, rtol=0, atol=1e-14 * np.abs(ref).max())


def test_no_driver_plays():
    used, lo, hi = _where_drivers_play(np.zeros((3, 100)), np.array([0, 1, -1]))
    assert used.size == 0 and (lo, hi) == (0, 0)
    used, _, _ = _where_drivers_play(np.ones((3, 100)), np.array([-1, 1, -1]))
    assert list(used) == [1]  # outputs without a driver (the loopback) never pass the nonlinearity
