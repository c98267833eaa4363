r"""Virtualization targets: ear signals of a virtual +-30 deg stereo pair.

Spherical-head model, times relative to the arrival at the head centre:

- ipsilateral ear: all-pass, a pure delay ``tau_i = -(a/c) sin theta`` (an
  advance: the near ear is reached first);
- contralateral ear: delay ``tau_c = (a/c) theta`` times the head-shadow
  filter of Brown & Duda (1998),

.. math::

    S(\omega) = \frac{1 + j \alpha \omega / (2\omega_0)}{1 + j \omega / (2\omega_0)},
    \qquad \omega_0 = c / a,

a one-pole low-pass (shelf) with corner ``f_c = 2\omega_0 / (2\pi) = c / (\pi a)``
(1.25 kHz for ``a = 8.75`` cm) and high-frequency floor ``alpha(theta_c)``,
``alpha(phi) = (1 + alpha_min/2) + (1 - alpha_min/2) cos(phi / phi_min * 180 deg)``
with ``alpha_min = 0.1``, ``phi_min = 150 deg`` and ``phi_c = 90 + theta`` deg
the angle between the source and the contralateral ear (-11.0 dB for
``theta = 30`` deg).

The difference ``tau_c - tau_i = (a/c)(theta + sin theta)`` is Woodworth's
interaural time difference (261 us at 30 deg). The ipsilateral shadow boost
is left out on purpose: the ipsilateral path stays uncoloured, the
contralateral one is relative to it.

References
----------
R. S. Woodworth, H. Schlosberg, *Experimental Psychology*, Holt, 1954
(ITD of a rigid sphere).
C. P. Brown, R. O. Duda, "A structural model for binaural sound synthesis",
IEEE Trans. Speech Audio Process. 6(5), 1998.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HEAD_RADIUS_M", "head_shadow", "virtual_targets", "woodworth_itd_s"]

HEAD_RADIUS_M = 0.0875
"""Mean adult head radius of the spherical-head model."""

_KINDS = ("stereo30", "delay")


def woodworth_itd_s(azimuth_deg: float, head_radius_m: float = HEAD_RADIUS_M, speed_of_sound: float = 343.0) -> float:
    """Woodworth's interaural time difference ``(a/c)(theta + sin theta)``, seconds (``|theta| <= 90`` deg)."""
    theta = np.radians(abs(azimuth_deg))
    if theta > np.pi / 2:
        raise ValueError(f"azimuth_deg must be within [-90, 90] for Woodworth's formula, got {azimuth_deg!r}")
    return float(head_radius_m / speed_of_sound * (theta + np.sin(theta)))


def head_shadow(
    freqs_hz: np.ndarray, angle_deg: float, head_radius_m: float = HEAD_RADIUS_M, speed_of_sound: float = 343.0
) -> np.ndarray:
    """Brown & Duda (1998) one-pole/one-zero head-shadow filter for a source ``angle_deg`` from the ear."""
    alpha_min, phi_min = 0.1, 150.0
    alpha = (1 + alpha_min / 2) + (1 - alpha_min / 2) * np.cos(np.radians(angle_deg / phi_min * 180.0))
    w_ratio = 2 * np.pi * np.asarray(freqs_hz, dtype=float) / (2 * speed_of_sound / head_radius_m)
    return (1 + 1j * alpha * w_ratio) / (1 + 1j * w_ratio)


def virtual_targets(
    freqs_hz: np.ndarray,
    kind: str = "stereo30",
    azimuth_deg: float = 30.0,
    head_radius_m: float = HEAD_RADIUS_M,
    speed_of_sound: float = 343.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Ipsilateral and contralateral ear targets of one virtual loudspeaker.

    Parameters
    ----------
    freqs_hz : array_like [F]
    kind : {"stereo30", "delay"}
        ``"stereo30"``: spherical-head targets of a source at
        ``azimuth_deg`` (see module docstring); ``"delay"``: ipsilateral 1,
        contralateral 0 (plain CTC, the modeling delay is applied elsewhere).
    azimuth_deg : float
        Virtual source angle off the median plane (30 for a standard pair).
    head_radius_m, speed_of_sound : float

    Returns
    -------
    ipsi, contra : ndarray, complex [F]
    """
    if kind not in _KINDS:
        raise ValueError(f"kind {kind!r} is not valid; valid: {', '.join(_KINDS)}")
    freqs = np.asarray(freqs_hz, dtype=float)
    if freqs.ndim != 1 or not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError("freqs_hz must be a finite 1-D array of frequencies >= 0")
    if kind == "delay":
        return np.ones(freqs.size, complex), np.zeros(freqs.size, complex)
    theta = np.radians(abs(azimuth_deg))
    if theta > np.pi / 2:
        raise ValueError(f"azimuth_deg must be within [-90, 90], got {azimuth_deg!r}")
    tau_ipsi = -head_radius_m / speed_of_sound * np.sin(theta)
    tau_contra = head_radius_m / speed_of_sound * theta
    ipsi = np.exp(-2j * np.pi * freqs * tau_ipsi)
    contra = np.exp(-2j * np.pi * freqs * tau_contra) * head_shadow(
        freqs, 90.0 + abs(azimuth_deg), head_radius_m, speed_of_sound
    )
    return ipsi, contra
