r"""Filter effort and white-noise gain.

Filters are normalized so that ``|H| = 1`` means one driver fed at unity gain
(see :mod:`calib.solve.regularized`), so filter effort in dB is the drive
level relative to playing the input through a single driver as is.

White-noise gain (WNG, the array gain against spatially uncorrelated errors:
driver tolerances, excursion per unit output; Cox, Zeskind & Kooij 1986):

.. math::

    \mathrm{WNG}(f) = \frac{|c_0^T w|^2}{\|w\|^2 \; \overline{|c_0|^2}}

with ``c_0`` the on-axis plant row [S], ``w`` the driver weights and
``mean_s |c_{0,s}|^2`` the mean single-driver on-axis power, so that one
driver alone has 0 dB and delay-and-sum of ``S`` equal drivers
``10 log10 S``. Negative values mean superdirective drive (large excursion
for little on-axis output).

References
----------
H. Cox, R. M. Zeskind, T. Kooij, "Practical supergain", IEEE Trans. ASSP
34(3), 1986.
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import Bands, band_power_average, optional_band_average, power_db

__all__ = ["band_effort_db", "effort_db", "max_effort_db", "white_noise_gain_db"]


def _check_filters(H: np.ndarray) -> np.ndarray:
    H = np.asarray(H)
    if H.ndim < 2:
        raise ValueError(f"H must have shape [F, S, ...], got shape {H.shape}")
    return H


def effort_db(H: np.ndarray) -> np.ndarray:
    """Per-bin effort ``20 log10 max |H|`` over drivers (and inputs), dB [F].

    Parameters
    ----------
    H : array_like, complex [F, S] or [F, S, K]
    """
    H = _check_filters(H)
    return power_db(np.max(np.abs(H.reshape(H.shape[0], -1)) ** 2, axis=-1))


def max_effort_db(
    H: np.ndarray, freqs_hz: np.ndarray | None = None, band_hz: tuple[float, float] | None = None
) -> float:
    """Maximum effort over bins (optionally only ``band_hz[0] <= f <= band_hz[1]``) and drivers, dB."""
    e = effort_db(H)
    if band_hz is not None:
        if freqs_hz is None:
            raise ValueError("freqs_hz is required with band_hz")
        f = np.asarray(freqs_hz, dtype=float)
        inside = (f >= band_hz[0]) & (f <= band_hz[1])
        if not np.any(inside):
            raise ValueError(f"no bin inside band_hz={band_hz!r}")
        e = e[inside]
    return float(np.max(e))


def band_effort_db(H: np.ndarray, freqs_hz: np.ndarray, bands: Bands) -> np.ndarray:
    """Effort per band, dB [B]: band power average of ``|H_s|^2`` per driver, then max over drivers."""
    H = _check_filters(H)
    power = np.abs(np.moveaxis(H.reshape(H.shape[0], -1), 0, -1)) ** 2  # [S*K, F]
    return power_db(np.nanmax(band_power_average(freqs_hz, power, bands), axis=0))


def white_noise_gain_db(
    plant_on_axis: np.ndarray,
    H: np.ndarray,
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
) -> np.ndarray:
    """White-noise gain relative to a single driver, dB [F] or [B].

    Parameters
    ----------
    plant_on_axis : array_like, complex [F, S]
        On-axis response of each driver.
    H : array_like, complex [F, S] or [F, S, 1]
        Driver weights of one input.
    freqs_hz, bands : optional
        With bands, numerator and denominator are band-power-averaged first.
    """
    c0 = np.asarray(plant_on_axis)
    w = np.asarray(H)
    if w.ndim == 3 and w.shape[-1] == 1:
        w = w[..., 0]
    if c0.ndim != 2 or w.shape != c0.shape:
        raise ValueError(f"plant_on_axis [F, S] and H [F, S] must match, got {c0.shape} and {w.shape}")
    num = np.abs(np.sum(c0 * w, axis=-1)) ** 2
    den = np.sum(np.abs(w) ** 2, axis=-1) * np.mean(np.abs(c0) ** 2, axis=-1)
    num = optional_band_average(freqs_hz, num, bands)
    den = optional_band_average(freqs_hz, den, bands)
    return power_db(num, den)
