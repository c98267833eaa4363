"""Vectorized bisection in log(beta), all frequency bins at once.

Used to pick the regularization per bin: the predicate (target met, effort
under the cap, white-noise gain above its limit) is assumed monotone in
``beta`` over ``[lo, hi]``. Each iteration halves the bracket in log-space,
so ``n_iter`` iterations shrink a bracket of ``r`` decades to
``r / 2**n_iter`` decades (40 iterations over 16 decades: ratio 1 + 8e-11).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bisect_log"]


def bisect_log(
    predicate: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    n_freqs: int,
    true_above: bool,
    n_iter: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary ``beta`` of a monotone per-bin predicate, on the satisfying side.

    Parameters
    ----------
    predicate : callable
        ``predicate(beta [..., F]) -> bool [..., F]``.
    lo, hi : float
        Search bracket, ``0 < lo < hi``.
    n_freqs : int
        Number of bins ``F``.
    true_above : bool
        ``True`` if the predicate holds for ``beta >= beta*`` (returns the
        smallest satisfying ``beta``), ``False`` if it holds for
        ``beta <= beta*`` (returns the largest satisfying ``beta``).
    n_iter : int
        Bisection steps.

    Returns
    -------
    beta : ndarray [F]
        The satisfying end of the final bracket; where no ``beta`` in the
        bracket satisfies the predicate, the end nearest to satisfying it
        (``hi`` if ``true_above`` else ``lo``).
    feasible : ndarray of bool [F]
        Whether the predicate holds at the returned ``beta``.
    """
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter!r}")
    ends = predicate(np.stack([np.full(n_freqs, lo), np.full(n_freqs, hi)]))
    p_lo, p_hi = np.asarray(ends[0], bool), np.asarray(ends[1], bool)
    sat_end, unsat_end = (hi, lo) if true_above else (lo, hi)
    p_sat_end, p_unsat_end = (p_hi, p_lo) if true_above else (p_lo, p_hi)
    # already satisfied at the far end: take it (least effort / most robust side)
    sat = np.where(p_unsat_end, unsat_end, sat_end)
    unsat = np.full(n_freqs, float(unsat_end))
    active = p_sat_end & ~p_unsat_end
    log_sat, log_unsat = np.log(sat), np.log(unsat)
    for _ in range(n_iter):
        mid = 0.5 * (log_sat + log_unsat)
        ok = np.asarray(predicate(np.exp(mid)), bool)
        log_sat = np.where(active & ok, mid, log_sat)
        log_unsat = np.where(active & ~ok, mid, log_unsat)
    return np.exp(log_sat), p_sat_end | p_unsat_end
