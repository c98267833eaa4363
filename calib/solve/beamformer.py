"""Beamformer for the centre input: unit on-axis response, nulls at +-90 deg.

Method (chosen for one solver shared with CTC): weighted, regularized least
squares over the measured horizontal arc with heavily weighted "soft
constraints" (Kirkeby & Nelson 1999 with the weighting of Ward et al. for
pattern synthesis):

.. math::

    w = \\arg\\min \\sum_e v_e |c_e^T w - d_e|^2 + \\beta g_0^2 \\|w\\|^2

over these rows ``e``:

- on-axis (0 deg): ``d = D_0 = g_0 e^{-j 2\\pi f \\tau_m}``, weight ``kappa``;
- each null direction: ``d = 0``, weight ``kappa * t(f)``;
- the arc: inside the main lobe (``|theta| <= main_lobe_deg``) ``d = D_0``
  (flat), arc weights normalized to sum 1; outside ``d = 0`` with total weight
  ``side_weight`` (keeps stray radiation low without competing with the
  main lobe); both times ``t(f)``.

``g_0`` is the RMS on-axis driver response (so ``|w| = 1`` is one driver at
unity gain, no driver equalisation) and ``kappa = null_weight`` (default
1e4, i.e. the nulls and the on-axis response act as constraints; a residual
of ``1/kappa`` relative gives > 40 dB nulls). ``t(f)`` is 1 inside
``band_hz`` and falls as a raised cosine in log frequency to 0 over
``taper_oct`` octaves outside it: out of band only the on-axis row remains,
whose minimum-norm solution ``c_0^* D_0 / |c_0|^2`` is delay-and-sum, and
the taper keeps the transition smooth (short filters).

Robustness: the white-noise gain (:func:`calib.metrics.effort.white_noise_gain_db`)
must stay ``>= wng_min_db`` and the effort ``20 log10 max|w| <= effort_cap_db``:
per bin the smallest ``beta`` that satisfies both is found by vectorized
bisection in ``log beta`` (diagonal loading; Cox et al. 1987). As ``beta``
grows the soft constraints give way first to the plain delay-and-sum
solution. Every solution is finally scaled so that the on-axis response
equals ``D_0`` exactly (unit on-axis response; null depth, main lobe and
WNG are ratios and unchanged).

Note: with exactly three collinear drivers, nulls at +-90 deg and unit
on-axis response fix the pattern to
``(cos(k d sin theta) - cos kd) / (1 - cos kd)``, at most ``cos^2 theta``
(-6.02 dB at 45 deg): a -6 dB main lobe over +-45 deg needs four or more
drivers (or non-collinear ones).

References
----------
O. Kirkeby, P. A. Nelson, "Digital filter design for inversion problems in
sound reproduction", J. Audio Eng. Soc. 47(7/8), 1999.
H. Cox, R. M. Zeskind, M. M. Owen, "Robust adaptive beamforming", IEEE
Trans. ASSP 35(10), 1987.
D. B. Ward, R. A. Kennedy, R. C. Williamson, "Theory and design of broadband
sensor arrays with frequency invariant far-field beam patterns", J. Acoust.
Soc. Am. 97(2), 1995.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.metrics.bands import power_db
from calib.metrics.beam import arc_weights, azimuth_index, wrap_deg
from calib.metrics.effort import white_noise_gain_db
from calib.solve.bisect import bisect_log
from calib.solve.regularized import TikhonovSolver, reference_gain

__all__ = ["BeamDesign", "band_taper", "design_beamformer"]


@dataclass(frozen=True)
class BeamDesign:
    """Result of :func:`design_beamformer` (frequency first).

    Attributes
    ----------
    H : ndarray, complex [F, S, 1]
        Driver filters of the centre input.
    beta : ndarray [F]
        Chosen diagonal loading, relative to ``reference_gain**2``.
    reference_gain : ndarray [F]
        ``g_0(f)``: RMS on-axis driver response.
    pattern : ndarray, complex [F, A]
        Predicted horizontal pattern ``plant_arc @ H``.
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
    reference_gain: np.ndarray
    pattern: np.ndarray
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


def design_beamformer(
    plant_arc: np.ndarray,
    azimuths_deg: np.ndarray,
    freqs_hz: np.ndarray,
    band_hz: tuple[float, float],
    null_deg: tuple[float, ...] = (90.0, -90.0),
    main_lobe_deg: float = 45.0,
    *,
    wng_min_db: float,
    modeling_delay_s: float,
    effort_cap_db: float,
    null_weight: float = 1e4,
    side_weight: float = 0.1,
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
        and the null directions within ``tol_deg``.
    freqs_hz : array_like [F]
    band_hz : (float, float)
        Band with nulls and main-lobe shaping.
    null_deg : tuple of float
        Null directions.
    main_lobe_deg : float
        Half-width of the flat main-lobe region.
    wng_min_db : float
        Minimum white-noise gain relative to a single driver.
    modeling_delay_s : float
        Target delay from the plant's time origin: the acoustic delay to the
        arc (:func:`calib.solve.fir.arrival_delay_s`, 5.8 ms at 2 m) plus the
        filter latency (pre-ringing room; superdirective filters ring long,
        allow ~8 ms for > 40 dB nulls after FIR truncation).
    effort_cap_db : float
        Maximum ``20 log10 max_s |H_s|``.
    null_weight, side_weight, taper_oct, beta_range, n_iter, tol_deg
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
    n_freqs = plant.shape[0]
    if freqs.shape != (n_freqs,) or not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError(f"freqs_hz must be finite, >= 0, shape [F]=({n_freqs},), got shape {freqs.shape}")
    for name, value in (("wng_min_db", wng_min_db), ("effort_cap_db", effort_cap_db)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if not np.isfinite(modeling_delay_s) or modeling_delay_s < 0:
        raise ValueError(f"modeling_delay_s must be finite and >= 0, got {modeling_delay_s!r}")
    if not 0 < main_lobe_deg < 180:
        raise ValueError(f"main_lobe_deg must be in (0, 180), got {main_lobe_deg!r}")
    if null_weight <= 0 or side_weight < 0:
        raise ValueError(f"need null_weight > 0 and side_weight >= 0, got {null_weight!r}, {side_weight!r}")
    if not 0 < beta_range[0] < beta_range[1]:
        raise ValueError(f"beta_range must satisfy 0 < lo < hi, got {beta_range!r}")
    taper = band_taper(freqs, band_hz, taper_oct)
    i0 = azimuth_index(az, 0.0, tol_deg)
    i_null = [azimuth_index(az, n, tol_deg) for n in null_deg]
    if i0 in i_null:
        raise ValueError(f"null_deg {null_deg!r} must not include the on-axis direction 0 deg")

    c0 = plant[:, i0, :].astype(complex)
    g0 = reference_gain(c0[:, None, :])
    d0 = g0 * np.exp(-2j * np.pi * freqs * modeling_delay_s)
    rows = np.concatenate([plant, c0[:, None, :], plant[:, i_null, :]], axis=1).astype(complex)

    in_lobe = np.abs(wrap_deg(az)) <= main_lobe_deg
    v = arc_weights(az)
    arc_w = np.where(in_lobe, v / np.sum(v[in_lobe]), side_weight * v / max(np.sum(v[~in_lobe]), 1e-300))
    row_w = np.concatenate([arc_w, [null_weight], np.full(len(i_null), null_weight)])
    weights = row_w[None, :] * np.concatenate(
        [np.repeat(taper[:, None], az.size, 1), np.ones((n_freqs, 1)), np.repeat(taper[:, None], len(i_null), 1)],
        axis=1,
    )
    desired = np.zeros(rows.shape[:2] + (1,), complex)
    desired[:, : az.size, 0] = np.where(in_lobe[None, :], d0[:, None], 0.0)
    desired[:, az.size, 0] = d0
    solver = TikhonovSolver.from_plant(rows, weights)
    coords = solver.project(desired)

    def evaluate(beta_rel):
        w = solver.solve_projected(coords, beta_rel * g0**2)[..., 0]  # [..., F, S]
        on_axis = np.sum(c0 * w, axis=-1)
        alpha = np.divide(d0, on_axis, out=np.ones_like(on_axis), where=np.abs(on_axis) > 0)
        w = w * alpha[..., None]
        wng = white_noise_gain_db(np.broadcast_to(c0, w.shape).reshape(-1, c0.shape[1]), w.reshape(-1, c0.shape[1]))
        effort = power_db(np.max(np.abs(w) ** 2, axis=-1))
        return w, wng.reshape(w.shape[:-1]), effort

    def robust_enough(beta_rel):
        _, wng, effort = evaluate(beta_rel)
        return (wng >= wng_min_db) & (effort <= effort_cap_db)

    lo, hi = beta_range
    beta, _ = bisect_log(robust_enough, lo, hi, n_freqs, true_above=True, n_iter=n_iter)
    w, wng, effort = evaluate(beta)
    return BeamDesign(
        H=w[..., None],
        beta=beta,
        reference_gain=g0,
        pattern=np.einsum("fas,fs->fa", plant, w),
        wng_db=wng,
        effort_db=effort,
        band_weight=taper,
        limited=beta > lo,
    )
