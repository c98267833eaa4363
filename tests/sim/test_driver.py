"""Driver physics against closed forms and scipy references."""

import numpy as np
from numpy.testing import assert_allclose
from scipy.signal import freqs as analog_freqs
from scipy.special import j1

from calib.sim.driver import (
    PISTON_FIRST_NULL,
    driver_directivity,
    driver_response,
    nonlinearity,
    nonlinearity_band_limited,
    piston_directivity,
    rear_gain,
)


def test_piston_equals_2j1x_over_x_and_is_1_on_axis():
    x = np.linspace(0.01, 30.0, 3001)
    assert_allclose(piston_directivity(x), 2 * j1(x) / x, rtol=1e-13, atol=1e-15)
    assert piston_directivity(0.0) == 1.0
    # near 0 the series branch must join the exact one smoothly
    assert_allclose(piston_directivity(np.array([1e-7, -1e-7, 2e-6])), 2 * j1(2e-6) / 2e-6, rtol=1e-11)


def test_piston_first_null():
    assert_allclose(PISTON_FIRST_NULL, 3.8317, atol=1e-4)
    assert abs(piston_directivity(PISTON_FIRST_NULL)) < 1e-14
    # through driver_directivity: choose f so that ka sin(60 deg) hits the null
    radius, c = 0.05, 343.0
    f = PISTON_FIRST_NULL / np.sin(np.deg2rad(60)) * c / (2 * np.pi * radius)
    d = driver_directivity(np.array([f]), radius, np.cos(np.deg2rad([0.0, 60.0, -60.0])), 10.0, c)
    assert_allclose(d[:, 0], [1.0, 0.0, 0.0], atol=1e-12)


def test_directivity_axis_rear_and_symmetry():
    f = np.array([100.0, 1000.0, 8000.0])
    cos_a = np.cos(np.deg2rad([0.0, 90.0, 180.0, 135.0]))
    d = driver_directivity(f, 0.03, cos_a, 12.0)
    assert d.shape == (4, 3)
    assert_allclose(d[0], 1.0, atol=1e-15)  # on axis, every frequency
    assert_allclose(d[2], 10 ** (-12 / 20), rtol=1e-12)  # straight behind: sin = 0, full rear attenuation
    ka = 2 * np.pi * f * 0.03 / 343.0
    assert_allclose(d[1], 2 * j1(ka) / ka, rtol=1e-12)  # 90 deg: piston only, no rear loss yet
    u = np.cos(np.deg2rad(45.0))
    assert_allclose(d[3], 2 * j1(ka * u) / (ka * u) * 10 ** (-12 * u**2 / 20), rtol=1e-12)
    assert_allclose(rear_gain(np.array([1.0, 0.0]), 12.0), 1.0)


def test_highpass_magnitude_at_fc_is_q():
    for q in (0.5, 0.707, 1.2):
        h = driver_response(np.array([60.0]), 60.0, q, 1e9)
        assert_allclose(np.abs(h), q, rtol=1e-6)
    # 12 dB/octave well below fc, 1 in the pass band, Butterworth -3 dB at the low-pass corner
    h = driver_response(np.array([0.8, 2000.0, 16000.0]), 80.0, 0.707, 16000.0)
    assert_allclose(20 * np.log10(np.abs(h[0])), 40 * np.log10(0.8 / 80.0), atol=0.01)
    assert_allclose(20 * np.log10(np.abs(h[1])), 0.0, atol=0.1)
    assert_allclose(np.abs(h[2]) / np.abs(driver_response(np.array([16000.0]), 80.0, 0.707, 1e12))[0],
                    1 / np.sqrt(2), rtol=1e-9)


def test_response_matches_scipy_analog_filter_and_broadcasts():
    f = np.geomspace(10, 24000, 200)
    fc, q, fl = np.array([50.0, 120.0]), np.array([0.6, 1.1]), np.array([18000.0, 12000.0])
    h = driver_response(f, fc, q, fl)
    assert h.shape == (2, 200)
    for i in range(2):
        wc, wl = 2 * np.pi * fc[i], 2 * np.pi * fl[i]
        b = np.polymul([1, 0, 0], [wl**2])
        a = np.polymul([1, wc / q[i], wc**2], [1, np.sqrt(2) * wl, wl**2])
        _, ref = analog_freqs(b, a, worN=2 * np.pi * f)
        assert_allclose(h[i], ref, rtol=1e-10)


def test_nonlinearity_harmonics():
    n, k0, amp, h2, h3 = 4096, 64, 0.5, 0.03, 0.02
    x = amp * np.cos(2 * np.pi * k0 * np.arange(n) / n)
    spec = np.fft.rfft(nonlinearity(x, h2, h3)) * 2 / n
    assert_allclose(abs(spec[k0]), amp + 0.75 * h3 * amp**3, rtol=1e-10)
    assert_allclose(abs(spec[2 * k0]), h2 * amp**2 / 2, rtol=1e-10)
    assert_allclose(abs(spec[3 * k0]), h3 * amp**3 / 4, rtol=1e-10)
    # per-channel coefficients broadcast over [S, N]
    y = nonlinearity(np.ones((2, 3)), np.array([[0.1], [0.0]]), 0.0)
    assert_allclose(y, [[1.1] * 3, [1.0] * 3])


def _tone_spectrum(f_rel: float, amp: float, h2: float, h3: float, n: int = 16384) -> tuple[np.ndarray, int]:
    """Amplitude spectrum (Hann-windowed) of the band-limited nonlinearity of a tone at f_rel * fs; its bin."""
    k0 = int(f_rel * n)
    x = amp * np.cos(2 * np.pi * k0 * np.arange(n) / n)
    w = np.hanning(n)
    return np.abs(np.fft.rfft(nonlinearity_band_limited(x, h2, h3) * w)) * 2 / w.sum(), k0


def test_band_limited_nonlinearity_keeps_the_harmonics_below_nyquist_and_folds_none_back():
    amp, h2, h3, n = 0.5, 0.03, 0.02, 16384
    # tone at 0.15 fs: 2nd harmonic at 0.30 fs, 3rd at 0.45 fs, all below Nyquist and kept
    s, k0 = _tone_spectrum(0.15, amp, h2, h3, n)
    assert_allclose(s[k0], amp + 0.75 * h3 * amp**3, rtol=5e-5)  # the cubic's share through the passband ripple
    assert_allclose(s[2 * k0], h2 * amp**2 / 2, rtol=0.005)
    assert s[3 * k0] > 0.9 * h3 * amp**3 / 4  # 0.45 fs: the low-pass's transition band begins
    # tone at 0.22 fs: the 3rd harmonic (0.66 fs) is above Nyquist; at the base rate it would fold to 0.34 fs
    s, k0 = _tone_spectrum(0.22, amp, h2, h3, n)
    assert s[n - 3 * k0] < 2e-3 * h3 * amp**3 / 4  # removed, not folded back (2x rate + low-pass to fs)
    assert_allclose(s[n - 2 * k0 if 2 * k0 > n // 2 else 2 * k0], h2 * amp**2 / 2, rtol=0.05)  # 0.44 fs: kept
