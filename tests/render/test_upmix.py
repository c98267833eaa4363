"""Upmix: analytic cases of the centre / side model (see calib.render.upmix)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from calib.render.upmix import upmix

FS = 48000
N = 2 * FS


def _db(x: np.ndarray, ref: np.ndarray) -> float:
    """Energy of x relative to ref, dB."""
    return float(10 * np.log10(np.sum(x**2) / np.sum(ref**2) + 1e-300))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_pure_centre_goes_to_c(rng):
    x = rng.standard_normal(N)
    lp, rp, c = upmix(np.stack([x, x]), FS)
    assert _db(c - x, x) < -40  # C = L
    assert _db(lp, x) < -40 and _db(rp, x) < -40


def test_hard_left_stays_left(rng):
    x = rng.standard_normal(N)
    lp, rp, c = upmix(np.stack([x, np.zeros(N)]), FS)
    assert _db(c, x) < -30
    assert _db(lp - x, x) < -30  # L' = L
    assert _db(rp, x) < -30  # R' = R - C = -C


def test_panned_source_leaves_centre(rng):
    # One source at gains 0.8 / 0.3: M is fully predicted by S, so nothing is uncorrelated with S.
    x = rng.standard_normal(N)
    lp, rp, c = upmix(np.stack([0.8 * x, 0.3 * x]), FS)
    assert _db(c, x) < -30
    assert _db(lp - 0.8 * x, x) < -30 and _db(rp - 0.3 * x, x) < -30


def test_uncorrelated_channels_keep_c_small(rng):
    left, right = rng.standard_normal((2, N))
    lp, rp, c = upmix(np.stack([left, right]), FS)
    # A plain mid (L + R) / 2 would be at -3 dB; only estimation noise of the
    # 100 ms averages remains (measured -14.7 dB).
    assert _db(c, left) < -12
    assert _db(lp - left, left) < -12 and _db(rp - right, right) < -12


def test_mixed_content_c_uncorrelated_with_side(rng):
    centre = rng.standard_normal(N)
    amb_l = 0.3 * lfilter([1.0], [1.0, -0.9], rng.standard_normal(N))  # coloured, louder than amb_r
    amb_r = 0.5 * rng.standard_normal(N)
    left, right = centre + amb_l, centre + amb_r
    lp, rp, c = upmix(np.stack([left, right]), FS)
    side = left - right
    rho = np.sum(c * side) / np.sqrt(np.sum(c**2) * np.sum(side**2))
    assert abs(rho) < 0.05
    # C estimates the common source better than the plain mid does (measured -9.7 vs -7.4 dB).
    assert _db(c - centre, centre) < _db((left + right) / 2 - centre, centre) - 1.5
    assert _db(lp + c - left, left) < -60 and _db(rp + c - right, right) < -60


def test_short_input_and_other_rate(rng):
    x = rng.standard_normal(300)  # shorter than one STFT frame
    lp, rp, c = upmix(np.stack([x, x]), 44100)
    np.testing.assert_allclose(c, x, atol=1e-9)
    np.testing.assert_allclose(lp, 0.0, atol=1e-9)
    assert upmix(np.zeros((2, 0)), FS).shape == (3, 0)
    silent = upmix(np.zeros((2, 1000)), FS)
    np.testing.assert_array_equal(silent, 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"stereo: expected shape \[2, N\], got \[3, 10\]"):
        upmix(np.zeros((3, 10)), FS)
    with pytest.raises(ValueError, match=r"time_constant_s: expected > 0, got 0"):
        upmix(np.zeros((2, 10)), FS, time_constant_s=0)
