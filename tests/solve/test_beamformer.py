"""Tests of calib.solve.beamformer with ideal point sources on a line along y (arc at 2 m)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.beam import main_lobe_db, null_depth_db
from calib.metrics.effort import white_noise_gain_db
from calib.solve.beamformer import band_taper, design_beamformer

C_SOUND = 343.0
FREQS = np.fft.rfftfreq(1024, 1 / 48000)  # 46.875 Hz bins: 1.5 kHz is bin 32
I_1K5 = 32
AZ = np.arange(-180.0, 180.0, 5.0)
DELAY_S = 0.01


def _arc_plant(n_drv, spacing_m, az_deg, r_m=2.0):
    """[F, A, S] e^{-jkr}/r from drivers on the y axis to microphones on a horizontal arc."""
    ys = (np.arange(n_drv) - (n_drv - 1) / 2) * spacing_m
    th = np.radians(az_deg)
    mics = np.stack([r_m * np.cos(th), r_m * np.sin(th)], -1)
    r = np.linalg.norm(mics[:, None] - np.stack([np.zeros(n_drv), ys], -1)[None], axis=-1)
    return np.exp(-2j * np.pi * FREQS[:, None, None] / C_SOUND * r) / r


def _design(plant, az=AZ, **kw):
    args = dict(wng_min_db=-10.0, modeling_delay_s=DELAY_S, effort_cap_db=15.0)
    args.update(kw)
    return design_beamformer(plant, az, FREQS, (500.0, 3000.0), **args)


def test_three_sources_nulls_and_forced_pattern():
    spacing = 0.06
    d = _design(_arc_plant(3, spacing, AZ))
    nulls = null_depth_db(d.pattern, AZ)[:, I_1K5]
    assert np.all(nulls <= -40.0)
    # three collinear sources with nulls at +-90 and unit on-axis response have one pattern:
    # (cos(kd sin th) - cos kd) / (1 - cos kd) (far field; the arc at 2 m deviates < 0.05 dB)
    kd = 2 * np.pi * FREQS[I_1K5] / C_SOUND * spacing
    inside = np.abs(AZ) <= 45
    analytic = (np.cos(kd * np.sin(np.radians(AZ[inside]))) - np.cos(kd)) / (1 - np.cos(kd))
    got = np.abs(d.pattern[I_1K5, inside]) / np.abs(d.pattern[I_1K5, AZ == 0])
    assert_allclose(20 * np.log10(got), 20 * np.log10(analytic), atol=0.05)
    assert main_lobe_db(d.pattern, AZ)[I_1K5] == pytest.approx(20 * np.log10(analytic.min()), abs=0.05)


def test_five_sources_meet_main_lobe_and_nulls():
    d = _design(_arc_plant(5, 0.05, AZ))
    assert np.all(null_depth_db(d.pattern, AZ)[:, I_1K5] <= -40.0)
    assert main_lobe_db(d.pattern, AZ)[I_1K5] >= -6.0


def test_non_uniform_grid():
    az = np.unique(np.concatenate([np.arange(-180, 180, 15.0), np.arange(80, 101, 2.0), np.arange(-100, -79, 2.0)]))
    d = _design(_arc_plant(5, 0.05, az), az=az)
    assert np.all(null_depth_db(d.pattern, az)[:, I_1K5] <= -40.0)
    assert main_lobe_db(d.pattern, az)[I_1K5] >= -6.0


def test_unit_on_axis_wng_limit_and_effort_cap():
    plant = _arc_plant(5, 0.05, AZ)
    d = _design(plant, wng_min_db=-6.0, effort_cap_db=3.0)
    on_axis = plant[:, AZ == 0, :][:, 0]
    target = d.reference_gain * np.exp(-2j * np.pi * FREQS * DELAY_S)
    assert_allclose(d.pattern[:, AZ == 0][:, 0], target, rtol=1e-9)
    wng = white_noise_gain_db(on_axis, d.H)
    assert_allclose(wng, d.wng_db, atol=1e-9)
    assert np.all(wng >= -6.0 - 1e-6) and np.all(d.effort_db <= 3.0 + 1e-6)
    # where the loading was raised, one of the two limits is active (bisection end)
    active = np.isclose(wng, -6.0, atol=0.01) | np.isclose(d.effort_db, 3.0, atol=0.01)
    assert d.limited.sum() > 5 and np.all(active[d.limited])


def test_out_of_band_is_delay_and_sum():
    plant = _arc_plant(3, 0.06, AZ)
    d = _design(plant)
    out = (d.band_weight == 0) & (FREQS > 0)
    c0 = plant[out][:, AZ == 0, :][:, 0]
    target = (d.reference_gain * np.exp(-2j * np.pi * FREQS * DELAY_S))[out]
    das = c0.conj() * (target / np.sum(np.abs(c0) ** 2, axis=1))[:, None]
    assert_allclose(d.H[out, :, 0], das, rtol=1e-6)
    assert_allclose(d.wng_db[out], 10 * np.log10(3), atol=1e-6)


def test_band_taper_values():
    f = np.array([100.0, 250.0, 500.0, 1000.0, 3000.0, 3000 * 2 ** (1 / 6), 6000.0])
    assert_allclose(band_taper(f, (500.0, 3000.0), 1 / 3), [0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-12)
    assert_allclose(band_taper(f, (500.0, 3000.0), 0.0), [0, 0, 1, 1, 1, 0, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(plant_arc=np.ones((513, 5, 3))), r"plant_arc must have shape \[F, A, S\] with A=72"),
        (dict(freqs_hz=np.ones(4)), r"freqs_hz must be finite, >= 0, shape \[F\]"),
        (dict(azimuths_deg=AZ + 2.5), r"no azimuth within 0.5 deg of 0.0 deg"),
        (dict(null_deg=(87.0,)), r"no azimuth within 0.5 deg of 87.0 deg"),
        (dict(null_deg=(0.0,)), "must not include the on-axis direction"),
        (dict(wng_min_db=np.nan), "wng_min_db must be finite"),
        (dict(effort_cap_db=np.inf), "effort_cap_db must be finite"),
        (dict(modeling_delay_s=-0.1), "modeling_delay_s must be finite and >= 0"),
        (dict(main_lobe_deg=0.0), r"main_lobe_deg must be in \(0, 180\)"),
        (dict(band_hz=(3000.0, 500.0)), "band_hz must satisfy 0 < lo < hi"),
        (dict(null_weight=0.0), "need null_weight > 0"),
        (dict(beta_range=(0.0, 1.0)), "beta_range must satisfy 0 < lo < hi"),
        (dict(taper_oct=-1.0), "taper_oct must be >= 0"),
    ],
)
def test_value_errors(kwargs, match):
    args = dict(
        plant_arc=np.ones((FREQS.size, AZ.size, 3), complex),
        azimuths_deg=AZ,
        freqs_hz=FREQS,
        band_hz=(500.0, 3000.0),
        wng_min_db=-10.0,
        modeling_delay_s=DELAY_S,
        effort_cap_db=10.0,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        design_beamformer(**args)
