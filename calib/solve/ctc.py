r"""Robust crosstalk-cancellation (CTC) filters tuned to a cancellation target.

For input L the design asks, at every design head position ``p`` stacked
(a zone rather than a point), for the left ear to receive the target and the
right ear nothing; input R mirrors it. Both inputs are solved at once
(``K = 2``) with the regularized inverse of :mod:`calib.solve.regularized`
(Kirkeby & Nelson 1999; Bai & Lee 2006 for the regularization/robustness
trade-off in CTC):

.. math::

    H_\beta = (C^H C + \beta g^2 I)^{-1} C^H D, \qquad
    D_{(p,\mathrm{L}),\mathrm{L}} = D_{(p,\mathrm{R}),\mathrm{R}}
        = g(f)\, e^{-j 2\pi f \tau_m} v(f),

other entries 0, ``g`` the RMS ear response (:func:`reference_gain`) and
``v`` the optional ipsilateral virtualization target. With two drivers this
is a plant inversion, with more it steers nulls: the same equation.

Level compensation: Tikhonov regularization shrinks the whole response
(``|C H| -> 0`` as ``beta -> inf``), which would make "more robust" also mean
"quieter". Each input's filter is therefore scaled by the least-squares gain
``alpha = Re(R^H D) / ||R||^2`` (``R = C H_beta``; real and ``>= 1`` for
Tikhonov solutions). The cancellation gain is a ratio and does not change;
as ``beta -> inf`` the filter tends to the level-matched delay-and-sum filter
``alpha C^H D`` (scaled plant conjugate), which is what out-of-band bins get.

Choice of ``beta`` per bin (relative to ``g^2``; a log-grid scan, then
bisection, vectorized over bins): the largest ``beta`` whose predicted
cancellation gain, minimum over design positions and both inputs, still meets
``target_cg_db(f)`` with a filter effort ``20 log10 max_s |H_s|`` (0 dB = one
driver at unity gain) within ``effort_cap_db`` (least effort, most robust, no
pointless overshoot). Where no ``beta`` does both, the bin is "cap-limited"
and gets the ``beta`` with the best worst-case cancellation under the cap.
The scan matters: over a zone the cancellation is not monotone in ``beta``
(tiny ``beta`` overfits and the worst position degrades again). Bins where the target is NaN or ``-inf`` are
out of band and get ``beta_range[1]``.

References
----------
O. Kirkeby, P. A. Nelson, "Digital filter design for inversion problems in
sound reproduction", J. Audio Eng. Soc. 47(7/8), 1999.
M. R. Bai, C.-C. Lee, "Objective and subjective analysis of effects of
listening angle on crosstalk cancellation in spatial sound reproduction",
J. Acoust. Soc. Am. 120(4), 2006.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.metrics.bands import power_db
from calib.solve.regularized import TikhonovSolver, reference_gain

__all__ = ["CtcDesign", "cg_target_curve", "design_ctc"]


@dataclass(frozen=True)
class CtcDesign:
    """Result of :func:`design_ctc` (frequency first, inputs last).

    Attributes
    ----------
    H : ndarray, complex [F, S, 2]
        Driver filters for inputs L (0) and R (1); ``|H| = 1`` is one driver
        at unity gain.
    beta : ndarray [F]
        Chosen regularization, relative to ``reference_gain**2``.
    reference_gain : ndarray [F]
        ``g(f)``, RMS of ``|C|`` over design positions, ears and drivers.
    cg_db : ndarray [F, P, 2]
        Predicted cancellation gain per bin, design position and input:
        input L ``10 log10(|P_left|^2 / |P_right|^2)``, R mirrored.
    effort_db : ndarray [F]
        ``20 log10 max_{s,k} |H|``.
    in_band : ndarray of bool [F]
        Bins with a finite cancellation target.
    cap_limited : ndarray of bool [F]
        In-band bins where the effort cap, not the target, set ``beta``.
    target_met : ndarray of bool [F]
        In-band bins whose minimum ``cg_db`` meets the target.
    """

    H: np.ndarray
    beta: np.ndarray
    reference_gain: np.ndarray
    cg_db: np.ndarray
    effort_db: np.ndarray
    in_band: np.ndarray
    cap_limited: np.ndarray
    target_met: np.ndarray


def _check_inputs(plant_ears, freqs_hz, target_cg_db, effort_cap_db, modeling_delay_s, virtual_ipsi):
    plant = np.asarray(plant_ears)
    if plant.ndim != 4 or plant.shape[2] != 2:
        raise ValueError(f"plant_ears must have shape [F, P, 2, S], got shape {plant.shape}")
    n_freqs = plant.shape[0]
    freqs = np.asarray(freqs_hz, dtype=float)
    if freqs.shape != (n_freqs,) or not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError(f"freqs_hz must be finite, >= 0, shape [F]=({n_freqs},), got shape {freqs.shape}")
    target = np.asarray(target_cg_db, dtype=float)
    if target.shape != (n_freqs,):
        raise ValueError(f"target_cg_db must have shape [F]=({n_freqs},), got {target.shape}")
    if np.any(target == np.inf):
        raise ValueError("target_cg_db contains +inf; valid: finite dB in band, NaN or -inf outside")
    if not np.isfinite(effort_cap_db):
        raise ValueError(f"effort_cap_db must be finite, got {effort_cap_db!r}")
    if not np.isfinite(modeling_delay_s) or modeling_delay_s < 0:
        raise ValueError(f"modeling_delay_s must be finite and >= 0, got {modeling_delay_s!r}")
    if virtual_ipsi is None:
        virtual = np.ones(n_freqs, complex)
    else:
        virtual = np.asarray(virtual_ipsi, dtype=complex)
        if virtual.shape != (n_freqs,) or not np.all(np.isfinite(virtual)):
            raise ValueError(f"virtual_ipsi must be finite complex of shape [F]=({n_freqs},), got {virtual.shape}")
    return plant, freqs, target, virtual


def design_ctc(
    plant_ears: np.ndarray,
    freqs_hz: np.ndarray,
    target_cg_db: np.ndarray,
    effort_cap_db: float,
    modeling_delay_s: float,
    virtual_ipsi: np.ndarray | None = None,
    *,
    beta_range: tuple[float, float] = (1e-10, 1e4),
    n_iter: int = 40,
) -> CtcDesign:
    """Design robust CTC filters for inputs L and R (see the module docstring).

    Parameters
    ----------
    plant_ears : array_like, complex [F, P, 2, S]
        Driver-to-ear transfer functions at P design head positions (ear 0 =
        left, 1 = right), time origin at the output (acoustic delay included).
    freqs_hz : array_like [F]
        Bin frequencies (an rfft grid).
    target_cg_db : array_like [F]
        Cancellation-gain target; NaN or ``-inf`` marks out-of-band bins.
    effort_cap_db : float
        Maximum ``20 log10 max_s |H_s|`` (0 dB = one driver as is).
    modeling_delay_s : float
        Target delay from the plant's time origin. It must exceed the acoustic
        delay to the ears plus the filters' pre-ringing, or the FIR is acausal:
        use :func:`calib.solve.fir.arrival_delay_s` plus a latency of a few ms.
    virtual_ipsi : array_like, complex [F], optional
        Ipsilateral virtualization response (default 1), see
        :func:`calib.solve.virtual.virtual_targets`.
    beta_range : (float, float)
        Bisection bracket for ``beta`` relative to ``g^2``.
    n_iter : int
        Bisection steps.

    Returns
    -------
    CtcDesign
    """
    plant, freqs, target, virtual = _check_inputs(
        plant_ears, freqs_hz, target_cg_db, effort_cap_db, modeling_delay_s, virtual_ipsi
    )
    if not 0 < beta_range[0] < beta_range[1]:
        raise ValueError(f"beta_range must satisfy 0 < lo < hi, got {beta_range!r}")
    n_freqs, n_pos, _, n_drv = plant.shape
    stacked = plant.reshape(n_freqs, 2 * n_pos, n_drv).astype(complex)  # row 2p + ear
    g = reference_gain(stacked)
    wanted = g * np.exp(-2j * np.pi * freqs * modeling_delay_s) * virtual
    desired = np.zeros((n_freqs, 2 * n_pos, 2), complex)
    desired[:, 0::2, 0] = wanted[:, None]  # input L -> left ears
    desired[:, 1::2, 1] = wanted[:, None]  # input R -> right ears
    solver = TikhonovSolver.from_plant(stacked)
    coords = solver.project(desired)

    def evaluator(sel):
        """Level-compensated filters, CG [..., F', P, 2] and effort [..., F'] on the bins ``sel``."""
        sub, c, d, b, g2 = solver.take(sel), stacked[sel], desired[sel], coords[sel], g[sel] ** 2

        def evaluate(beta_rel):
            h = sub.solve_projected(b, beta_rel * g2)
            resp = c @ h  # [..., F', 2P, 2]
            num = np.einsum("...ek,...ek->...k", np.conj(resp), d).real
            den = np.einsum("...ek,...ek->...k", np.conj(resp), resp).real
            alpha = np.divide(num, den, out=np.ones_like(den), where=den > 0)
            h = h * alpha[..., None, :]
            power = (resp.real**2 + resp.imag**2).reshape(*resp.shape[:-2], n_pos, 2, 2)  # [..., P, ear, input]
            ipsi = np.stack([power[..., 0, 0], power[..., 1, 1]], -1)
            contra = np.stack([power[..., 1, 0], power[..., 0, 1]], -1)
            cg = power_db(ipsi, contra)
            effort = power_db(np.max((h.real**2 + h.imag**2).reshape(*h.shape[:-2], 2 * n_drv), axis=-1))
            return h, cg, effort

        return evaluate

    in_band = np.isfinite(target)
    band = np.flatnonzero(in_band)
    evaluate_band = evaluator(band)

    # The cancellation gain is not monotone in beta over the whole bracket: at very
    # small beta the zone solution overfits and the worst position drops again. So
    # scan a log grid first (all bins at once), take the largest grid beta that meets
    # the target within the cap, then bisect between it and the next grid point.
    lo, hi = beta_range
    grid = np.geomspace(lo, hi, int(np.ceil(4 * np.log10(hi / lo))) + 1)  # 4 per decade
    _, cg_grid, effort_grid = evaluate_band(np.broadcast_to(grid[:, None], (grid.size, band.size)))
    worst = np.min(cg_grid.reshape(grid.size, band.size, -1), axis=-1)  # [G, F']
    under = effort_grid <= effort_cap_db
    ok = (worst >= target[band]) & under
    feasible = ok.any(axis=0)
    top = grid.size - 1 - np.argmax(ok[::-1], axis=0)  # largest satisfying grid index
    # Infeasible bins: the best worst-case cancellation the cap allows (cap-limited).
    best = np.argmax(np.where(under, worst, -np.inf), axis=0)
    best = np.where(under.any(axis=0), best, grid.size - 1)
    index = np.where(feasible, top, best)
    beta_band = grid[index]

    def satisfied(beta_rel):
        _, cg_b, eff_b = evaluate_band(beta_rel)
        cg_min = np.min(cg_b.reshape(*cg_b.shape[:-2], -1), axis=-1)
        return (cg_min >= target[band]) & (eff_b <= effort_cap_db)

    refine = feasible & (index < grid.size - 1)
    if refine.any():
        upper = grid[np.minimum(index + 1, grid.size - 1)]
        log_ok, log_bad = np.log(beta_band), np.log(upper)
        for _ in range(n_iter // 2):
            mid = 0.5 * (log_ok + log_bad)
            good = satisfied(np.exp(mid))
            log_ok = np.where(refine & good, mid, log_ok)
            log_bad = np.where(refine & ~good, mid, log_bad)
        beta_band = np.exp(log_ok)
    beta = np.full(n_freqs, float(hi))
    beta[band] = beta_band
    cap_limited = np.zeros(n_freqs, bool)
    cap_limited[band] = ~feasible
    h, cg, effort = evaluator(slice(None))(beta)
    with np.errstate(invalid="ignore"):
        met = in_band & (np.min(cg, axis=(-2, -1)) >= target - 1e-9)
    return CtcDesign(
        H=h,
        beta=beta,
        reference_gain=g,
        cg_db=cg,
        effort_db=effort,
        in_band=in_band,
        cap_limited=cap_limited,
        target_met=met,
    )


def cg_target_curve(
    freqs_hz: np.ndarray, band_hz: tuple[float, float], cg_db: float, taper_oct: float = 0.5
) -> np.ndarray:
    """Flat cancellation target inside a band with raised-cosine edges.

    ``cg_db`` between ``band_hz[0] * 2**taper_oct`` and
    ``band_hz[1] / 2**taper_oct``, tapering (raised cosine in log frequency)
    to 0 dB at the band edges, NaN outside. The taper lets ``beta`` rise
    smoothly to the out-of-band (delay-and-sum) solution, which keeps the
    filters' impulse responses short.

    Returns
    -------
    ndarray [F]
    """
    f_lo, f_hi = band_hz
    if not 0 < f_lo < f_hi:
        raise ValueError(f"band_hz must satisfy 0 < lo < hi, got {band_hz!r}")
    if taper_oct < 0 or 2 * taper_oct > np.log2(f_hi / f_lo):
        raise ValueError(f"taper_oct must be in [0, half the band width in octaves], got {taper_oct!r}")
    freqs = np.asarray(freqs_hz, dtype=float)
    with np.errstate(divide="ignore"):
        oct_in = np.minimum(np.log2(freqs / f_lo), np.log2(f_hi / np.maximum(freqs, 1e-300)))
    ramp = np.clip(oct_in / taper_oct, 0, 1) if taper_oct > 0 else np.ones_like(freqs)
    out = cg_db * 0.5 * (1 - np.cos(np.pi * ramp))
    return np.where((freqs >= f_lo) & (freqs <= f_hi), out, np.nan)
