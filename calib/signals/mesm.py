"""Multiple exponential sweep method (MESM): several sources, one capture.

Every source plays the same synchronized sweep, source k delayed by
``o_k = k Delta`` samples, and the single capture is deconvolved with the
undelayed sweep (the loopback plays source 0's sweep). Source k's linear IR
then appears at ``o_k`` and its harmonic n at ``o_k - L ln(n) fs``
(Majdak et al. 2007, who combine *overlapping* - sweeps starting before the
previous one ended - with *interleaving* - placing IRs in the gaps between
another source's harmonic IRs).

Derivation of the offset. On the IR time axis (samples) one source occupies
the footprint

    I_1 = [-g, l),   I_n = [-d_n - g, -d_n + l)   (n = 2 .. N),   d_n = L ln(n) fs,

with ``l`` the IR length and ``g`` a guard for pre-ringing (the even
harmonic IRs are two-sided). Sources j and j + d (d = 1 .. S-1) do not overlap
iff for every pair of orders n, m the shifted interval ``I_n + d Delta``
misses ``I_m``, i.e.

    d Delta  not in  (a_m - b_n,  b_m - a_n)      for all n, m in 1..N, d in 1..S-1,

where ``I_n = [a_n, b_n)``. :func:`mesm_offsets` returns the smallest integer
``Delta`` satisfying all these inequalities. The smallest candidates are the
right ends ``(b_m - a_n) / d`` of forbidden intervals; ``Delta >= max(b_m - a_n)
= l + g + d_N`` (plain overlapping, source k's harmonics between source k-1's
linear IR and its own) is always feasible, and a smaller interleaved Delta is
taken when the gaps between harmonics allow it. The total duration is
``T + (S - 1) Delta + tail`` against ``S (T + tail)`` for sequential sweeps.
Harmonics above order N are assumed to be below the noise floor.

Clearing the linear IRs only (``clear="linear"``, :func:`mesm_offsets`). The
product needs clean *linear* IRs; harmonic IRs of different sources may share
samples (THD then comes from a dedicated short sweep per source). Only the
pairs (n, m) with n = 1 or m = 1 constrain: a source's linear IR
``I_1 + o_k`` must miss every footprint ``I_m + o_j`` of every other source
j, for any offsets ``o`` (no longer ``k Delta``). The allowed differences
``o_k - o_j`` then form a union of intervals, which for long sweeps has a
gap between ``l + g`` and ``L ln 2 fs - l - g``: several sources fit between
one source's linear IR and its 2nd harmonic. :func:`mesm_offsets` finds the
offsets of least span by a depth-first search over left ends of allowed
intervals (an optimal set can be pushed left until every offset touches one).

Contamination bound (:func:`contamination_bound_db`). With the footprints
clear, what of source k's harmonic n still enters source j's linear window is
the part of that harmonic IR beyond its footprint ``[-g, l)``. In the
Hammerstein model harmonic n is ``G_n`` applied to a power of the input and
propagates through the same acoustic path as the linear IR, so its envelope
decays like source k's linear IR. Writing ``E_kn`` for its energy and
``rho_k`` for the fraction of source k's linear-IR energy beyond ``l``, the
leaked energy is at most ``E_kn rho_k`` (the window of j sees at most the
whole tail). ``rho_k`` is extrapolated from the window's last two eighths,
energies ``e_1`` (earlier) and ``e_2`` (last), assuming an exponential decay:
the tail beyond ``l`` is the geometric series ``e_2 (q + q^2 + ...) = e_2 q / (1 - q)``
with ``q = e_2 / e_1`` (capped at 0.9). Noise in the last eighths only raises
``q``, so the estimate stays an upper bound. The bound relative to source j's
linear energy at the same receiver,

    c_j = sum_{k != j} sum_{n >= 1} E_kn rho_k / E_j1,

is what :func:`contamination_bound_db` returns (dB). The sum includes n = 1:
a neighbour's own linear tail beyond its window enters the next window the
same way (the offsets keep only the windows apart). Orders above N are
taken as zero (the same assumption as above).

Reference: P. Majdak, P. Balazs, B. Laback, "Multiple exponential sweep
method for fast measurement of head-related transfer functions", J. Audio
Eng. Soc. 55(7/8), 623-637 (2007).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calib.signals.harmonics import HarmonicIRs, extract, harmonic_delays_s, harmonic_length_samples
from calib.signals.overlap_save import convolve_fir_matrix
from calib.signals.sweep import Sweep

__all__ = ["mesm_offsets", "mesm_excitation", "excitation_block", "mesm_split", "contamination_bound_db"]

CLEAR_MODES = ("all", "linear")
TAIL_Q_MAX = 0.9  # decay ratio cap per eighth of the window in the tail extrapolation


def _footprint(rate_s: float, ir_length: int, n_harmonics: int, sample_rate: float, guard: int):
    """Interval ends ``a_n, b_n`` (samples) of one source's linear and harmonic IRs."""
    d = harmonic_delays_s(rate_s, n_harmonics) * sample_rate
    return -np.ceil(d) - guard, -np.floor(d) + ir_length


def mesm_offsets(
    rate_s: float,
    ir_length_s: float,
    n_harmonics: int,
    n_sources: int,
    sample_rate: float,
    guard_samples: int | None = None,
    clear: str = "all",
) -> NDArray[np.int64]:
    """Sweep start offsets (samples) of the sources, ``[0, Delta, 2 Delta, ...]`` or optimized.

    Parameters
    ----------
    rate_s : float
        Sweep rate parameter L (s).
    ir_length_s : float
        Length of the linear IR to keep per source (s); also used as the extent
        of each harmonic IR.
    n_harmonics : int
        Highest harmonic order kept clear of the other sources (1 = linear only).
    n_sources : int
        Number of sources S.
    sample_rate : float
        Sample rate in Hz.
    guard_samples : int, optional
        Guard g before every IR (pre-ringing); default the ``pre_samples``
        default of :func:`calib.signals.harmonics.extract`.
    clear : {"all", "linear"}
        ``"all"``: every footprint clear of every other source's (uniform
        ``k Delta``); ``"linear"``: only the linear IRs clear of everything
        else (offsets of least span, not uniform; module docstring).

    Returns
    -------
    numpy.ndarray
        Ascending offsets (int64), the first 0: ``k * Delta`` for ``"all"``,
        Delta the smallest offset that satisfies the inequalities in the module
        docstring; the least-span set for ``"linear"``.
    """
    if clear not in CLEAR_MODES:
        raise ValueError(f"clear must be one of {CLEAR_MODES}, got {clear!r}")
    if n_sources < 1:
        raise ValueError(f"n_sources must be >= 1, got {n_sources!r}")
    if not ir_length_s > 0:
        raise ValueError(f"ir_length_s must be > 0 s, got {ir_length_s!r}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    ir_length = int(np.ceil(ir_length_s * sample_rate))
    if guard_samples is None:
        guard_samples = harmonic_length_samples(rate_s, n_harmonics, sample_rate, ir_length) // 8
    if guard_samples < 0:
        raise ValueError(f"guard_samples must be >= 0, got {guard_samples!r}")
    a, b = _footprint(rate_s, ir_length, n_harmonics, sample_rate, guard_samples)
    lo = (a[None, :] - b[:, None]).ravel()  # forbidden (lo, hi) for shift n -> m
    hi = (b[None, :] - a[:, None]).ravel()
    if n_sources == 1:
        return np.zeros(1, dtype=np.int64)
    if clear == "linear":
        linear_pair = ((np.arange(a.size)[None, :] == 0) | (np.arange(a.size)[:, None] == 0)).ravel()
        return _least_span_offsets(lo[linear_pair], hi[linear_pair], n_sources)
    d = np.arange(1, n_sources)
    cand = np.unique(np.ceil(hi[hi > 0][:, None] / d[None, :]))
    cand = cand[cand >= 1]
    shifts = cand[:, None] * d[None, :]  # [C, S-1]
    clash = (shifts[..., None] > lo) & (shifts[..., None] < hi)  # [C, S-1, N*N]
    ok = ~clash.any(axis=(1, 2))
    delta = int(cand[np.argmax(ok)])  # the largest hi is always feasible
    return delta * np.arange(n_sources, dtype=np.int64)


def _least_span_offsets(lo: np.ndarray, hi: np.ndarray, n_sources: int) -> NDArray[np.int64]:
    """Ascending offsets from 0 of least span whose pairwise differences miss every ``(lo, hi)``.

    A difference ``x = o_k - o_j > 0`` is forbidden if ``lo < x < hi`` or
    ``lo < -x < hi`` (the pair seen from either source).
    """
    lo_s = np.concatenate([lo, -hi])  # fold the negative side onto x > 0
    hi_s = np.concatenate([hi, -lo])
    keep = hi_s > 0
    lo_s, hi_s = lo_s[keep], hi_s[keep]
    starts = np.unique(np.ceil(hi_s)).astype(np.int64)  # left ends of the allowed intervals

    def allowed(x: np.ndarray) -> np.ndarray:
        return ~np.any((x[:, None] > lo_s) & (x[:, None] < hi_s), axis=1) & (x > 0)

    uniform = int(starts.max())  # every difference a multiple of the largest forbidden end: always allowed
    best_end = uniform * (n_sources - 1)
    best = uniform * np.arange(n_sources, dtype=np.int64)

    def search(placed: list[int]) -> None:
        nonlocal best_end, best
        if len(placed) == n_sources:
            if placed[-1] < best_end:
                best_end, best = placed[-1], np.array(placed, dtype=np.int64)
            return
        cand = np.unique((np.asarray(placed)[:, None] + starts[None, :]).ravel())
        cand = cand[(cand > placed[-1]) & (cand < best_end)]
        for c in cand:
            if allowed(c - np.asarray(placed)).all():
                search(placed + [int(c)])

    search([0])
    return best


def contamination_bound_db(linear: ArrayLike, harmonics: ArrayLike) -> NDArray[np.float64]:
    """Upper bound of the energy other sources' harmonic and linear tails leak into each linear IR, dB re its energy.

    Parameters
    ----------
    linear : array_like
        Linear IRs ``[..., S, l]`` of one MESM capture (one receiver per leading index).
    harmonics : array_like
        Harmonic IRs ``[..., S, N-1, h]`` cut at every source's harmonic slots.

    Returns
    -------
    numpy.ndarray
        ``c_j`` of the module docstring in dB, ``[..., S]`` (``-inf`` for one source).
    """
    lin = np.asarray(linear, dtype=np.float64)
    harm = np.asarray(harmonics, dtype=np.float64)
    n = lin.shape[-1]
    eighth = max(n // 8, 1)
    e1 = np.sum(lin[..., n - 2 * eighth : n - eighth] ** 2, axis=-1)
    e2 = np.sum(lin[..., n - eighth :] ** 2, axis=-1)
    q = np.minimum(e2 / np.maximum(e1, 1e-300), TAIL_Q_MAX)
    energy = np.maximum(np.sum(lin**2, axis=-1), 1e-300)
    rho = e2 * q / (1.0 - q) / energy  # [..., S]
    leak = (np.sum(harm**2, axis=(-2, -1)) + energy) * rho  # what each source can leak, [..., S]
    others = np.sum(leak, axis=-1, keepdims=True) - leak
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(others / energy)


def _offsets_array(n_sources: int, offset_samples: int | ArrayLike) -> NDArray[np.int64]:
    off = np.asarray(offset_samples)
    if off.ndim == 0:
        off = int(off) * np.arange(n_sources)
    if off.shape != (n_sources,) or not np.issubdtype(off.dtype, np.integer) or np.any(off < 0):
        raise ValueError(
            f"offset_samples must be an int >= 0 or {n_sources} non-negative integers, got {offset_samples!r}"
        )
    return off.astype(np.int64)


def mesm_excitation(
    sweep: Sweep, n_sources: int, offset_samples: int | ArrayLike, tail_samples: int = 0
) -> NDArray[np.float64]:
    """Driver signals of a MESM capture, ``[n_sources, N_total]``.

    Row k is the sweep starting at sample ``offsets[k]`` (``k * offset_samples``
    for a scalar); ``N_total = n_sweep + max(offsets) + tail_samples``. Row 0 is
    also what the loopback output must play (the deconvolution reference).
    """
    if n_sources < 1:
        raise ValueError(f"n_sources must be >= 1, got {n_sources!r}")
    if tail_samples < 0:
        raise ValueError(f"tail_samples must be >= 0, got {tail_samples!r}")
    off = _offsets_array(n_sources, offset_samples)
    n = sweep.n_samples
    out = np.zeros((n_sources, n + int(off.max()) + tail_samples))
    rows = np.arange(n_sources)[:, None]
    out[rows, off[:, None] + np.arange(n)] = sweep.signal
    return out


def excitation_block(excitation: ArrayLike, feeds: ArrayLike) -> NDArray[np.float64]:
    """Output channels playing ``excitation`` through ``feeds``: ``out_c = sum_k excitation_k * feeds[k, c]``.

    Parameters
    ----------
    excitation : array_like
        Source signals ``[K, N]`` (from :func:`mesm_excitation`).
    feeds : array_like
        FIR feeds ``[K, n_outputs, T]`` from each source to each output.

    Returns
    -------
    numpy.ndarray
        ``[n_outputs, N]``, the convolution truncated to N samples. One-tap
        feeds (a driver per source, the characterize plan) are a gain matrix:
        one matrix product, exact; longer feeds (a calibration's filters, the
        verify plan) go through overlap-save with the sum over the sources
        taken per bin (K forward and n_outputs inverse FFTs per block).
    """
    x = np.asarray(excitation, dtype=np.float64)
    h = np.asarray(feeds, dtype=np.float64)
    if x.ndim != 2 or h.ndim != 3 or h.shape[0] != x.shape[0]:
        raise ValueError(f"excitation [K, N] and feeds [K, n_outputs, T] must share K, got {x.shape} and {h.shape}")
    if h.shape[-1] == 1:
        return h[..., 0].T @ x
    return convolve_fir_matrix(x, h, x.shape[-1])


def mesm_split(
    ir_full: ArrayLike,
    offsets: ArrayLike,
    ir_length: int,
    sweep: Sweep,
    n_harmonics: int = 3,
    pre_samples: int | None = None,
    fade_samples: int | None = None,
) -> HarmonicIRs:
    """Per-source linear and harmonic IRs from the circular IR of one MESM capture.

    Parameters
    ----------
    ir_full : array_like
        Circular IRs ``[..., n_fft]`` deconvolved against source 0's sweep.
    offsets : array_like of int
        Source offsets ``[S]`` in samples (from :func:`mesm_offsets`).
    ir_length : int
        Linear IR length in samples.
    sweep : Sweep
        The sweep every source played.
    n_harmonics, pre_samples, fade_samples
        See :func:`calib.signals.harmonics.extract`.

    Returns
    -------
    HarmonicIRs
        ``linear [..., S, ir_length]`` (each with its own origin at sample 0) and
        ``harmonics [..., S, n_harmonics - 1, harmonic_length]``.
    """
    o = np.asarray(offsets)
    return extract(
        ir_full, sweep.rate_s, sweep.sample_rate, o, ir_length, n_harmonics, pre_samples, fade_samples
    )
