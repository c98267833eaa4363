r"""Beamformer for the centre input: unit on-axis response, a null *sector* on both sides.

Method: minimum sector energy under an on-axis constraint (a linearly
constrained minimum-variance design, Van Trees 2002 ch. 6, with the sector's
spatial covariance in place of a noise covariance). Per bin, with the arc
responses ``c_a`` (row vectors, pattern ``B_a = c_a w``):

.. math::

    w = \arg\min_w \; w^H Q w \quad \text{s.t.} \quad c_0 w = D_0,
    \qquad w = D_0 \frac{Q^{-1} c_0^H}{c_0 Q^{-1} c_0^H}

.. math::

    Q = t(f) \left(R_s + \mu R_{ml} + \epsilon R_r\right) + \beta g_0^2 I

- ``R_s = sum_a v_a c_a^H c_a`` over the null sector (both sides,
  ``|theta| in null_sector_deg``; optionally the elevated ring too, weight
  ``elevation_weight``), arc weights ``v_a`` normalised to sum 1: the
  integrated sector energy. Widening the design sector beyond the checked
  one buys robustness to a unit turned by a few degrees.
- ``R_ml = sum_a v_a (c_a - c_0)^H (c_a - c_0)`` over ``|theta| <=
  main_lobe_deg``: with the constraint ``c_0 w = D_0`` it is the energy of
  the main lobe's deviation from flat, ``sum v_a |B_a - D_0|^2``.
- ``R_r``: the rest of the circle (stray radiation, weight ``epsilon =
  side_weight``).
- ``beta g_0^2 I``: diagonal loading (Cox et al. 1987). ``g_0`` is the RMS
  on-axis driver response, so ``|w| = 1`` is one driver at unity gain.
  Loading bounds the white-noise gain (WNG, robustness to noise, driver
  mismatch and unit variation) and the effort: per bin and per ``mu`` the
  smallest ``beta`` in ``beta_range`` with ``WNG >= wng_min_db`` and
  ``20 log10 max|w| <= effort_cap_db`` is found by bisection in ``log beta``.
  For a fixed ``mu`` the design is one Hermitian eigendecomposition
  ``A = U diag(lambda) U^H`` of the unloaded matrix, after which every
  ``beta`` costs ``O(S^2)``: ``Q^{-1} c_0^H = U (U^H c_0^H / (lambda + beta g_0^2))``.

The main-lobe weight ``mu`` trades sector depth for main-lobe flatness:
every bin is designed for each ``mu`` of ``lobe_weights`` and keeps the one
with the least sector energy among those whose main lobe stays at or above
``main_lobe_min_db`` (re on axis, on every grid azimuth within
``main_lobe_deg``); if none does, the one with the best main lobe.

``t(f)`` is 1 inside ``band_hz`` and falls as a raised cosine in log
frequency to 0 over ``taper_oct`` octaves outside it; where ``t = 0`` the
solution is delay-and-sum ``D_0 c_0^H / |c_0|^2``.

Analytic optimum: without main-lobe and side terms and with negligible
loading, the sector energy relative to on axis, ``w^H R_s w / |c_0 w|^2``,
reaches its minimum ``1 / lambda_max`` where ``lambda_max`` is the largest
generalized eigenvalue of ``(c_0^H c_0, R_s)``, i.e. ``c_0 R_s^{-1} c_0^H``
(tests/solve/test_beamformer.py checks this).

Note: with exactly three collinear drivers, nulls at +-90 deg and unit
on-axis response fix the pattern to
``(cos(k d sin theta) - cos kd) / (1 - cos kd)``, at most ``cos^2 theta``
(-6.02 dB at 45 deg): a -6 dB main lobe over +-45 deg needs four or more
drivers (or non-collinear ones). With two drivers on a line through +-90 deg,
nulls on both sides with a non-zero on-axis response exist only where ``k d``
is an odd multiple of ``pi`` (``f = c / 2d, 3c / 2d, ...``): isolated
frequencies, so two drivers have no sector beam (procedures/duo2.toml).

References
----------
H. L. Van Trees, "Optimum Array Processing", Wiley 2002, ch. 6 (MVDR/LCMV).
H. Cox, R. M. Zeskind, M. M. Owen, "Robust adaptive beamforming", IEEE
Trans. ASSP 35(10), 1987.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.metrics.bands import power_db
from calib.metrics.beam import arc_weights, azimuth_index, sector_mask, wrap_deg
from calib.solve.bisect import bisect_log
from calib.solve.regularized import reference_gain

__all__ = ["BeamDesign", "DEFAULT_LOBE_WEIGHTS", "band_taper", "design_beamformer", "weighted_gram"]

# Main-lobe weights tried per bin: none, then 1e-4 .. 10 (quarter-decade steps).
DEFAULT_LOBE_WEIGHTS = (0.0,) + tuple(10.0 ** np.arange(-4.0, 1.01, 0.25))


@dataclass(frozen=True)
class BeamDesign:
    """Result of :func:`design_beamformer` (frequency first).

    Attributes
    ----------
    H : ndarray, complex [F, S, 1]
        Driver filters of the centre input.
    beta : ndarray [F]
        Chosen diagonal loading, relative to ``reference_gain**2``.
    lobe_weight : ndarray [F]
        Chosen main-lobe weight ``mu``.
    reference_gain : ndarray [F]
        ``g_0(f)``: RMS on-axis driver response.
    pattern : ndarray, complex [F, A]
        Predicted horizontal pattern ``plant_arc @ H``.
    sector_energy_db : ndarray [F]
        Designed sector energy ``w^H R_s w / |c_0 w|^2`` in dB (negative = rejected).
    wng_db : ndarray [F]
        White-noise gain relative to a single driver.
    effort_db : ndarray [F]
        ``20 log10 max_s |H_s|``.
    band_weight : ndarray [F]
        ``t(f)``: 1 in band, tapering to 0 outside.
    limited : ndarray of bool [F]
        Bins where the WNG limit or the effort cap raised ``beta`` above the
        bracket's lower end.
    """

    H: np.ndarray
    beta: np.ndarray
    lobe_weight: np.ndarray
    reference_gain: np.ndarray
    pattern: np.ndarray
    sector_energy_db: np.ndarray
    wng_db: np.ndarray
    effort_db: np.ndarray
    band_weight: np.ndarray
    limited: np.ndarray


def band_taper(freqs_hz: np.ndarray, band_hz: tuple[float, float], taper_oct: float) -> np.ndarray:
    """1 inside ``band_hz``, raised-cosine (log frequency) to 0 over ``taper_oct`` octaves outside."""
    f_lo, f_hi = band_hz
    if not 0 < f_lo < f_hi:
        raise ValueError(f"band_hz must satisfy 0 < lo < hi, got {band_hz!r}")
    if taper_oct < 0:
        raise ValueError(f"taper_oct must be >= 0, got {taper_oct!r}")
    f = np.maximum(np.asarray(freqs_hz, dtype=float), 1e-300)
    outside_oct = np.maximum(np.log2(f_lo / f), np.log2(f / f_hi))  # <= 0 in band
    if taper_oct == 0:
        return (outside_oct <= 0).astype(float)
    x = np.clip(outside_oct / taper_oct, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def weighted_gram(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_n weights_n rows_n^H rows_n`` per bin: rows [F, N, S], weights [N] or [F, N] -> [F, S, S] Hermitian."""
    rows = np.asarray(rows)
    weights = np.broadcast_to(np.asarray(weights, float), rows.shape[:2])
    return np.swapaxes(rows.conj() * weights[..., None], 1, 2) @ rows


def _region_weights(azimuths_deg: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """Arc weights restricted to ``mask`` and normalised to sum 1 (a mean over the region)."""
    if not np.any(mask):
        raise ValueError(f"{name} contains no azimuth of the grid {np.round(azimuths_deg, 3).tolist()}")
    v = np.where(mask, arc_weights(azimuths_deg), 0.0)
    return v / np.sum(v)


def design_beamformer(
    plant_arc: np.ndarray,
    azimuths_deg: np.ndarray,
    freqs_hz: np.ndarray,
    band_hz: tuple[float, float],
    null_sector_deg: tuple[float, float] = (75.0, 105.0),
    main_lobe_deg: float = 45.0,
    *,
    wng_min_db: float,
    modeling_delay_s: float,
    effort_cap_db: float,
    main_lobe_min_db: float = -5.0,
    plant_elevated: np.ndarray | None = None,
    elevation_weight: float = 0.0,
    side_weight: float = 1e-3,
    lobe_weights: tuple[float, ...] = DEFAULT_LOBE_WEIGHTS,
    taper_oct: float = 1.0 / 3.0,
    beta_range: tuple[float, float] = (1e-10, 1e8),
    n_iter: int = 40,
    tol_deg: float = 0.5,
) -> BeamDesign:
    """Design the centre-input beamformer (see the module docstring).

    Parameters
    ----------
    plant_arc : array_like, complex [F, A, S]
        Driver responses at the microphones of a horizontal arc centred on
        the device, time origin at the output.
    azimuths_deg : array_like [A]
        Microphone azimuths (any order, may be non-uniform); must contain 0
        within ``tol_deg`` and at least one azimuth in the sector on each side.
    freqs_hz : array_like [F]
    band_hz : (float, float)
        Band with sector and main-lobe shaping.
    null_sector_deg : (float, float)
        ``(lo, hi)``: the design sector ``lo <= |theta| <= hi`` on both sides.
    main_lobe_deg : float
        Half-width of the main-lobe region (must end below the sector).
    wng_min_db : float
        Minimum white-noise gain relative to a single driver.
    modeling_delay_s : float
        Target delay from the plant's time origin: the acoustic delay to the
        arc plus the filter latency (pre-ringing room).
    effort_cap_db : float
        Maximum ``20 log10 max_s |H_s|``.
    main_lobe_min_db : float
        Lowest level re on axis allowed within ``main_lobe_deg`` (per bin).
    plant_elevated : array_like, complex [F, A, S], optional
        The same arc at an elevated microphone (e.g. the 30 deg ring): its
        sector joins ``R_s`` with weight ``elevation_weight``.
    elevation_weight : float
        Weight of the elevated sector relative to the horizontal one.
    side_weight, lobe_weights, taper_oct, beta_range, n_iter, tol_deg
        See the module docstring; ``beta_range`` relative to ``g_0^2``.

    Returns
    -------
    BeamDesign
    """
    plant = np.asarray(plant_arc)
    az = np.asarray(azimuths_deg, dtype=float)
    freqs = np.asarray(freqs_hz, dtype=float)
    if plant.ndim != 3 or plant.shape[1] != az.size:
        raise ValueError(f"plant_arc must have shape [F, A, S] with A={az.size} azimuths, got {plant.shape}")
    n_freqs, _, n_drv = plant.shape
    if freqs.shape != (n_freqs,) or not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError(f"freqs_hz must be finite, >= 0, shape [F]=({n_freqs},), got shape {freqs.shape}")
    for name, value in (("wng_min_db", wng_min_db), ("effort_cap_db", effort_cap_db)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if not np.isfinite(modeling_delay_s) or modeling_delay_s < 0:
        raise ValueError(f"modeling_delay_s must be finite and >= 0, got {modeling_delay_s!r}")
    if not 0 < main_lobe_deg < 180:
        raise ValueError(f"main_lobe_deg must be in (0, 180), got {main_lobe_deg!r}")
    if not main_lobe_deg < null_sector_deg[0] < null_sector_deg[1] <= 180:
        raise ValueError(
            f"null_sector_deg must satisfy main_lobe_deg ({main_lobe_deg:g}) < lo < hi <= 180, got {null_sector_deg!r}"
        )
    if side_weight < 0 or elevation_weight < 0 or len(lobe_weights) == 0 or min(lobe_weights) < 0:
        raise ValueError(
            f"need side_weight >= 0, elevation_weight >= 0 and non-empty lobe_weights >= 0, "
            f"got {side_weight!r}, {elevation_weight!r}, {lobe_weights!r}"
        )
    if not 0 < beta_range[0] < beta_range[1]:
        raise ValueError(f"beta_range must satisfy 0 < lo < hi, got {beta_range!r}")
    if plant_elevated is not None and np.shape(plant_elevated) != plant.shape:
        raise ValueError(
            f"plant_elevated must have the shape of plant_arc {plant.shape}, got {np.shape(plant_elevated)}"
        )
    taper = band_taper(freqs, band_hz, taper_oct)
    i0 = azimuth_index(az, 0.0, tol_deg)
    for side in (1.0, -1.0):  # each side must be sampled, or that side is unconstrained
        if not np.any(sector_mask(az, null_sector_deg) & (side * wrap_deg(az) > 0)):
            raise ValueError(
                f"null_sector_deg {null_sector_deg!r} holds no azimuth on the {'+' if side > 0 else '-'} side "
                f"of the grid {np.round(az, 3).tolist()}"
            )

    # Region rows and covariances [F, S, S] (each a weighted mean over its azimuths).
    plant = plant.astype(complex)
    c0 = plant[:, i0, :]
    in_sector = sector_mask(az, null_sector_deg)
    in_lobe = np.abs(wrap_deg(az)) <= main_lobe_deg + 1e-9
    rest = ~in_sector & ~in_lobe
    v_sector = _region_weights(az, in_sector, f"null_sector_deg {null_sector_deg!r}")[in_sector]
    sector_rows = plant[:, in_sector]
    if plant_elevated is not None and elevation_weight > 0:
        sector_rows = np.concatenate([sector_rows, np.asarray(plant_elevated, complex)[:, in_sector]], axis=1)
        v_sector = np.concatenate([v_sector, elevation_weight * v_sector]) / (1.0 + elevation_weight)
    r_lobe = weighted_gram(plant - c0[:, None, :], _region_weights(az, in_lobe, f"main_lobe_deg {main_lobe_deg!r}"))
    r_rest = weighted_gram(plant, _region_weights(az, rest, "the side region")) if np.any(rest) else 0.0 * r_lobe
    g0 = reference_gain(c0[:, None, :])
    d0 = g0 * np.exp(-2j * np.pi * freqs * modeling_delay_s)
    mu = np.asarray(lobe_weights, float)
    lo, _ = beta_range
    limits = _limits(c0, d0)
    f_idx = np.arange(n_freqs)

    r_sector = weighted_gram(sector_rows, v_sector)
    w_all, beta_all = _loaded_candidates(
        taper, r_sector, mu, r_lobe, side_weight * r_rest, c0, d0, limits, wng_min_db, effort_cap_db, beta_range, n_iter
    )
    # Per bin: the least sector energy among the mu whose main lobe holds.
    lobe = np.einsum("fas,mfs->mfa", plant[:, in_lobe], w_all)
    lobe_db = power_db(np.min(np.abs(lobe) ** 2, axis=-1), np.abs(d0) ** 2)  # [M, F]
    sector = np.real(np.einsum("mfs,fst,mft->mf", w_all.conj(), r_sector, w_all)) / np.abs(d0) ** 2
    lobe_ok = lobe_db >= main_lobe_min_db - 1e-9
    score = np.where(lobe_ok, sector, np.inf)
    pick = np.where(np.any(lobe_ok, axis=0), np.argmin(score, axis=0), np.argmax(lobe_db, axis=0))  # [F]
    w = w_all[pick, f_idx]
    beta = beta_all[pick, f_idx]
    wng, effort = limits(w)
    return BeamDesign(
        H=w[..., None],
        beta=beta,
        lobe_weight=mu[pick],
        reference_gain=g0,
        pattern=np.einsum("fas,fs->fa", plant, w),
        sector_energy_db=power_db(sector[pick, f_idx]),
        wng_db=wng,
        effort_db=effort,
        band_weight=taper,
        limited=beta > lo,
    )


def _limits(c0: np.ndarray, d0: np.ndarray):
    """``limits(w [..., F, S]) -> (WNG dB, effort dB)`` for filters with on-axis response ``d0``."""
    ref = np.mean(np.abs(c0) ** 2, axis=-1)

    def limits(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wng = power_db(np.abs(d0) ** 2, np.sum(np.abs(w) ** 2, axis=-1) * ref)
        return wng, power_db(np.max(np.abs(w) ** 2, axis=-1))

    return limits


def _loaded_candidates(taper, r_sector, mu, r_lobe, r_side, c0, d0, limits, wng_min_db, effort_cap_db, beta_range,
                       n_iter):
    """Return filters [M, F, S] and loading [M, F]: per main-lobe weight, the least loading meeting WNG and effort.

    For each ``mu`` one Hermitian eigendecomposition of the unloaded matrix
    ``A = t (R_s + mu R_ml + R_side) / g_0^2``; then every ``beta`` costs
    ``O(S^2)``: ``Q^{-1} c_0^H = U (U^H c_0^H / (lambda + beta))``.
    """
    n_mu, n_freqs = mu.size, c0.shape[0]
    g0_sq = np.abs(d0) ** 2
    unloaded = taper[None, :, None, None] * (
        r_sector[None] + mu[:, None, None, None] * r_lobe[None] + r_side[None]
    ) / g0_sq[None, :, None, None]
    lam, vecs = np.linalg.eigh(unloaded)  # [M, F, S], [M, F, S, S]
    lam = np.maximum(lam, 0.0)  # a Gram matrix is positive semidefinite; clip rounding
    z = np.einsum("mfts,ft->mfs", vecs.conj(), c0.conj())  # U^H c0^H

    def solve(beta_rel: np.ndarray) -> np.ndarray:
        """Return filters [..., M, F, S] for loading [..., M, F] (on axis = D_0)."""
        y = z / (lam + beta_rel[..., None])
        x = (vecs @ y[..., None])[..., 0]
        on_axis = np.sum(z.conj() * y, axis=-1)  # c_0 U y, as c_0 U = z^H
        scale = np.divide(d0, on_axis, out=np.zeros_like(on_axis), where=np.abs(on_axis) > 0)
        return x * scale[..., None]

    def robust_enough(beta_flat: np.ndarray) -> np.ndarray:
        wng, effort = limits(solve(beta_flat.reshape(beta_flat.shape[:-1] + (n_mu, n_freqs))))
        return ((wng >= wng_min_db) & (effort <= effort_cap_db)).reshape(beta_flat.shape)

    beta_flat, _ = bisect_log(robust_enough, beta_range[0], beta_range[1], n_mu * n_freqs, true_above=True,
                              n_iter=n_iter)
    beta = beta_flat.reshape(n_mu, n_freqs)
    return solve(beta), beta
