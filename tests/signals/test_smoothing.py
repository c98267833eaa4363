"""Fractional-octave smoothing: a direct window mean, a pink spectrum in closed form, bad input."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.signals.smoothing import smooth_fractional_octave


def test_smoothing_matches_a_direct_window_mean() -> None:
    rng = np.random.default_rng(1)
    freqs = np.linspace(0.0, 2000.0, 201)
    power = rng.random((2, freqs.size))
    got = smooth_fractional_octave(freqs, power, fraction=3)
    half = 2 ** (1 / 6)
    for i in (0, 1, 7, 50, 120, 200):  # reference: the mean over the window, bin by bin
        inside = (freqs >= freqs[i] / half) & (freqs <= freqs[i] * half)
        inside[i] = True
        np.testing.assert_allclose(got[:, i], power[:, inside].mean(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(smooth_fractional_octave(freqs, np.full(freqs.size, 3.0)), 3.0, rtol=1e-12)


def test_smoothing_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="F=3 bins"):
        smooth_fractional_octave(np.arange(3.0), np.ones(4))
    with pytest.raises(ValueError, match="fraction: expected a positive integer"):
        smooth_fractional_octave(np.arange(3.0), np.ones(3), fraction=0)


def test_smoothing_keeps_a_power_law_in_closed_form() -> None:
    # Bins spaced by the ratio r with the window edge f·2^(1/6) halfway (in log f) between bins m and m+1:
    # every interior window holds the 2m+1 bins f·r^j, |j| <= m. A power law p = f^a then smooths to
    # f^a · mean(r^(a j)), a geometric series: a pink spectrum (a = -1) stays pink, scaled by that constant.
    m, a = 4, -1.0
    r = 2.0 ** (1.0 / (6 * (m + 0.5)))
    freqs = 100.0 * r ** np.arange(120)
    got = smooth_fractional_octave(freqs, freqs**a, fraction=3)
    series = (r ** (-a * m)) * (r ** (a * (2 * m + 1)) - 1.0) / (r**a - 1.0) / (2 * m + 1)
    inner = slice(m, freqs.size - m)
    assert_allclose(got[inner], freqs[inner] ** a * series, rtol=1e-12)
    # at the ends the window is cut: the mean over the bins that exist (the first bin: bins 0..m)
    assert_allclose(got[0], np.mean(freqs[: m + 1] ** a), rtol=1e-12)
