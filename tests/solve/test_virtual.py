"""Tests of calib.solve.virtual against Woodworth's ITD and the Brown-Duda shadow filter limits."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.solve.virtual import head_shadow, virtual_targets, woodworth_itd_s

A_M, C = 0.0875, 343.0


def test_delay_kind_is_plain_ctc():
    ipsi, contra = virtual_targets(np.linspace(0, 20000, 11), kind="delay")
    assert_allclose(ipsi, 1.0)
    assert_allclose(contra, 0.0)


def test_stereo30_delays_give_woodworth_itd():
    f = np.linspace(0, 20000, 101)
    ipsi, contra = virtual_targets(f)
    assert_allclose(np.abs(ipsi), 1.0)
    # ipsilateral ear reached (a/c) sin 30 deg = 127.6 us before the head centre
    assert_allclose(ipsi, np.exp(2j * np.pi * f * A_M / C * 0.5), rtol=1e-12)
    itd = A_M / C * (np.pi / 6 + 0.5)  # Woodworth: (a/c)(theta + sin theta) = 261.1 us
    assert woodworth_itd_s(30.0) == pytest.approx(itd, rel=1e-12)
    assert itd == pytest.approx(261.1e-6, abs=0.1e-6)
    relative = contra / ipsi / head_shadow(f, 120.0)
    assert_allclose(relative, np.exp(-2j * np.pi * f * itd), rtol=1e-9)


def test_head_shadow_limits_and_corner():
    alpha = 1.05 + 0.95 * np.cos(np.radians(120 / 150 * 180))  # 0.2814: -11.0 dB floor at 120 deg
    f_corner = C / (np.pi * A_M)  # 1248 Hz
    s = head_shadow(np.array([0.0, f_corner, 1e7]), 120.0)
    assert_allclose(np.abs(s), [1.0, np.sqrt((1 + alpha**2) / 2), alpha], rtol=1e-6)
    assert 20 * np.log10(alpha) == pytest.approx(-11.0, abs=0.05)
    # +6 dB at the ear side (0 deg), -20 dB at the shadow minimum (150 deg)
    assert_allclose(np.abs(head_shadow(np.array([1e9]), 0.0)), 2.0, rtol=1e-6)
    assert_allclose(np.abs(head_shadow(np.array([1e9]), 150.0)), 0.1, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="hrtf"), "kind 'hrtf' is not valid; valid: stereo30, delay"),
        (dict(azimuth_deg=120.0), r"azimuth_deg must be within \[-90, 90\]"),
        (dict(freqs_hz=np.array([-1.0, 2.0])), "freqs_hz must be a finite 1-D array"),
    ],
)
def test_value_errors(kwargs, match):
    args = dict(freqs_hz=np.array([0.0, 100.0]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        virtual_targets(**args)


def test_woodworth_rejects_rear_angles():
    with pytest.raises(ValueError, match=r"azimuth_deg must be within \[-90, 90\]"):
        woodworth_itd_s(100.0)
