"""Tests of calib.metrics.effort: filter effort and white-noise gain against hand values."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.bands import third_octave_bands
from calib.metrics.effort import band_effort_db, effort_db, max_effort_db, white_noise_gain_db

FREQS = np.fft.rfftfreq(1024, 1 / 48000)


def test_effort_per_bin_max_and_band():
    H = np.full((FREQS.size, 3, 2), 0.5 + 0j)
    H[:, 1, 0] = np.linspace(0.1, 4.0, FREQS.size) * 1j
    per_bin = effort_db(H)
    assert_allclose(per_bin, 20 * np.log10(np.maximum(0.5, np.linspace(0.1, 4.0, FREQS.size))))
    assert max_effort_db(H) == pytest.approx(20 * np.log10(4.0))
    band = (FREQS >= 1000) & (FREQS <= 2000)
    assert max_effort_db(H, FREQS, (1000.0, 2000.0)) == pytest.approx(per_bin[band].max())
    bands = third_octave_bands(1000, 2000)
    got = band_effort_db(H, FREQS, bands)
    for i in range(len(bands)):
        inside = (FREQS >= bands.lower_hz[i]) & (FREQS < bands.upper_hz[i])
        want = 10 * np.log10(max(0.25, np.mean(np.abs(H[inside, 1, 0]) ** 2)))
        assert got[i] == pytest.approx(want)


def test_white_noise_gain_references():
    c0 = np.tile([1.0, 1.0j, -1.0], (4, 1))
    one_driver = np.tile([1.0, 0, 0], (4, 1))
    delay_and_sum = c0.conj() / 3
    assert_allclose(white_noise_gain_db(c0, one_driver), 0.0, atol=1e-12)
    assert_allclose(white_noise_gain_db(c0, delay_and_sum[..., None]), 10 * np.log10(3), atol=1e-12)
    # a differential pair: |1 - 0.5|^2 / ((1 + 0.25) * 1) = 0.2 -> -6.99 dB
    pair = np.tile([1.0, 0.5j, 0.0], (4, 1))
    assert_allclose(white_noise_gain_db(c0, pair), 10 * np.log10(0.2), atol=1e-12)


def test_value_errors():
    with pytest.raises(ValueError, match=r"H must have shape \[F, S, \.\.\.\]"):
        effort_db(np.ones(3))
    with pytest.raises(ValueError, match="freqs_hz is required with band_hz"):
        max_effort_db(np.ones((3, 2)), band_hz=(1.0, 2.0))
    with pytest.raises(ValueError, match="no bin inside band_hz"):
        max_effort_db(np.ones((3, 2)), np.array([0.0, 1.0, 2.0]), (5.0, 6.0))
    with pytest.raises(ValueError, match=r"plant_on_axis \[F, S\] and H \[F, S\] must match"):
        white_noise_gain_db(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="freqs_hz is required with bands"):
        white_noise_gain_db(np.ones((3, 2)), np.ones((3, 2)), bands=third_octave_bands(100, 200))
