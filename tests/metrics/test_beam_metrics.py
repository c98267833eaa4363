"""Tests of calib.metrics.beam against analytic patterns (omni, dipole, a + b cos)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.bands import third_octave_bands
from calib.metrics.beam import (
    arc_weights,
    azimuth_index,
    directivity_index_db,
    main_lobe_db,
    null_depth_db,
    sector_level_db,
    sector_mask,
    wrap_deg,
)

UNIFORM = np.arange(-180.0, 180.0, 5.0)
RNG = np.random.default_rng(7)
# non-uniform full circle: 0 and +-90 included, jittered steps of 2..12 degrees
NON_UNIFORM = np.unique(np.concatenate([[0.0, 90.0, -90.0], wrap_deg(np.cumsum(RNG.uniform(2, 12, 60)))]))
DIPOLE_DI = 10 * np.log10(2)  # 3.0103 dB: mean of cos^2 over the circle is 1/2


def _pattern(az, values):
    return np.tile(values, (3, 1)).astype(complex)  # [F=3, A]


@pytest.mark.parametrize("az, tol", [(UNIFORM, 1e-9), (NON_UNIFORM, 0.03), (np.arange(-90.0, 90.1, 3.0), 0.01)])
def test_directivity_index_omni_and_dipole(az, tol):
    assert_allclose(directivity_index_db(_pattern(az, np.ones(az.size)), az), 0.0, atol=1e-9)
    assert_allclose(directivity_index_db(_pattern(az, np.cos(np.radians(az))), az), DIPOLE_DI, atol=tol)


def test_non_uniform_grid_needs_arc_weights():
    # an unweighted mean over a grid crowded near the nulls would be biased; the weights are not
    az = np.unique(np.concatenate([np.arange(-180, 180, 15.0), np.arange(60, 120.1, 1.0), np.arange(-120, -59.9, 1.0)]))
    dipole = _pattern(az, np.cos(np.radians(az)))
    assert_allclose(directivity_index_db(dipole, az), DIPOLE_DI, atol=0.05)  # trapezoid error, 15 deg steps
    naive = 10 * np.log10(1 / np.mean(np.cos(np.radians(az)) ** 2))
    assert abs(naive - DIPOLE_DI) > 1.0


def test_arc_weights():
    assert_allclose(arc_weights(UNIFORM), 1 / UNIFORM.size)
    # partial arc: trapezoid, half weights at the ends, any input order
    assert_allclose(arc_weights([30.0, -30.0, 0.0, 10.0]), np.array([10.0, 15.0, 20.0, 15.0]) / 60.0)
    assert_allclose(arc_weights([5.0]), [1.0])
    assert_allclose(arc_weights([0, 90, 180, 270], full_circle=True), 0.25)


def test_null_depth_and_main_lobe_analytic():
    az = UNIFORM
    th = np.radians(az)
    a, b = 0.1, 0.9  # level at +-90 deg relative to on-axis: a / (a + b)
    pat = _pattern(az, a + b * np.cos(th))
    assert_allclose(null_depth_db(pat, az), 20 * np.log10(a / (a + b)), atol=1e-9)
    assert_allclose(main_lobe_db(pat, az), 20 * np.log10(a + b * np.cos(np.pi / 4)), atol=1e-9)
    squared = _pattern(az, np.cos(th) ** 2)  # -6.02 dB at 45 deg
    assert_allclose(main_lobe_db(squared, az, 45.0), 20 * np.log10(0.5), atol=1e-9)
    assert_allclose(main_lobe_db(squared, az, 30.0), 40 * np.log10(np.cos(np.pi / 6)), atol=1e-9)


def test_sector_level_analytic():
    az = UNIFORM
    th = np.radians(az)
    # a + b cos(theta) falls monotonically towards 180 deg: over 80-100 deg the worst azimuth is 80 deg
    a, b = 0.1, 0.9
    pat = _pattern(az, a + b * np.cos(th))
    assert_allclose(sector_level_db(pat, az, (80.0, 100.0)), 20 * np.log10(a + b * np.cos(np.radians(80.0))), atol=1e-9)
    # asymmetric: an extra lobe on the - side only, at -95 deg
    values = np.abs(np.cos(th)) * 0.01
    values[azimuth_index(az, -95.0)] = 0.3
    values[azimuth_index(az, 0.0)] = 1.0
    got = sector_level_db(_pattern(az, values), az, (80.0, 100.0))
    assert_allclose(got[:, 0], [20 * np.log10(0.01 * np.cos(np.radians(80.0))), 20 * np.log10(0.3)], atol=1e-9)
    assert got.shape == (2, 3)
    assert sector_mask(az, (80.0, 100.0)).sum() == 10  # 80..100 in 5-degree steps, both sides


def test_band_metrics_are_ratios_of_band_powers():
    freqs = np.fft.rfftfreq(4096, 1 / 48000)
    bands = third_octave_bands(500, 2000)
    az = UNIFORM
    depth = np.linspace(0.01, 0.3, freqs.size)  # null level varying with frequency
    pat = np.ones((freqs.size, az.size), complex)
    pat[:, azimuth_index(az, 90)] = depth
    pat[:, azimuth_index(az, -90)] = 2 * depth
    got = null_depth_db(pat, az, freqs_hz=freqs, bands=bands)
    for i in range(len(bands)):
        inside = (freqs >= bands.lower_hz[i]) & (freqs < bands.upper_hz[i])
        assert_allclose(got[:, i], 10 * np.log10([np.mean(depth[inside] ** 2), np.mean(4 * depth[inside] ** 2)]))
    assert got.shape == (2, len(bands))
    assert main_lobe_db(pat, az, freqs_hz=freqs, bands=bands).shape == (len(bands),)
    assert directivity_index_db(pat, az, freqs_hz=freqs, bands=bands).shape == (len(bands),)


def test_value_errors():
    pat = _pattern(UNIFORM, np.ones(UNIFORM.size))
    with pytest.raises(ValueError, match="no azimuth within 0.5 deg of 0.0 deg"):
        directivity_index_db(pat, UNIFORM + 2.5)
    with pytest.raises(ValueError, match=r"pattern must have shape \[F, A\] with A=72"):
        null_depth_db(pat[:, :10], UNIFORM)
    with pytest.raises(ValueError, match=r"main_lobe_deg must be in \[0, 180\]"):
        main_lobe_db(pat, UNIFORM, 200.0)
    with pytest.raises(ValueError, match="freqs_hz is required with bands"):
        main_lobe_db(pat, UNIFORM, bands=third_octave_bands(100, 200))
    with pytest.raises(ValueError, match=r"sector \(86.0, 89.0\) deg holds no azimuth on the \+ side"):
        sector_level_db(pat, UNIFORM, (86.0, 89.0))
    with pytest.raises(ValueError, match="sector_deg must satisfy 0 <= lo < hi <= 180"):
        sector_mask(UNIFORM, (100.0, 80.0))
    with pytest.raises(ValueError, match="duplicate directions"):
        arc_weights([0.0, 10.0, 370.0])
    with pytest.raises(ValueError, match="non-empty finite 1-D"):
        arc_weights([])
