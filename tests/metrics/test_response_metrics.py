"""Tests of calib.metrics.response: deviation from a target response per band."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.bands import third_octave_bands
from calib.metrics.response import interpolate_target_db, response_deviation_db

FREQS = np.fft.rfftfreq(8192, 1 / 48000)
BANDS = third_octave_bands(100, 10000)


def test_response_equal_to_target_has_zero_deviation():
    points = (np.array([100.0, 1000.0, 10000.0]), np.array([6.0, 0.0, -3.0]))
    target = interpolate_target_db(FREQS, *points)
    resp = 10 ** (target / 20) * np.exp(-2j * np.pi * FREQS * 0.003) * 2.0  # +6.02 dB level offset
    assert_allclose(response_deviation_db(resp, FREQS, points, BANDS), 0.0, atol=1e-9)
    assert_allclose(response_deviation_db(resp, FREQS, target, BANDS, normalize=False), 20 * np.log10(2), atol=1e-9)


def test_shape_deviation_per_band():
    tilt = np.where(FREQS >= 1000, 2.0, 1.0)  # +6 dB above 1 kHz (the 1 kHz band straddles the step)
    dev = response_deviation_db(
        np.vstack([tilt, np.ones(FREQS.size)]), FREQS, np.zeros(FREQS.size), BANDS, normalize=False
    )
    assert dev.shape == (2, len(BANDS))
    assert_allclose(dev[0, BANDS.lower_hz >= 1000], 20 * np.log10(2), atol=1e-9)
    assert_allclose(dev[0, BANDS.upper_hz <= 1000], 0.0, atol=1e-9)
    assert_allclose(dev[1], 0.0, atol=1e-12)


def test_interpolation_is_linear_in_log_frequency():
    got = interpolate_target_db(np.array([10.0, 100.0, np.sqrt(100 * 1000), 1000.0, 5000.0]), [100, 1000], [0.0, -10.0])
    assert_allclose(got, [0.0, 0.0, -5.0, -10.0, -10.0])


def test_value_errors():
    with pytest.raises(ValueError, match="points_hz and points_db must be 1-D of equal length"):
        interpolate_target_db(FREQS, [100, 200], [0.0])
    with pytest.raises(ValueError, match="points_hz must be > 0 and increasing"):
        interpolate_target_db(FREQS, [200, 100], [0.0, 1.0])
    with pytest.raises(ValueError, match="response must have F=4097 bins"):
        response_deviation_db(np.ones(5), FREQS, np.zeros(FREQS.size), BANDS)
    with pytest.raises(ValueError, match=r"target_db must have shape \[F\]=\(4097,\)"):
        response_deviation_db(np.ones(FREQS.size), FREQS, np.zeros(3), BANDS)
