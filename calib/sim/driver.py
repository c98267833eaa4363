"""Loudspeaker driver physics: directivity, linear response, nonlinearity.

Pure numpy/scipy. Shapes follow the package rule "frequency last": a driver
parameter of shape ``[...]`` and ``freqs_hz`` of shape ``[F]`` give ``[..., F]``.
Time convention ``e^{+j omega t}`` (so a delay tau is ``e^{-j omega tau}``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import j1

PISTON_FIRST_NULL = 3.831705970207512
"""First zero of J1: the first null of a baffled piston is at ``ka sin(theta)`` equal to this."""


def piston_directivity(ka_sin: np.ndarray | float) -> np.ndarray:
    r"""Far-field directivity of a rigid circular piston in an infinite baffle.

    .. math:: D(x) = \frac{2 J_1(x)}{x}, \quad x = k a \sin\theta, \quad D(0) = 1

    (Kinsler et al., *Fundamentals of Acoustics*, 4th ed., sec. 7.4; Beranek,
    *Acoustics*, ch. 4). Real-valued; negative between the first and second
    nulls (a polarity flip of the side lobe).

    Parameters
    ----------
    ka_sin : array_like
        ``k a sin(theta)``, any shape.

    Returns
    -------
    ndarray
        ``D``, same shape, float64.
    """
    x = np.asarray(ka_sin, dtype=float)
    small = np.abs(x) < 1e-6
    safe = np.where(small, 1.0, x)
    # Series 1 - x^2/8 near 0 avoids 0/0; its error there is O(x^4) < 1e-25.
    return np.where(small, 1.0 - x * x / 8.0, 2.0 * j1(safe) / safe)


def rear_gain(cos_angle: np.ndarray | float, rear_attenuation_db: np.ndarray | float) -> np.ndarray:
    r"""Smooth rear-hemisphere attenuation of a boxed driver.

    .. math:: g = 10^{-A u^2 / 20}, \quad u = \max(0, -\cos\theta)

    1 over the front hemisphere, ``-A`` dB straight behind; ``u**2`` makes the
    transition at 90 degrees smooth (zero slope). Frequency independent: a
    deliberate simplification of the enclosure's baffle step, documented as a
    model parameter rather than derived from the box size.
    """
    u = np.clip(-np.asarray(cos_angle, dtype=float), 0.0, 1.0)
    return 10.0 ** (-np.asarray(rear_attenuation_db, dtype=float) * u * u / 20.0)


def driver_directivity(
    freqs_hz: np.ndarray,
    radius_m: np.ndarray | float,
    cos_angle: np.ndarray | float,
    rear_attenuation_db: np.ndarray | float,
    speed_of_sound: float = 343.0,
) -> np.ndarray:
    r"""Directivity of a boxed driver: baffled piston times a rear attenuation.

    .. math:: D(f, \theta) = \frac{2 J_1(ka\sin\theta)}{ka\sin\theta}\, g_{rear}(\theta),
              \quad k = 2\pi f / c

    The piston term is symmetric about 90 degrees, the rear term (see
    :func:`rear_gain`) breaks the symmetry.

    Parameters
    ----------
    freqs_hz : array_like, shape (F,)
    radius_m, cos_angle, rear_attenuation_db : array_like
        Broadcast together to a shape ``[...]``; ``cos_angle`` is the cosine of
        the angle between the driver axis and the direction to the receiver.
    speed_of_sound : float

    Returns
    -------
    ndarray, shape (..., F), float64
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    cos_a, radius, rear = np.broadcast_arrays(
        np.asarray(cos_angle, dtype=float), np.asarray(radius_m, dtype=float), np.asarray(rear_attenuation_db, float)
    )
    cos_a = np.clip(cos_a, -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a * cos_a)
    k = 2.0 * np.pi * freqs / speed_of_sound
    x = (radius * sin_a)[..., None] * k
    return piston_directivity(x) * rear_gain(cos_a, rear)[..., None]


def driver_response(
    freqs_hz: np.ndarray,
    fc_hz: np.ndarray | float,
    q: np.ndarray | float,
    lowpass_hz: np.ndarray | float,
) -> np.ndarray:
    r"""Linear electro-acoustic response: 2nd-order high-pass times 2nd-order low-pass.

    .. math::
        H(s) = \frac{s^2}{s^2 + s\,\omega_c/Q + \omega_c^2}\,
               \frac{\omega_l^2}{s^2 + \sqrt{2}\,\omega_l s + \omega_l^2},
        \quad s = j 2\pi f

    The high-pass is the closed-box Thiele-Small alignment (Small, "Closed-box
    loudspeaker systems", JAES 20(10), 1972): ``|H(f_c)| = Q``. The low-pass is
    a Butterworth (``|H| = 1/sqrt(2)`` at ``f_l``). Evaluated analytically, so
    the response is causal and minimum phase; 1 in the pass band.

    Parameters
    ----------
    freqs_hz : array_like, shape (F,)
    fc_hz, q, lowpass_hz : array_like
        Broadcast together to ``[...]`` (e.g. one value per driver).

    Returns
    -------
    ndarray, shape (..., F), complex128
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    fc, qq, fl = (np.asarray(v, dtype=float)[..., None] for v in np.broadcast_arrays(fc_hz, q, lowpass_hz))
    s = 2j * np.pi * freqs
    wc = 2.0 * np.pi * fc
    wl = 2.0 * np.pi * fl
    highpass = s * s / (s * s + s * wc / qq + wc * wc)
    lowpass = wl * wl / (s * s + np.sqrt(2.0) * wl * s + wl * wl)
    return highpass * lowpass


def nonlinearity(x: np.ndarray, h2: np.ndarray | float, h3: np.ndarray | float) -> np.ndarray:
    """Return static polynomial distortion ``y = x + h2 x**2 + h3 x**3``.

    A memoryless Hammerstein front end: for ``x = A cos(wt)`` the 2nd harmonic
    has amplitude ``h2 A**2 / 2``, the 3rd ``h3 A**3 / 4``, and the fundamental
    grows by ``3/4 h3 A**3`` (plus a DC of ``h2 A**2 / 2``).

    Parameters
    ----------
    x : ndarray, shape (..., N)
    h2, h3 : array_like
        Broadcastable against ``x[..., :1]`` (e.g. shape ``[S, 1]``).
    """
    x = np.asarray(x, dtype=float)
    return x + np.asarray(h2, dtype=float) * x * x + np.asarray(h3, dtype=float) * x * x * x


def nonlinearity_band_limited(x: np.ndarray, h2: np.ndarray | float, h3: np.ndarray | float) -> np.ndarray:
    """:func:`nonlinearity` computed at 2x the sample rate and low-passed back.

    The cubic term triples the bandwidth; at the base rate its harmonics
    above Nyquist would fold back (alias) to unrelated frequencies. In a
    real chain they are acoustic and the ADC's anti-alias filter removes
    them, so the distortion products are generated oversampled and
    band-limited to the original Nyquist (polyphase FIR, scipy.signal.resample_poly).

    Twice the rate is enough for a cubic: at rate 2 fs its products in
    (fs, 3 fs / 2] fold to [fs / 2, fs), above the original Nyquist, where the
    low-pass back to fs removes them with everything else that is there
    (three times the rate gives the same band below fs / 2, at 1.7x the cost).
    """
    x = np.asarray(x, dtype=float)
    if not (np.any(np.asarray(h2) != 0) or np.any(np.asarray(h3) != 0)):
        return x.copy()
    from scipy.signal import resample_poly  # on first use: see calib.signals (import cost)

    up = resample_poly(x, 2, 1, axis=-1)
    distortion = up * up
    distortion *= np.asarray(h2, dtype=float) + np.asarray(h3, dtype=float) * up
    return x + resample_poly(distortion, 1, 2, axis=-1)[..., : x.shape[-1]]


__all__ = [
    "PISTON_FIRST_NULL",
    "driver_directivity",
    "driver_response",
    "nonlinearity",
    "nonlinearity_band_limited",
    "piston_directivity",
    "rear_gain",
]
