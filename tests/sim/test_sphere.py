"""Tests of calib.sim.sphere against analytic limits and independent references."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import eval_legendre, spherical_jn, spherical_yn

from calib.sim.sphere import (
    ear_directions,
    head_to_ear_transfer,
    rigid_sphere_plane_wave_transfer,
    rigid_sphere_transfer,
)

A = 0.0875   # m
C = 343.0    # m/s


def _db(h):
    return 20 * np.log10(np.abs(h))


def _freq_for_ka(ka):
    return ka * C / (2 * np.pi * A)


def _h2(m, x, derivative=False):
    """Outgoing spherical Hankel function for e^{+jwt}: h_m^(2) = j_m - j y_m."""
    return spherical_jn(m, x, derivative) - 1j * spherical_yn(m, x, derivative)


def _bessel_point_source(freqs_hz, r_m, theta_deg, n_terms=80):
    """Direct scipy evaluation of -(rho/mu) e^{j mu rho} sum (2m+1) P_m h_m(mu rho)/h_m'(mu)."""
    mu = 2 * np.pi * freqs_hz * A / C
    rho = r_m / A
    x = np.cos(np.deg2rad(theta_deg))
    total = sum((2 * m + 1) * eval_legendre(m, x) * _h2(m, mu * rho) / _h2(m, mu, True)
                for m in range(n_terms))
    return -(rho / mu) * np.exp(1j * mu * rho) * total


def _rayleigh_plane_wave(freqs_hz, theta_deg, n_terms=80):
    """Rigid-sphere pressure at the ear from the Rayleigh series.

    Rayleigh series (Morse & Ingard 8.2), e^{+jwt}, incident e^{+jk a cos(theta)} at the ear:
    P/P0 = -j/(ka)^2 sum (2m+1) j^m P_m(cos theta) / h_m'(ka).
    """
    mu = 2 * np.pi * freqs_hz * A / C
    x = np.cos(np.deg2rad(theta_deg))
    total = sum((2 * m + 1) * 1j ** m * eval_legendre(m, x) / _h2(m, mu, True)
                for m in range(n_terms))
    return -1j / mu ** 2 * total


def _laplace_rigid_sphere(rho, theta_deg):
    """Closed form of a Legendre series (potential flow, f = 0).

    Closed form of sum (2m+1)/(m+1) P_m(x) t^m, t = 1/rho (potential flow, f = 0):
    2/D - ln((t - x + D)/(1 - x))/t with D = sqrt(1 - 2xt + t^2); at x = 1: 2/(1-t) + ln(1-t)/t.
    """
    t = 1.0 / rho
    x = np.cos(np.deg2rad(theta_deg))
    d = np.sqrt(1 - 2 * x * t + t * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        general = 2 / d - np.log((t - x + d) / (1 - x)) / t
    return np.where(x >= 1 - 1e-12, 2 / (1 - t) + np.log(1 - t) / t, general)


# --------------------------------------------------------------------------- references

def test_matches_direct_bessel_series():
    # Recurrence/ratio evaluation vs scipy spherical Bessel functions, near to far sources.
    freqs = np.array([1000.0, 3000.0, 8000.0, 15000.0, 20000.0])[:, None]
    theta = np.linspace(0, 180, 13)[None, :]
    for r_m in (0.2, 0.5, 1.0, 10.0):
        ref = _bessel_point_source(freqs, r_m, theta)
        assert_allclose(rigid_sphere_transfer(freqs, r_m, theta), ref, rtol=1e-7)


def test_plane_wave_matches_rayleigh_series():
    freqs = np.array([1000.0, 3000.0, 8000.0, 15000.0, 20000.0])[:, None]
    theta = np.linspace(0, 180, 13)[None, :]
    assert_allclose(rigid_sphere_plane_wave_transfer(freqs, theta),
                    _rayleigh_plane_wave(freqs, theta), rtol=1e-7)


def test_point_source_tends_to_plane_wave():
    # The range-dependent series reduces to Rayleigh's: the difference is the wavefront
    # curvature over the head (k a^2 / 2r) plus the 1/rho near-field term (3/(2 rho) at m = 1).
    freqs = np.geomspace(20, 20000, 30)[:, None]
    theta = np.linspace(0, 180, 13)[None, :]
    plane = _rayleigh_plane_wave(freqs[freqs[:, 0] >= 1000], theta)
    for r_m in (100.0, 1e4):
        h = rigid_sphere_transfer(freqs, r_m, theta)
        rel = np.max(np.abs(h / rigid_sphere_plane_wave_transfer(freqs, theta) - 1), axis=1)
        k = 2 * np.pi * freqs[:, 0] / C
        assert np.all(rel <= k * A * A / (2 * r_m) + 1.5 * A / r_m)
        assert_allclose(h[freqs[:, 0] >= 1000], plane, rtol=k.max() * A * A / r_m + 2 * A / r_m)
    assert_allclose(rigid_sphere_transfer(freqs, 1e4, theta),
                    rigid_sphere_plane_wave_transfer(freqs, theta), rtol=1e-3)


# --------------------------------------------------------------------------- limits

def test_zero_frequency_is_potential_flow_limit():
    theta = np.linspace(0, 180, 19)
    # Distant source: exactly 1.
    assert_array_equal(rigid_sphere_plane_wave_transfer(0.0, theta), np.ones(19))
    # Finite range: Laplace (rigid-sphere Neumann) solution, not 1 (near side louder).
    for r_m in (0.1, 0.2, 1.0, 10.0):
        h0 = rigid_sphere_transfer(0.0, r_m, theta)
        assert_array_equal(h0.imag, 0.0)
        assert_allclose(h0.real, _laplace_rigid_sphere(r_m / A, theta), rtol=2e-6)
    # Very near source (rho = 1.05) needs hundreds of terms; the tail after the
    # two-small-terms stop is ~ term / (1 - 1/rho), hence the looser tolerance.
    assert_allclose(rigid_sphere_transfer(0.0, 1.05 * A, theta).real,
                    _laplace_rigid_sphere(1.05, theta), rtol=1e-5)


def test_low_frequency_tends_to_zero_db_and_to_static_limit():
    theta = np.linspace(0, 360, 37)
    for r_m in (100.0, np.inf):
        assert np.max(np.abs(_db(rigid_sphere_transfer(20.0, r_m, theta)))) < 0.1
    # Near source: the 20 Hz magnitude approaches the f = 0 value, not 0 dB.
    for r_m in (0.15, 0.5, 2.0):
        assert_allclose(np.abs(rigid_sphere_transfer(20.0, r_m, theta)),
                        _laplace_rigid_sphere(r_m / A, theta),
                        rtol=2e-3)


def test_kuhn_low_frequency_phase_delay():
    # Plane wave, ka << 1: the ear leads the centre by 1.5 (a/c) cos(theta)
    # (Kuhn 1977, JASA 62(1); ITD = 3 (a/c) sin(azimuth)).
    theta = np.array([0.0, 30.0, 60.0, 120.0, 150.0, 180.0])
    f_hz = 20.0
    tau_s = -np.angle(rigid_sphere_plane_wave_transfer(f_hz, theta)) / (2 * np.pi * f_hz)
    assert_allclose(tau_s, -1.5 * A / C * np.cos(np.deg2rad(theta)), rtol=1e-3)


def test_high_frequency_ipsilateral_delay_is_ear_advance():
    # ka >> 1, geometric acoustics: the ipsilateral pole is a/c ahead of the centre,
    # the 90 deg point is level with it (fixes the e^{+jwt} sign convention).
    f_hz = np.linspace(5000, 15000, 201)
    w = 2 * np.pi * f_hz
    slope0 = np.polyfit(w, np.unwrap(np.angle(rigid_sphere_plane_wave_transfer(f_hz, 0.0))), 1)[0]
    slope90 = np.polyfit(w, np.unwrap(np.angle(rigid_sphere_plane_wave_transfer(f_hz, 90.0))), 1)[0]
    assert_allclose(slope0, A / C, rtol=0.02)
    assert abs(slope90) < 0.01 * A / C


def test_ipsilateral_pole_tends_to_plus_6_db():
    assert abs(_db(rigid_sphere_transfer(20000.0, 10.0, 0.0)) - 6.02) < 0.5
    assert abs(_db(rigid_sphere_plane_wave_transfer(_freq_for_ka(30), 0.0)) - 6.02) < 0.1


def test_shadow_minimum_and_bright_spot():
    theta = np.arange(0, 180.01, 0.5)
    # Around ka = 4 (2.5 kHz) the minimum sits near 150 deg (Brown & Duda 1998, theta_min = 150).
    h = _db(rigid_sphere_transfer(_freq_for_ka(4.0), 10.0, theta))
    assert 140 <= theta[np.argmin(h)] <= 160
    assert h[-1] - h.min() > 5
    # Higher up the bright spot narrows like J0(ka * (pi - theta)) (creeping waves):
    # the minimum moves to 180 deg - 2.405/ka rad, the spot stays > 10 dB above it.
    for ka in (10.0, 15.0, 20.0):
        h = _db(rigid_sphere_transfer(_freq_for_ka(ka), 10.0, theta))
        assert abs(theta[np.argmin(h)] - (180 - np.rad2deg(2.405 / ka))) < 2.0
        assert h[-1] - h.min() > 10


def test_series_converged():
    freqs = np.array([0.0, 100.0, 2000.0, 10000.0, 20000.0])[:, None]
    theta = np.linspace(0, 180, 7)[None, :]
    for r_m in (0.1, 0.5, 10.0, np.inf):
        h = rigid_sphere_transfer(freqs, r_m, theta)
        forced = rigid_sphere_transfer(freqs, r_m, theta, tol=0.0, max_terms=600)
        assert_allclose(h, forced, rtol=1e-6)


def test_symmetric_in_angle_and_broadcasts():
    freqs = np.linspace(0, 20000, 41)
    theta = np.linspace(0, 180, 19)[:, None]
    h = rigid_sphere_transfer(freqs, 1.0, theta)
    assert h.shape == (19, 41)
    assert_array_equal(h, rigid_sphere_transfer(freqs, 1.0, -theta))
    assert_allclose(h, rigid_sphere_transfer(freqs, 1.0, 360 - theta), rtol=1e-12)
    dist = np.array([0.5, 2.0])[:, None, None]
    h3 = rigid_sphere_transfer(freqs, dist, theta)
    assert h3.shape == (2, 19, 41)
    assert_allclose(h3[1], rigid_sphere_transfer(freqs, 2.0, theta), rtol=1e-12)


def test_truncation_with_max_terms():
    # One term (monopole) only: 1 / (1 + j ka) times e^{j ka}.
    mu = 2 * np.pi * 1000.0 * A / C
    assert_allclose(rigid_sphere_transfer(1000.0, np.inf, 30.0, tol=0.0, max_terms=1),
                    np.exp(1j * mu) / (1 + 1j * mu), rtol=1e-14)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"freqs_hz": -1.0}, "freqs_hz must be finite and >= 0, got -1.0"),
    ({"freqs_hz": np.nan}, "freqs_hz must be finite"),
    ({"source_distance_m": 0.05}, r"source_distance_m must exceed radius_m=0.0875 .*got 0.05"),
    ({"source_distance_m": A}, "source_distance_m must exceed"),
    ({"radius_m": 0.0}, "radius_m must be a positive finite number, got 0.0"),
    ({"speed_of_sound": -343.0}, "speed_of_sound must be a positive finite number, got -343.0"),
    ({"tol": -1e-3}, "tol must be finite and >= 0, got -0.001"),
    ({"tol": 0.0}, "tol=0 never converges: give max_terms"),
    ({"max_terms": 0}, "max_terms must be a positive integer or None, got 0"),
    ({"max_terms": 2.5}, "max_terms must be a positive integer or None, got 2.5"),
])
def test_rigid_sphere_transfer_errors(kwargs, match):
    args = {"freqs_hz": 1000.0, "source_distance_m": 1.0, "incidence_deg": 30.0} | kwargs
    with pytest.raises(ValueError, match=match):
        rigid_sphere_transfer(**args)


# --------------------------------------------------------------------------- geometry

def test_ear_directions():
    ears = ear_directions(0.0)
    assert ears.shape == (2, 3)
    assert_allclose(ears[0], [np.cos(np.deg2rad(100)), np.sin(np.deg2rad(100)), 0.0], atol=1e-15)
    assert_allclose(ears[1], [np.cos(np.deg2rad(100)), -np.sin(np.deg2rad(100)), 0.0], atol=1e-15)
    # Head facing the device (yaw 180): left ear at azimuth 280 deg, i.e. y < 0.
    ears = ear_directions(180.0)
    assert_allclose(ears[0], [np.cos(np.deg2rad(280)), np.sin(np.deg2rad(280)), 0.0], atol=1e-15)
    assert ears[0, 1] < 0 < ears[1, 1]
    assert_allclose(np.linalg.norm(ear_directions([0.0, 45.0, 90.0], 90.0, -10.0), axis=-1),
                    1.0, rtol=1e-15)
    assert ear_directions([0.0, 45.0, 90.0]).shape == (3, 2, 3)
    assert_allclose(ear_directions(0.0, 90.0, 30.0)[:, 2], np.sin(np.deg2rad(30.0)), rtol=1e-15)


def test_head_to_ear_transfer_geometry():
    freqs = np.array([0.0, 500.0, 3000.0, 12000.0])
    centre = np.array([1.5, 0.0, 0.0])
    # Head faces the device (yaw 180). Device at the origin: straight ahead, both ears at 100 deg.
    # A source 1 m to the device's left (+y) is on the head's right: right ear 10 deg, left 170 deg.
    sources = np.array([[0.0, 0.0, 0.0], [1.5, 1.0, 0.0]])
    h = head_to_ear_transfer(freqs, sources, centre, 180.0)
    assert h.shape == (2, 4, 2)
    assert_allclose(h[0, :, 0], rigid_sphere_transfer(freqs, 1.5, 100.0), rtol=1e-10)
    assert_allclose(h[0, :, 1], h[0, :, 0], rtol=1e-12)
    assert_allclose(h[1, :, 1], rigid_sphere_transfer(freqs, 1.0, 10.0), rtol=1e-10)
    assert_allclose(h[1, :, 0], rigid_sphere_transfer(freqs, 1.0, 170.0), rtol=1e-10)
    assert np.all(np.abs(h[1, 1:, 1]) > np.abs(h[1, 1:, 0]))
    # Leading source dims (e.g. image sources x drivers) are kept.
    grid = np.zeros((3, 5, 3))
    grid[..., 0] = np.linspace(-1, 1, 5)
    grid[..., 2] = 2.0
    assert head_to_ear_transfer(freqs, grid, centre, 180.0).shape == (3, 5, 4, 2)


@pytest.mark.parametrize(("source", "centre", "freqs", "match"), [
    ([1.5, 0.05, 0.0], [1.5, 0.0, 0.0], [1000.0], "source_distance_m must exceed radius_m"),
    ([1.5, 0.0], [0.0, 0.0, 0.0], [1000.0], r"last axis of 3 \(x, y, z\), got shapes \(2,\)"),
    ([0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [[1000.0]], r"freqs_hz must be 1-D \[F\], got shape \(1, 1\)"),
])
def test_head_to_ear_transfer_errors(source, centre, freqs, match):
    with pytest.raises(ValueError, match=match):
        head_to_ear_transfer(freqs, source, centre, 0.0)
