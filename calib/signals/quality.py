"""Quality checks of a capture: SNR, peak level, clipping, latency."""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

__all__ = ["noise_window", "noise_band_power", "snr_db", "peak_dbfs", "is_clipped", "estimate_latency_samples"]


def noise_window(
    n_fft: int,
    signal_end: int,
    rate_s: float,
    sample_rate: float,
    n_harmonics: int = 5,
    guard_samples: int | None = None,
) -> tuple[int, int]:
    """Noise-only region ``[start, stop)`` of a circular sweep IR.

    Between the end of the (last) linear IR and the highest-order harmonic IR
    considered, which sits at ``n_fft - L ln(n_harmonics) fs``, the circular IR
    holds only noise, the decaying tail of the linear IR and harmonics of
    orders above ``n_harmonics`` (weak for a loudspeaker; if present they make
    the SNR estimate conservative). A guard is left on both sides.

    Parameters
    ----------
    n_fft : int
        Length of the circular IR.
    signal_end : int
        End of the linear IR window (for MESM the end of the last source's).
    rate_s : float
        Sweep rate parameter L (s).
    sample_rate : float
        Sample rate in Hz.
    n_harmonics : int
        Highest harmonic order that may carry energy above the noise.
    guard_samples : int, optional
        Guard on each side; default an eighth of the free gap.

    Returns
    -------
    tuple of int
        ``(start, stop)`` sample indices.
    """
    if n_harmonics < 1:
        raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics!r}")
    harmonic_start = n_fft - int(np.ceil(rate_s * np.log(n_harmonics) * sample_rate))
    gap = harmonic_start - signal_end
    guard = gap // 8 if guard_samples is None else int(guard_samples)
    start, stop = signal_end + guard, harmonic_start - guard
    if gap <= 0 or stop - start < 16:
        raise ValueError(
            f"no noise-only region: linear IR ends at {signal_end}, harmonic {n_harmonics} starts at "
            f"{harmonic_start} of {n_fft} samples (guard {guard}); record a longer tail"
        )
    return start, stop


def _irs_and_noise_window(ir_full: ArrayLike, noise_window: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the IRs as float64 and the noise window, checked to lie inside their samples axis."""
    h = np.asarray(ir_full, dtype=np.float64)
    if h.ndim == 0:
        raise ValueError("ir_full needs a samples axis (last), got a scalar")
    start, stop = (int(v) for v in noise_window)
    if not 0 <= start < stop <= h.shape[-1]:
        raise ValueError(f"noise_window={noise_window!r} is not inside [0, {h.shape[-1]}]")
    return h, (start, stop)


def snr_db(
    ir_full: ArrayLike,
    ir_length: int,
    noise_window: tuple[int, int],
    signal_start: int | ArrayLike = 0,
) -> NDArray[np.float64]:
    """Signal-to-noise ratio (dB) of impulse responses.

    The noise power per sample ``P_n`` is the mean square of ``ir_full`` over the
    noise-only window (see :func:`noise_window`); deconvolution noise is
    stationary over the circular IR, so the same ``P_n`` holds in the IR window.
    With ``E`` the energy in the linear IR window of ``l = ir_length`` samples,

        SNR = 10 log10((E - l P_n) / (l P_n)),

    i.e. the IR energy over the noise energy in the same window (floored at
    -100 dB when the window holds no more than noise).

    Parameters
    ----------
    ir_full : array_like
        Circular IRs ``[..., n_fft]``.
    ir_length : int
        Linear IR window length.
    noise_window : tuple of int
        ``(start, stop)`` of the noise-only region.
    signal_start : int or array_like of int
        Start of the IR window; an array ``[S]`` (MESM sources) gives ``[..., S]``.

    Returns
    -------
    numpy.ndarray
        SNR in dB, ``[...]`` or ``[..., S]``.
    """
    h, (start, stop) = _irs_and_noise_window(ir_full, noise_window)
    n = h.shape[-1]
    if not 0 < ir_length <= n:
        raise ValueError(f"ir_length must be in (0, {n}], got {ir_length!r}")
    s0 = np.asarray(signal_start)
    idx = (s0[..., None] + np.arange(ir_length)) % n
    energy = np.sum(h[..., idx] ** 2, axis=-1)
    p_noise = np.mean(h[..., start:stop] ** 2, axis=-1)
    if s0.ndim:
        p_noise = p_noise[..., None]
    noise = ir_length * p_noise
    safe = np.where(noise > 0, noise, 1.0)
    ratio = np.where(noise > 0, (energy - noise) / safe, np.where(energy > 0, np.inf, 0.0))
    return 10.0 * np.log10(np.maximum(ratio, 1e-10))


def noise_band_power(
    ir_full: ArrayLike,
    noise_window: tuple[int, int],
    reference_power: ArrayLike,
    n_recorded: int,
    lower_hz: ArrayLike,
    upper_hz: ArrayLike,
    sample_rate: float,
) -> NDArray[np.float64]:
    """Mean-square level of the recorded background noise per band, from the IR's noise window.

    The recorded noise ``n`` (``n_recorded`` samples, zero-padded to the circular
    period ``n_fft``) reaches the circular IR as ``IDFT(N W)`` with ``W ~ 1/X``
    the inverse of the reference in the deconvolution band. For stationary noise
    of one-sided PSD ``S_n`` the noise window's PSD is
    ``P_h(f) = S_n(f) |W(f)|^2 n_recorded / n_fft``, hence

        S_n(f) = P_h(f) |X(f)|^2 n_fft / n_recorded,

    (the zero padding's missing noise spreads evenly only when the padding is
    short against the noise window: for frequency f it leaves a gap at the IR
    time where the sweep's inverse maps it; the engine pads to the next fast
    length only), and the band's mean square ``sum_k S_n(f_k) df`` over the bins in
    ``[lower, upper)``. ``P_h`` is a Hann-windowed periodogram of the whole
    window (:func:`scipy.signal.welch`, one segment, cut to a fast FFT length); the result is in the
    recording's units squared (FS^2: a full-scale sine is 0.5).

    Parameters
    ----------
    ir_full : array_like
        Circular IRs ``[..., n_fft]``.
    noise_window : tuple of int
        ``(start, stop)`` from :func:`noise_window`.
    reference_power : array_like
        ``|X|^2``, the squared rfft of the deconvolution's reference at ``n_fft``,
        ``[n_fft // 2 + 1]``.
    n_recorded : int
        Samples of the recording before zero padding to ``n_fft``.
    lower_hz, upper_hz : array_like
        Band edges ``[B]`` in Hz; every band must lie in the deconvolution band
        (outside it ``W`` is regularized away and the noise cannot be recovered).
    sample_rate : float
        Sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        Mean square per band ``[..., B]``; NaN for a band without a periodogram bin.
    """
    h, (start, stop) = _irs_and_noise_window(ir_full, noise_window)
    n_fft = h.shape[-1]
    x2 = np.asarray(reference_power, dtype=np.float64)
    if x2.shape != (n_fft // 2 + 1,):
        raise ValueError(f"reference_power must be the rfft power at n_fft={n_fft}: [{n_fft // 2 + 1}], got {x2.shape}")
    if not 0 < n_recorded <= n_fft:
        raise ValueError(f"n_recorded must be in (0, {n_fft}], got {n_recorded!r}")
    lo = np.atleast_1d(np.asarray(lower_hz, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(upper_hz, dtype=np.float64))
    if lo.ndim != 1 or lo.shape != hi.shape or not np.all((lo > 0) & (lo < hi)):
        raise ValueError(f"band edges must be 1-D, equally long, with 0 < lower < upper; got {lo!r}, {hi!r}")
    segment = h[..., start : start + scipy.fft.prev_fast_len(stop - start, real=True)]  # a fast FFT length
    from scipy.signal import welch  # on first use: see calib.signals (import cost)

    freqs, p_h = welch(segment, sample_rate, window="hann", nperseg=segment.shape[-1], axis=-1)
    # |X|^2 averaged over each periodogram bin's width: the sweep spectrum ripples on the finer n_fft grid
    grid = scipy.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    df = freqs[1] - freqs[0]
    cumulative = np.concatenate([[0.0], np.cumsum(x2)])
    edges = np.asarray(np.searchsorted(grid, np.r_[freqs - df / 2, freqs[-1] + df / 2]), dtype=np.int64)
    x2_bin = (cumulative[edges[1:]] - cumulative[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)
    s_n = p_h * x2_bin * (n_fft / n_recorded)
    # bins [a, b) of each band, summed as differences of a cumulative sum
    a, b = np.searchsorted(freqs, lo, side="left"), np.searchsorted(freqs, hi, side="left")
    c = np.concatenate([np.zeros(s_n.shape[:-1] + (1,)), np.cumsum(s_n, axis=-1)], axis=-1)
    power = (c[..., b] - c[..., a]) * df
    return np.where(b > a, power, np.nan)


def peak_dbfs(x: ArrayLike) -> NDArray[np.float64]:
    """Peak level ``20 log10(max |x|)`` in dBFS over the last axis (-inf for silence)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"x needs a non-empty samples axis (last), got shape {a.shape}")
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.max(np.abs(a), axis=-1))


def is_clipped(x: ArrayLike, threshold: float = 0.999, min_run: int = 3) -> NDArray[np.bool_]:
    """Return True where at least ``min_run`` consecutive samples reach ``|x| >= threshold``.

    A clipping converter holds full scale for several samples; a single sample
    near full scale is a legitimate peak, hence the run length.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"x needs a non-empty samples axis (last), got shape {a.shape}")
    if min_run < 1:
        raise ValueError(f"min_run must be >= 1, got {min_run!r}")
    if not 0 < threshold:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    hot = (np.abs(a) >= threshold).astype(np.int64)
    if a.shape[-1] < min_run:
        return np.zeros(a.shape[:-1], dtype=bool)
    c = np.concatenate([np.zeros(a.shape[:-1] + (1,), dtype=np.int64), np.cumsum(hot, axis=-1)], axis=-1)
    runs = c[..., min_run:] - c[..., :-min_run]  # number of hot samples in each window
    return np.any(runs == min_run, axis=-1)


def estimate_latency_samples(loopback_recording: ArrayLike, reference_signal: ArrayLike) -> NDArray[np.int64]:
    """Integer latency of a recording relative to the played signal.

    The lag ``>= 0`` maximizing the magnitude of the cross-correlation
    ``sum_t rec[t + lag] ref[t]`` (computed by FFT, no wrap-around).

    Parameters
    ----------
    loopback_recording : array_like
        Recorded loopback ``[..., N]``.
    reference_signal : array_like
        Played signal ``[M]``, ``M <= N``.

    Returns
    -------
    numpy.ndarray
        Latency in samples, int64, shape ``[...]`` (a 0-d array for one channel).
    """
    y = np.asarray(loopback_recording, dtype=np.float64)
    x = np.asarray(reference_signal, dtype=np.float64)
    if y.ndim == 0 or x.ndim != 1:
        raise ValueError(
            f"need loopback_recording [..., N] and a 1-D reference_signal, got {y.shape} and {x.shape}"
        )
    if x.size == 0 or x.size > y.shape[-1]:
        raise ValueError(f"reference_signal has {x.size} samples; it must be non-empty and <= {y.shape[-1]}")
    n = scipy.fft.next_fast_len(y.shape[-1] + x.size - 1, real=True)
    xc = scipy.fft.irfft(scipy.fft.rfft(y, n, axis=-1) * np.conj(scipy.fft.rfft(x, n)), n, axis=-1)
    return np.argmax(np.abs(xc[..., : y.shape[-1]]), axis=-1).astype(np.int64)
