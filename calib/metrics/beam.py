"""Beam metrics from a horizontal pattern ``B(theta, f)`` (docs/metrics.md, 'Beam').

A pattern is given as complex pressure [F, A] on an azimuth grid [A] (degrees,
AES69: counter-clockwise from the device front); predicted as
``plant_arc @ H`` or measured. With ``bands`` (and ``freqs_hz``) every metric
is formed from band-averaged powers ``<|B(theta)|^2>_band`` (power averaging),
otherwise per bin.

- Null depth at ``theta_n``: ``10 log10(<|B(theta_n)|^2> / <|B(0)|^2>)``.
- Sector level (each side): ``max_{lo <= +-theta <= hi} 10 log10(<|B(theta)|^2> / <|B(0)|^2>)``,
  the worst (least rejected) grid azimuth of the sector, band by band.
- Main lobe: ``min_{|theta| <= theta_ml} 10 log10(<|B(theta)|^2> / <|B(0)|^2>)``.
- Directivity index (horizontal): ``10 log10(<|B(0)|^2> / sum_a v_a <|B(theta_a)|^2>)``
  with arc weights ``v_a`` (trapezoidal rule, :func:`arc_weights`), so that a
  non-uniform grid is integrated correctly.
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import Bands, optional_band_average, power_db

__all__ = [
    "arc_weights",
    "azimuth_index",
    "directivity_index_db",
    "main_lobe_db",
    "null_depth_db",
    "sector_level_db",
    "sector_mask",
    "wrap_deg",
]


def wrap_deg(angle_deg: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to ``(-180, 180]`` degrees."""
    a = np.mod(np.asarray(angle_deg, dtype=float), 360.0)
    return np.where(a > 180.0, a - 360.0, a)


def arc_weights(azimuths_deg: np.ndarray, full_circle: bool | None = None) -> np.ndarray:
    """Trapezoidal quadrature weights of an azimuth grid, summing to 1.

    ``v_i = (theta_{i+1} - theta_{i-1}) / 2`` divided by the covered angle, on
    the grid sorted around the circle. On a full circle the rule is periodic;
    on a partial arc it runs from one end to the other (half weights at the
    ends) and averages over that arc only.

    Parameters
    ----------
    azimuths_deg : array_like [A]
        Distinct azimuths, any order.
    full_circle : bool, optional
        Whether the grid samples the whole circle. Default: inferred, true
        unless some gap between neighbouring azimuths is 90 degrees or more.

    Returns
    -------
    ndarray [A]
        Weights in the input order.
    """
    az = np.mod(np.asarray(azimuths_deg, dtype=float), 360.0)
    if az.ndim != 1 or az.size == 0 or not np.all(np.isfinite(az)):
        raise ValueError(f"azimuths_deg must be a non-empty finite 1-D array, got {azimuths_deg!r}")
    if az.size == 1:
        return np.ones(1)
    order = np.argsort(az)
    sorted_az = az[order]
    gaps = np.diff(np.append(sorted_az, sorted_az[0] + 360.0))  # gap after each sorted point
    if np.any(gaps < 1e-9):
        raise ValueError(f"azimuths_deg contains duplicate directions: {np.asarray(azimuths_deg).tolist()}")
    if full_circle is None:
        full_circle = bool(np.max(gaps) < 90.0)
    if full_circle:
        w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
    else:
        # open the circle at its largest gap; trapezoid along the remaining arc
        start = (int(np.argmax(gaps)) + 1) % az.size
        inner = np.roll(gaps, -start)[:-1]  # gaps along the arc, in arc order
        w_arc = 0.5 * (np.append(inner, 0.0) + np.append(0.0, inner))
        w_sorted = np.roll(w_arc, start)
    weights = np.empty_like(w_sorted)
    weights[order] = w_sorted
    return weights / np.sum(weights)


def azimuth_index(azimuths_deg: np.ndarray, target_deg: float, tol_deg: float = 0.5) -> int:
    """Index of the grid azimuth nearest ``target_deg``; ``ValueError`` if farther than ``tol_deg``."""
    az = np.asarray(azimuths_deg, dtype=float)
    dist = np.abs(wrap_deg(az - target_deg))
    i = int(np.argmin(dist))
    if dist[i] > tol_deg:
        raise ValueError(
            f"no azimuth within {tol_deg} deg of {target_deg!r} deg; nearest is {az[i]!r}, "
            f"grid: {np.round(az, 3).tolist()}"
        )
    return i


def sector_mask(azimuths_deg: np.ndarray, sector_deg: tuple[float, float], tol_deg: float = 1e-9) -> np.ndarray:
    """Azimuths with ``lo <= |theta| <= hi`` (both sides of the device), bool [A]."""
    lo, hi = sector_deg
    if not 0 <= lo < hi <= 180:
        raise ValueError(f"sector_deg must satisfy 0 <= lo < hi <= 180, got {sector_deg!r}")
    a = np.abs(wrap_deg(azimuths_deg))
    return (a >= lo - tol_deg) & (a <= hi + tol_deg)


def _angle_power(pattern, azimuths_deg, freqs_hz, bands: Bands | None) -> np.ndarray:
    """|B|^2 as [A, F] (per bin) or [A, B] (band-averaged)."""
    pattern = np.asarray(pattern)
    az = np.asarray(azimuths_deg, dtype=float)
    if pattern.ndim != 2 or pattern.shape[1] != az.size:
        raise ValueError(f"pattern must have shape [F, A] with A={az.size} azimuths, got {pattern.shape}")
    return optional_band_average(freqs_hz, np.abs(pattern.T) ** 2, bands)


def null_depth_db(
    pattern: np.ndarray,
    azimuths_deg: np.ndarray,
    null_deg: tuple[float, ...] = (90.0, -90.0),
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
    tol_deg: float = 0.5,
) -> np.ndarray:
    """Level at each null direction relative to on-axis, dB [N, F] or [N, B] (negative = deep)."""
    power = _angle_power(pattern, azimuths_deg, freqs_hz, bands)
    i0 = azimuth_index(azimuths_deg, 0.0, tol_deg)
    idx = [azimuth_index(azimuths_deg, n, tol_deg) for n in null_deg]
    return power_db(power[idx], power[i0])


def sector_level_db(
    pattern: np.ndarray,
    azimuths_deg: np.ndarray,
    sector_deg: tuple[float, float] = (80.0, 100.0),
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
    tol_deg: float = 0.5,
) -> np.ndarray:
    """Worst level within the sector relative to on-axis, per side (+theta, -theta), dB [2, F] or [2, B].

    Negative = rejected; ``-sector_level_db`` is the sector rejection. Raises
    ``ValueError`` if a side of the sector holds no grid azimuth.
    """
    power = _angle_power(pattern, azimuths_deg, freqs_hz, bands)
    i0 = azimuth_index(azimuths_deg, 0.0, tol_deg)
    az = wrap_deg(azimuths_deg)
    inside = sector_mask(az, sector_deg)
    out = []
    for side in (1.0, -1.0):
        mask = inside & (side * az > 0)
        if not np.any(mask):
            raise ValueError(
                f"sector {sector_deg!r} deg holds no azimuth on the {'+' if side > 0 else '-'} side "
                f"of the grid {np.round(np.asarray(azimuths_deg, float), 3).tolist()}"
            )
        out.append(power_db(np.max(power[mask], axis=0), power[i0]))
    return np.stack(out)


def main_lobe_db(
    pattern: np.ndarray,
    azimuths_deg: np.ndarray,
    main_lobe_deg: float = 45.0,
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
    tol_deg: float = 0.5,
) -> np.ndarray:
    """Minimum level within ``|theta| <= main_lobe_deg`` relative to on-axis, dB [F] or [B]."""
    if not 0 <= main_lobe_deg <= 180:
        raise ValueError(f"main_lobe_deg must be in [0, 180], got {main_lobe_deg!r}")
    power = _angle_power(pattern, azimuths_deg, freqs_hz, bands)
    i0 = azimuth_index(azimuths_deg, 0.0, tol_deg)
    inside = np.abs(wrap_deg(azimuths_deg)) <= main_lobe_deg + 1e-9
    return power_db(np.min(power[inside], axis=0), power[i0])


def directivity_index_db(
    pattern: np.ndarray,
    azimuths_deg: np.ndarray,
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
    full_circle: bool | None = None,
    tol_deg: float = 0.5,
) -> np.ndarray:
    """Horizontal directivity index ``10 log10(|B(0)|^2 / mean_theta |B|^2)``, dB [F] or [B].

    The mean over azimuth uses :func:`arc_weights` (0 dB for an omni,
    ``10 log10 2 = 3.01`` dB for a horizontal dipole ``cos theta``).
    """
    power = _angle_power(pattern, azimuths_deg, freqs_hz, bands)
    i0 = azimuth_index(azimuths_deg, 0.0, tol_deg)
    mean = arc_weights(azimuths_deg, full_circle) @ power
    return power_db(power[i0], mean)
