"""Free-field propagation from a point source (SPL units: :mod:`calib.signals.level`).

Pure numpy. Time convention ``e^{+j omega t}``: a delay ``tau`` is
``e^{-j omega tau}``.
"""

from __future__ import annotations

import numpy as np


def point_source(
    freqs_hz: np.ndarray,
    distance_m: np.ndarray | float,
    speed_of_sound: float = 343.0,
    reference_m: float = 1.0,
) -> np.ndarray:
    r"""Monopole transfer, normalised to the pressure at ``reference_m``.

    .. math:: G(f, r) = \frac{r_0}{r}\, e^{-j k r}, \quad k = 2\pi f / c

    This is the free-field Green's function ``e^{-jkr} / (4 pi r)`` (Kinsler
    et al., *Fundamentals of Acoustics*, sec. 7.2) scaled by ``4 pi r0``, so
    that a source of sensitivity ``p0`` pascal at 1 m gives ``p0 * G``: the
    1/r law (-6.02 dB per doubling of distance) and the delay ``r / c``.

    Parameters
    ----------
    freqs_hz : array_like, shape (F,)
    distance_m : array_like, shape (...)
        Source-receiver distances, > 0.
    speed_of_sound : float
    reference_m : float

    Returns
    -------
    ndarray, shape (..., F), complex128
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    r = np.asarray(distance_m, dtype=float)[..., None]
    if np.any(r <= 0):
        raise ValueError(f"distance_m must be > 0, got min {float(np.min(r))!r}")
    k = 2.0 * np.pi * freqs / speed_of_sound
    return (reference_m / r) * np.exp(-1j * k * r)


def propagation_delay_s(distance_m: np.ndarray | float, speed_of_sound: float = 343.0) -> np.ndarray:
    """Travel time ``r / c`` in seconds."""
    return np.asarray(distance_m, dtype=float) / speed_of_sound


__all__ = ["point_source", "propagation_delay_s"]
