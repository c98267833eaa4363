"""Point-source propagation: the 1/r law and the delay r/c."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.sim.propagation import point_source, propagation_delay_s


def test_inverse_distance_law():
    f = np.array([100.0, 1000.0, 10000.0])
    g = point_source(f, np.array([0.5, 1.0, 2.0, 4.0]))
    assert_allclose(np.abs(g[1]), 1.0, rtol=1e-15)  # normalised to 1 m
    per_doubling = 20 * np.log10(np.abs(g[1:]) / np.abs(g[:-1]))
    assert_allclose(per_doubling, -20 * np.log10(2), atol=0.01)
    assert_allclose(per_doubling, -6.02, atol=0.01)


def test_delay_is_r_over_c_group_delay_and_ir_peak():
    c, fs, r = 343.0, 48000, 1.7
    f = np.linspace(100, 20000, 500)
    phase = np.unwrap(np.angle(point_source(f, r, c)))
    group_delay = -np.gradient(phase, 2 * np.pi * f)
    assert_allclose(group_delay, r / c, rtol=1e-9)
    assert_allclose(propagation_delay_s(r, c), r / c)
    # integer-sample distance: the IR is a single spike of 1/r at r/c
    n_delay = 137
    r_int = n_delay * c / fs
    ir = np.fft.irfft(point_source(np.fft.rfftfreq(1024, 1 / fs), r_int, c), n=1024)
    assert int(np.argmax(np.abs(ir))) == n_delay
    assert_allclose(ir[n_delay], 1 / r_int, rtol=1e-12)
    assert_allclose(np.delete(ir, n_delay), 0.0, atol=1e-12)


def test_nonpositive_distance_raises():
    with pytest.raises(ValueError, match="distance_m must be > 0"):
        point_source(np.array([1.0]), 0.0)
