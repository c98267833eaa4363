"""Separation of linear and harmonic impulse responses of a synchronized sweep.

For a synchronized sweep (see :mod:`calib.signals.sweep`) sin(n phi(t)) equals
the sweep advanced by ``L ln n``; a system ``y = sum_n h_n * x^n`` (Hammerstein
model) therefore deconvolves into impulse responses at ``t = -L ln n``
(Novák et al. 2010, 2015). For ``x = A sin(phi)`` the power expansion gives

    x^2 = A^2/2 - A^2/2 cos(2 phi),      x^3 = 3A^2/4 x - A^3/4 sin(3 phi),

so a static ``y = x + a2 x^2 + a3 x^3`` followed by a filter ``H`` yields a
linear IR ``(1 + 3/4 a3 A^2) h``, a 2nd-harmonic IR with magnitude
``a2 A / 2 |H(f)|`` (phase shifted by -pi/2, hence Hilbert-like) and a
3rd-harmonic IR with magnitude ``a3 A^2 / 4 |H(f)|`` at output frequency f.
Harmonic n is only measurable at output frequencies in ``[n f1, f2]`` (the
deconvolution divides by the sweep spectrum, which is zero above f2).

References: A. Novák, L. Simon, F. Kadlec, P. Lotton, "Nonlinear system
identification using exponential swept-sine signal", IEEE Trans. Instrum.
Meas. 59(8), 2220-2229 (2010); Novák, Simon, Lotton, JAES 63(10) (2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from calib.signals.sweep import Sweep
from calib.signals.windows import fade, window_ir

__all__ = [
    "HarmonicIRs",
    "harmonic_delays_s",
    "harmonic_length_samples",
    "extract",
    "separate",
    "thd_percent",
    "thd_bands_percent",
]


@dataclass(frozen=True, eq=False)
class HarmonicIRs:
    """Linear and harmonic IRs cut out of a circular IR.

    Attributes
    ----------
    linear : numpy.ndarray
        Linear IRs ``[..., ir_length]``; sample 0 = output instant.
    harmonics : numpy.ndarray
        Harmonic IRs ``[..., n_harmonics - 1, harmonic_length]`` for orders
        2..n_harmonics; index ``pre_samples`` is the harmonic's own time zero.
    orders : tuple of int
        Orders of the rows of ``harmonics`` (2, 3, ...).
    pre_samples : int
        Samples kept before each harmonic's time zero.
    sample_rate : float
        Sample rate in Hz.
    """

    linear: NDArray[np.float64]
    harmonics: NDArray[np.float64]
    orders: tuple[int, ...]
    pre_samples: int
    sample_rate: float


def harmonic_delays_s(rate_s: float, n_harmonics: int) -> NDArray[np.float64]:
    """Return the delays ``L ln n`` (s) of the harmonic IRs.

    Delays ``L ln n`` (s) for orders ``n = 1 .. n_harmonics``: the IR of
    harmonic n appears at ``-L ln n`` (the first entry, the linear IR, is 0).
    """
    if not rate_s > 0:
        raise ValueError(f"rate_s (L) must be > 0 s, got {rate_s!r}")
    if n_harmonics < 1:
        raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics!r}")
    return rate_s * np.log(np.arange(1, n_harmonics + 1))


def harmonic_length_samples(rate_s: float, n_harmonics: int, sample_rate: float, ir_length: int) -> int:
    """Return common window length of the harmonic IRs: ``min(ir_length, floor(L ln((N+1)/N) fs))``.

    The spacing between harmonics n and n+1, ``L ln((n+1)/n)``, shrinks with n,
    so the spacing after the highest order N bounds every window.
    """
    return int(min(ir_length, np.floor(rate_s * np.log1p(1.0 / n_harmonics) * sample_rate)))


def extract(
    ir_full: ArrayLike,
    rate_s: float,
    sample_rate: float,
    origins: ArrayLike,
    ir_length: int,
    n_harmonics: int = 3,
    pre_samples: int | None = None,
    fade_samples: int | None = None,
) -> HarmonicIRs:
    """Cut linear and harmonic IRs of several time origins out of circular IRs.

    Used by :func:`separate` (one origin, 0) and by MESM (one origin per source).

    Parameters
    ----------
    ir_full : array_like
        Circular IRs ``[..., n_fft]`` (e.g. from :func:`calib.signals.deconvolve.deconvolve`).
    rate_s : float
        Sweep rate parameter L in seconds.
    sample_rate : float
        Sample rate in Hz.
    origins : array_like of int
        Time origins in samples, ``[S]``.
    ir_length : int
        Length of the linear IRs.
    n_harmonics : int
        Highest harmonic order separated (1 = linear only).
    pre_samples : int, optional
        Samples kept before each harmonic's time zero (the even orders are
        Hilbert-like, two-sided); default ``harmonic_length // 8``.
    fade_samples : int, optional
        Half-Hann fade-out length at the end of each window; default a tenth of it.

    Returns
    -------
    HarmonicIRs
        ``linear [..., S, ir_length]``, ``harmonics [..., S, n_harmonics-1, harmonic_length]``.
    """
    h = np.asarray(ir_full, dtype=np.float64)
    if h.ndim == 0:
        raise ValueError("ir_full needs a samples axis (last), got a scalar")
    o = np.atleast_1d(np.asarray(origins))
    if o.ndim != 1 or not np.issubdtype(o.dtype, np.integer):
        raise ValueError(f"origins must be a 1-D array of integer samples, got {origins!r}")
    if ir_length <= 0:
        raise ValueError(f"ir_length must be > 0 samples, got {ir_length!r}")
    n_fft = h.shape[-1]
    delays = harmonic_delays_s(rate_s, n_harmonics) * sample_rate
    n_h = harmonic_length_samples(rate_s, n_harmonics, sample_rate, ir_length)
    pre = n_h // 8 if pre_samples is None else int(pre_samples)
    if not 0 <= pre < n_h:
        raise ValueError(f"pre_samples={pre_samples!r} must be in [0, {n_h}) (the harmonic window length)")
    span = int(o.max() - o.min()) + ir_length + int(np.ceil(delays[-1])) + pre
    if span > n_fft:
        raise ValueError(
            f"circular IR of {n_fft} samples is too short: linear IRs of {ir_length} samples at "
            f"origins {o.min()}..{o.max()} and harmonic {n_harmonics} at -{delays[-1]:.0f} need {span}"
        )
    k = np.arange(ir_length)
    linear = window_ir(h[..., (o[:, None] + k) % n_fft], ir_length, fade_samples)
    if n_harmonics == 1:
        return HarmonicIRs(linear, np.zeros(h.shape[:-1] + (o.size, 0, n_h)), (), pre, float(sample_rate))
    # Delay each order by L ln(n) fs (it sits at -L ln n) in the frequency
    # domain (exact circular shift), so its time zero falls on an integer sample.
    spec = scipy.fft.rfft(h, axis=-1)
    bins = np.arange(spec.shape[-1])
    idx = (o[:, None] - pre + np.arange(n_h)) % n_fft  # [S, n_h]
    rows = []
    for d in delays[1:]:  # loop over the few orders, not over bins
        shifted = scipy.fft.irfft(spec * np.exp(-2j * np.pi * bins * d / n_fft), n_fft, axis=-1)
        rows.append(shifted[..., idx])
    harm = np.stack(rows, axis=-2)  # [..., S, N-1, n_h]
    fade_out = n_h // 10 if fade_samples is None else min(int(fade_samples), n_h - pre // 2)
    harm = fade(harm, pre // 2, fade_out)
    return HarmonicIRs(linear, harm, tuple(range(2, n_harmonics + 1)), pre, float(sample_rate))


def separate(
    ir_full: ArrayLike,
    sweep: Sweep | float,
    ir_length: int,
    n_harmonics: int = 3,
    sample_rate: float | None = None,
    pre_samples: int | None = None,
    fade_samples: int | None = None,
) -> HarmonicIRs:
    """Separate the linear IR and the harmonic IRs of one synchronized sweep.

    Parameters
    ----------
    ir_full : array_like
        Circular IRs ``[..., n_fft]`` (time origin at sample 0).
    sweep : Sweep or float
        The sweep, or its rate parameter L in seconds (then ``sample_rate`` is required).
    ir_length : int
        Linear IR length; the linear IR keeps its time origin (propagation delay
        included) and gets a short half-Hann fade-out at the end.
    n_harmonics : int
        Highest harmonic order separated.
    sample_rate : float, optional
        Needed when ``sweep`` is a number; must match ``sweep.sample_rate`` otherwise.
    pre_samples, fade_samples : int, optional
        See :func:`extract`.

    Returns
    -------
    HarmonicIRs
        ``linear [..., ir_length]``, ``harmonics [..., n_harmonics-1, harmonic_length]``
        where each harmonic window is no longer than the spacing ``L ln((N+1)/N)``.
    """
    if isinstance(sweep, Sweep):
        if sample_rate is not None and float(sample_rate) != sweep.sample_rate:
            raise ValueError(f"sample_rate={sample_rate!r} differs from the sweep's {sweep.sample_rate:g} Hz")
        rate_s, fs = sweep.rate_s, sweep.sample_rate
    else:
        if sample_rate is None:
            raise ValueError("sample_rate is required when sweep is given as a rate parameter L")
        rate_s, fs = float(sweep), float(sample_rate)
    r = extract(ir_full, rate_s, fs, np.array([0]), ir_length, n_harmonics, pre_samples, fade_samples)
    return HarmonicIRs(r.linear[..., 0, :], r.harmonics[..., 0, :, :], r.orders, r.pre_samples, r.sample_rate)


def thd_percent(
    linear: ArrayLike,
    harmonics: ArrayLike,
    f_lo: float,
    f_hi: float,
    sample_rate: float,
    f_max_hz: float | None = None,
) -> NDArray[np.float64]:
    """Total harmonic distortion (%) over a band, from the separated IRs.

    For input frequency f, harmonic n appears at output frequency n f, so

        THD^2 = sum_n  sum_k w_k |H_n(n f_k)|^2  /  sum_k w_k |H_1(f_k)|^2,

    over the FFT bins ``f_k`` in ``[f_lo, f_hi]`` for which ``n f_k <= f_max_hz``
    (harmonics measurable only below the sweep's f2) and below Nyquist, with
    weights ``w_k = 1 / f_k`` (equal weight per octave). It is the power ratio
    of the harmonics to the fundamental averaged over the band, exact for a
    frequency-independent THD; orders whose bins are all excluded contribute 0.

    Parameters
    ----------
    linear : array_like
        Linear IRs ``[..., N1]``.
    harmonics : array_like
        Harmonic IRs ``[..., n_orders, Nh]`` of orders 2, 3, ... (as from :func:`separate`).
    f_lo, f_hi : float
        Band of input frequencies in Hz, ``0 < f_lo < f_hi``.
    sample_rate : float
        Sample rate in Hz.
    f_max_hz : float, optional
        Highest output frequency at which the harmonic IRs are valid (the
        deconvolution band's upper edge); default Nyquist.

    Returns
    -------
    numpy.ndarray
        THD in percent, shape ``[...]``.
    """
    if not 0 < f_lo < f_hi:
        raise ValueError(f"need 0 < f_lo < f_hi, got f_lo={f_lo!r}, f_hi={f_hi!r}")
    thd = thd_bands_percent(linear, harmonics, [f_lo], [f_hi], sample_rate, f_max_hz)[..., 0]
    if np.isnan(thd).any():
        _, f = _frequencies(np.asarray(linear), np.asarray(harmonics), sample_rate)
        if not np.any((f >= f_lo) & (f <= f_hi)):
            raise ValueError(f"no frequency bin in [{f_lo:g}, {f_hi:g}] Hz")
        f_max = _f_max(sample_rate, f_max_hz)
        raise ValueError(
            f"no input frequency in [{f_lo:g}, {f_hi:g}] Hz has its 2nd harmonic below {f_max:g} Hz"
        )
    return thd


def _frequencies(linear: np.ndarray, harmonics: np.ndarray, sample_rate: float) -> tuple[int, NDArray[np.float64]]:
    """FFT length and bin frequencies the THD is evaluated on (twice the longest IR, a fast length)."""
    n_fft = scipy.fft.next_fast_len(2 * max(linear.shape[-1], harmonics.shape[-1]), real=True)
    return n_fft, scipy.fft.rfftfreq(n_fft, 1.0 / sample_rate)


def _f_max(sample_rate: float, f_max_hz: float | None) -> float:
    """Highest output frequency the harmonic IRs hold: ``f_max_hz``, at most Nyquist."""
    return sample_rate / 2 if f_max_hz is None else min(float(f_max_hz), sample_rate / 2)


def thd_bands_percent(
    linear: ArrayLike,
    harmonics: ArrayLike,
    lower_hz: ArrayLike,
    upper_hz: ArrayLike,
    sample_rate: float,
    f_max_hz: float | None = None,
) -> NDArray[np.float64]:
    """Total harmonic distortion (%) against the excitation frequency, per band.

    The synchronized sweep's harmonic IR of order n, deconvolved by the sweep,
    has at *output* frequency ``nu`` the spectrum ``H_n(nu)``: the n-th harmonic
    produced while the sweep passed the *excitation* frequency ``nu / n`` (the
    time-advanced copy ``x(t + L ln n)`` of the sweep, Farina 2000; Novák et al.
    2010, eq. 13), divided by the sweep's spectrum at ``nu``, which for an
    exponential sweep equals the magnitude of the excitation at ``nu`` itself.
    Mapped to the excitation frequency f,

        THD(f) = sqrt( sum_n |H_n(n f)|^2 ) / |H_1(f)|,

    the ratio of the RMS of the harmonics to the fundamental's amplitude at
    the receiver (for ``y = x + a2 x^2 + a3 x^3`` at amplitude A:
    ``sqrt((a2 A/2)^2 + (a3 A^2/4)^2) / (1 + 3/4 a3 A^2)``). Per band b the
    powers are averaged over the FFT bins ``f_k`` in ``[lower_b, upper_b]`` as in
    :func:`thd_percent` (weights ``1 / f_k``; an order counts only at bins where
    ``n f_k <= f_max_hz`` and below Nyquist).

    Parameters
    ----------
    linear : array_like
        Linear IRs ``[..., N1]``.
    harmonics : array_like
        Harmonic IRs ``[..., n_orders, Nh]`` of orders 2, 3, ...
    lower_hz, upper_hz : array_like
        Band edges ``[B]`` (Hz) of the excitation frequency, ``0 < lower < upper``.
    sample_rate : float
        Sample rate in Hz.
    f_max_hz : float, optional
        Highest output frequency at which the harmonic IRs are valid; default Nyquist.

    Returns
    -------
    numpy.ndarray
        THD in percent ``[..., B]``; NaN in a band without an FFT bin or whose
        2nd harmonic lies above ``f_max_hz`` everywhere (not measurable there).
    """
    h1 = np.asarray(linear, dtype=np.float64)
    hn = np.asarray(harmonics, dtype=np.float64)
    if h1.ndim == 0 or hn.ndim != h1.ndim + 1 or hn.shape[:-2] != h1.shape[:-1]:
        raise ValueError(
            f"harmonics must be [..., n_orders, Nh] with the leading shape of linear [..., N1]; "
            f"got linear {h1.shape}, harmonics {hn.shape}"
        )
    lo = np.atleast_1d(np.asarray(lower_hz, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(upper_hz, dtype=np.float64))
    if lo.ndim != 1 or lo.shape != hi.shape or not np.all((lo > 0) & (lo < hi)):
        raise ValueError(f"band edges must be 1-D, equally long, with 0 < lower < upper; got {lo!r}, {hi!r}")
    f_max = _f_max(sample_rate, f_max_hz)
    n_fft, f = _frequencies(h1, hn, sample_rate)
    # Bins [k0, k1) of each band; the sums over a band are differences of cumulative sums (bands may overlap).
    k0 = np.searchsorted(f, lo, side="left")
    k1 = np.searchsorted(f, hi, side="right")
    k = np.arange(int(k0.min()), int(max(k1.max(), k0.min() + 1)))
    k = k[k < f.size]
    orders = np.arange(2, hn.shape[-2] + 2)[:, None]
    valid = (orders * f[k] <= f_max) & (orders * k < f.size)  # [n_orders, K]
    w = 1.0 / np.maximum(f[k], f[1])  # a 0 Hz bin would weigh infinitely, bands start above it
    p1 = np.abs(scipy.fft.rfft(h1, n_fft, axis=-1)[..., k]) ** 2  # [..., K]
    pn = np.abs(scipy.fft.rfft(hn, n_fft, axis=-1)) ** 2  # [..., n_orders, F]
    pn = np.take_along_axis(pn, np.broadcast_to(np.minimum(orders * k, f.size - 1), pn.shape[:-1] + (k.size,)), -1)
    a, b = np.clip(k0 - k[0], 0, k.size), np.clip(k1 - k[0], 0, k.size)

    def band_sums(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, axis=-1)], axis=-1)
        return c[..., b] - c[..., a]

    num = band_sums(np.sum(pn * (w * valid), axis=-2))  # harmonic power per band, orders summed
    den = band_sums(p1 * w)  # [..., B]
    ratio = np.divide(num, den, out=np.zeros_like(den), where=den > 0)
    thd = 100.0 * np.sqrt(ratio)
    measurable = (b > a) & ((band_sums(valid[0].astype(np.float64)) > 0) if hn.shape[-2] else True)
    return np.where(measurable, thd, np.nan)
