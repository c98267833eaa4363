"""One-third-octave bands (IEC 61260-1:2014, base 10) and power averaging.

Exact mid-band frequencies ``f_m = 1000 * G**(x/3)`` Hz with the octave ratio
``G = 10**(3/10)`` and integer band index ``x`` (0 at 1 kHz); band edges
``f_m * G**(-1/6)`` and ``f_m * G**(1/6)`` (IEC 61260-1:2014, eqs. 1, 3, 4).
Nominal mid-band frequencies are the rounded R10 preferred numbers of
ISO 266 / IEC 61260-1 Annex E (..., 800, 1000, 1250, 1600, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OCTAVE_RATIO", "Bands", "band_power_average", "optional_band_average", "power_db", "third_octave_bands"]

OCTAVE_RATIO = 10.0 ** 0.3
"""IEC 61260-1 base-10 octave frequency ratio ``G``."""

_R10 = np.array([1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0])


@dataclass(frozen=True)
class Bands:
    """A set of fractional-octave bands.

    Attributes
    ----------
    index : ndarray of int [B]
        Band index ``x`` (0 = 1 kHz).
    centre_hz, lower_hz, upper_hz : ndarray [B]
        Exact mid-band frequency and edges.
    nominal_hz : ndarray [B]
        Nominal mid-band frequency for labels (1000, 1250, 1600, ...).
    """

    index: np.ndarray
    centre_hz: np.ndarray
    lower_hz: np.ndarray
    upper_hz: np.ndarray
    nominal_hz: np.ndarray

    def __len__(self) -> int:
        return int(self.index.size)


def third_octave_bands(f_lo: float, f_hi: float) -> Bands:
    """Third-octave bands whose nominal centre lies in ``[f_lo, f_hi]``.

    Parameters
    ----------
    f_lo, f_hi : float
        Range in Hz, ``0 < f_lo <= f_hi``; compared with the nominal centres,
        so ``third_octave_bands(100, 10000)`` spans the 100 Hz to 10 kHz bands.

    Returns
    -------
    Bands
    """
    if not (np.isfinite(f_lo) and np.isfinite(f_hi) and 0 < f_lo <= f_hi):
        raise ValueError(f"need 0 < f_lo <= f_hi (finite), got f_lo={f_lo!r}, f_hi={f_hi!r}")
    # candidate indices, one band of margin on each side, then filter on nominal
    x = np.arange(int(np.floor(10 * np.log10(f_lo / 1000))) - 1, int(np.ceil(10 * np.log10(f_hi / 1000))) + 2)
    nominal = _R10[x % 10] * 10.0 ** (3 + x // 10)
    rel = 1e-9
    x = x[(nominal >= f_lo * (1 - rel)) & (nominal <= f_hi * (1 + rel))]
    centre = 1000.0 * OCTAVE_RATIO ** (x / 3)
    return Bands(
        index=x,
        centre_hz=centre,
        lower_hz=centre * OCTAVE_RATIO ** (-1 / 6),
        upper_hz=centre * OCTAVE_RATIO ** (1 / 6),
        nominal_hz=_R10[x % 10] * 10.0 ** (3 + x // 10),
    )


def band_matrix(freqs_hz: np.ndarray, bands: Bands) -> np.ndarray:
    """Membership matrix [F, B]: bin ``f`` in band ``b`` if ``lower <= f < upper``."""
    freqs = np.asarray(freqs_hz, dtype=float)
    if freqs.ndim != 1:
        raise ValueError(f"freqs_hz must be 1-D [F], got shape {freqs.shape}")
    return ((freqs[:, None] >= bands.lower_hz) & (freqs[:, None] < bands.upper_hz)).astype(float)


def band_power_average(freqs_hz: np.ndarray, power: np.ndarray, bands: Bands) -> np.ndarray:
    """Mean of a power quantity over the bins of each band.

    Parameters
    ----------
    freqs_hz : array_like [F]
    power : array_like [..., F]
        A power-like quantity (``|X|^2``), frequency last.
    bands : Bands

    Returns
    -------
    ndarray [..., B]
        Mean over the non-NaN bins with ``lower <= f < upper``; NaN for
        bands that contain no such bin.
    """
    power = np.asarray(power, dtype=float)
    member = band_matrix(freqs_hz, bands)
    if power.shape[-1:] != member.shape[:1]:
        raise ValueError(f"power must have F={member.shape[0]} bins on its last axis, got shape {power.shape}")
    counts = ~np.isnan(power) @ member  # NaN bins (e.g. 0/0 at DC) are skipped
    total = np.where(np.isfinite(power), power, 0.0) @ member
    total = np.where(np.isposinf(power) @ member > 0, np.inf, total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / counts, np.nan)


def optional_band_average(freqs_hz: np.ndarray | None, power: np.ndarray, bands: Bands | None) -> np.ndarray:
    """``power`` [..., F] as is when ``bands`` is None, else :func:`band_power_average` [..., B]."""
    if bands is None:
        return np.asarray(power, dtype=float)
    if freqs_hz is None:
        raise ValueError("freqs_hz is required with bands (band averaging needs bin frequencies)")
    return band_power_average(freqs_hz, power, bands)


def power_db(power: np.ndarray, reference: np.ndarray | float = 1.0) -> np.ndarray:
    """``10 log10(power / reference)``; 0 -> -inf and 0/0 -> NaN without warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.asarray(power) / reference)
