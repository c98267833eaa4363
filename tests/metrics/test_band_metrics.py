"""Tests of calib.metrics.bands against IEC 61260-1 values."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.bands import OCTAVE_RATIO, band_power_average, optional_band_average, power_db, third_octave_bands

IEC_NOMINAL = [20, 25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000,
               1250, 1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000]


def test_centres_nominal_and_exact():
    b = third_octave_bands(20, 20000)
    assert_allclose(b.nominal_hz, IEC_NOMINAL)
    x = np.arange(-17, 14)
    assert list(b.index) == list(x)
    assert_allclose(b.centre_hz, 1000 * (10**0.3) ** (x / 3), rtol=1e-12)
    i1k = list(b.nominal_hz).index(1000)
    assert_allclose(b.centre_hz[i1k - 1 : i1k + 3], [794.3282347, 1000.0, 1258.9254118, 1584.8931925], rtol=1e-9)
    assert_allclose(b.upper_hz[:-1], b.lower_hz[1:], rtol=1e-12)  # contiguous
    assert_allclose(b.upper_hz / b.lower_hz, OCTAVE_RATIO ** (1 / 3), rtol=1e-12)
    assert_allclose(b.lower_hz[i1k], 1000 * 10 ** (-0.05), rtol=1e-12)  # 891.25 Hz


def test_range_selects_on_nominal():
    assert list(third_octave_bands(100, 8000).nominal_hz) == IEC_NOMINAL[7:27]
    assert list(third_octave_bands(1000, 1000).nominal_hz) == [1000]
    assert len(third_octave_bands(1010, 1200)) == 0


def test_band_average_of_piecewise_constant_power():
    b = third_octave_bands(100, 10000)
    freqs = np.fft.rfftfreq(8192, 1 / 48000)
    level = np.arange(len(b), dtype=float) + 1.0
    power = np.full((2, freqs.size), 123.0)
    for i in range(len(b)):
        inside = (freqs >= b.lower_hz[i]) & (freqs < b.upper_hz[i])
        power[:, inside] = level[i] * np.array([[1.0], [3.0]])
    assert_allclose(band_power_average(freqs, power, b), level * np.array([[1.0], [3.0]]), rtol=1e-12)


def test_band_without_bins_is_nan_and_nan_bins_are_skipped():
    b = third_octave_bands(20, 1000)
    freqs = np.fft.rfftfreq(256, 1 / 48000)  # 187.5 Hz bins: no bin in the 20..160 Hz bands
    power = np.ones(freqs.size)
    power[0] = np.nan
    got = band_power_average(freqs, power, b)
    empty = np.array([not np.any((freqs >= lo) & (freqs < hi)) for lo, hi in zip(b.lower_hz, b.upper_hz, strict=True)])
    assert empty.sum() >= 5
    assert np.all(np.isnan(got[empty]))
    assert_allclose(got[~empty], 1.0)


def test_optional_average_and_db():
    assert_allclose(optional_band_average(None, [1.0, 2.0], None), [1.0, 2.0])
    assert_allclose(power_db(np.array([100.0, 0.5])), [20.0, -3.0103], atol=1e-4)
    assert power_db(np.array([0.0]))[0] == -np.inf


@pytest.mark.parametrize("lo, hi", [(0.0, 100.0), (200.0, 100.0), (np.nan, 100.0)])
def test_bad_range(lo, hi):
    with pytest.raises(ValueError, match="need 0 < f_lo <= f_hi"):
        third_octave_bands(lo, hi)


def test_shape_errors():
    b = third_octave_bands(100, 1000)
    with pytest.raises(ValueError, match="power must have F=5 bins"):
        band_power_average(np.arange(5.0), np.ones(4), b)
    with pytest.raises(ValueError, match=r"freqs_hz must be 1-D \[F\]"):
        band_power_average(np.ones((2, 2)), np.ones(2), b)
    with pytest.raises(ValueError, match="freqs_hz is required with bands"):
        optional_band_average(None, np.ones(3), b)
