"""Deconvolution of sweep recordings into circular impulse responses.

The impulse response is the regularized spectral division (Kirkeby et al. 1998)

    H(f) = Y(f) X*(f) / (|X(f)|^2 + eps(f)),
    eps(f) = beta(f) max_{f in band} |X(f)|^2,

with ``beta(f) = beta_in`` inside ``[f_lo, f_hi]`` (numerical safety only, the
in-band bias is ``eps/|X|^2``), ``beta_out`` outside, and a raised-cosine
transition on a log-frequency axis just outside the band. Where the sweep has no
energy, ``H -> Y X* / eps -> 0`` instead of amplifying noise.

With the recorded loopback channel as ``X`` the interface response and the
playrec latency appear in both ``Y`` and ``X`` and cancel, so the IR time origin
is the instant the signal leaves the output. The result is circular (period
``n_fft``): the harmonic IRs of a synchronized sweep lie at negative times,
i.e. wrapped to the end of the array.

Reference: O. Kirkeby, P. A. Nelson, H. Hamada, F. Orduna-Bustamante, "Fast
deconvolution of multichannel systems using regularization", IEEE Trans. Speech
Audio Process. 6(2), 189-194 (1998).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from calib.signals.sweep import Sweep

__all__ = ["band_weight", "regularized_inverse", "deconvolve", "deconvolve_with_sweep"]


def band_weight(
    freqs_hz: ArrayLike, f_lo: float, f_hi: float, transition_octaves: float = 1.0
) -> NDArray[np.float64]:
    """Return the band weight: 1 in the band, raised-cosine skirts, 0 beyond.

    Weight 1 inside ``[f_lo, f_hi]``, a raised-cosine (log-frequency) skirt
    ``transition_octaves`` wide on each side, 0 beyond. ``f_lo = 0`` means no low edge.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    if transition_octaves <= 0:
        return ((f >= f_lo) & (f <= f_hi)).astype(np.float64)
    with np.errstate(divide="ignore"):
        below = np.log2(f_lo / f) / transition_octaves if f_lo > 0 else np.full_like(f, -1.0)
        above = np.log2(f / f_hi) / transition_octaves
    u = np.clip(np.maximum(below, above), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * u))


def regularized_inverse(
    spectrum: ArrayLike,
    freqs_hz: ArrayLike,
    f_lo: float,
    f_hi: float,
    beta_in: float = 1e-8,
    beta_out: float = 1.0,
    transition_octaves: float = 1.0,
) -> NDArray[np.complex128]:
    """Kirkeby-regularized inverse ``X* / (|X|^2 + eps(f))`` of ``spectrum [..., F]``.

    ``eps(f) = beta(f) max_band |X|^2`` per leading index; see the module docstring.
    """
    X = np.asarray(spectrum, dtype=np.complex128)
    f = np.asarray(freqs_hz, dtype=np.float64)
    w = band_weight(f, f_lo, f_hi, transition_octaves)
    inband = (f >= f_lo) & (f <= f_hi)
    if not np.any(inband):
        raise ValueError(f"no frequency bin lies in the band [{f_lo:g}, {f_hi:g}] Hz; use a longer n_fft")
    power = np.abs(X) ** 2
    scale = np.max(power[..., inband], axis=-1, keepdims=True)
    if np.any(scale <= 0):
        raise ValueError("the reference has no energy in the band: is the loopback channel connected?")
    eps = (beta_in * w + beta_out * (1.0 - w)) * scale
    return np.conj(X) / (power + eps)


def _check_band(f_lo: float, f_hi: float, sample_rate: float) -> None:
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    if not 0 <= f_lo < f_hi:
        raise ValueError(f"need 0 <= f_lo < f_hi, got f_lo={f_lo!r}, f_hi={f_hi!r}")
    if f_hi > sample_rate / 2:
        raise ValueError(f"f_hi={f_hi!r} is above the Nyquist frequency {sample_rate / 2:g} Hz")


def _n_fft(n_signal: int, n_fft: int | None) -> int:
    if n_fft is None:
        return scipy.fft.next_fast_len(n_signal, real=True)
    if n_fft < n_signal:
        raise ValueError(f"n_fft={n_fft} is shorter than the signal ({n_signal} samples)")
    return int(n_fft)


def deconvolve(
    recorded: ArrayLike,
    reference: ArrayLike,
    f_lo: float,
    f_hi: float,
    sample_rate: float,
    n_fft: int | None = None,
    *,
    beta_in: float = 1e-8,
    beta_out: float = 1.0,
    transition_octaves: float = 1.0,
) -> NDArray[np.float64]:
    """Loopback-referenced deconvolution into full circular impulse responses.

    Parameters
    ----------
    recorded : array_like
        Microphone recordings ``[..., N]``.
    reference : array_like
        Recorded loopback channel ``[M]`` or ``[..., M]`` (broadcast against the
        leading axes of ``recorded``), normally the same capture as ``recorded``.
    f_lo, f_hi : float
        Band (Hz) kept unregularized. To keep harmonic IRs for THD, pass the
        sweep range rather than the band of interest.
    sample_rate : float
        Sample rate in Hz.
    n_fft : int, optional
        Circular period; default the next fast length >= ``max(N, M)``.
    beta_in, beta_out, transition_octaves : float
        Regularization, see :func:`regularized_inverse`.

    Returns
    -------
    numpy.ndarray
        Circular IRs ``[..., n_fft]``: sample 0 = output instant, harmonic n of a
        synchronized sweep near ``n_fft - L ln(n) fs``.
    """
    y = np.asarray(recorded, dtype=np.float64)
    x = np.asarray(reference, dtype=np.float64)
    if y.ndim == 0 or x.ndim == 0:
        raise ValueError("recorded and reference need a samples axis (last), got a scalar")
    try:
        np.broadcast_shapes(y.shape[:-1], x.shape[:-1])
    except ValueError:
        raise ValueError(
            f"reference leading shape {x.shape[:-1]} does not broadcast against recorded {y.shape[:-1]}"
        ) from None
    _check_band(f_lo, f_hi, sample_rate)
    n = _n_fft(max(y.shape[-1], x.shape[-1]), n_fft)
    Y = scipy.fft.rfft(y, n, axis=-1)
    X = scipy.fft.rfft(x, n, axis=-1)
    f = scipy.fft.rfftfreq(n, 1.0 / sample_rate)
    G = regularized_inverse(X, f, f_lo, f_hi, beta_in, beta_out, transition_octaves)
    return scipy.fft.irfft(Y * G, n, axis=-1)


def deconvolve_with_sweep(
    recorded: ArrayLike,
    sweep: Sweep,
    f_lo: float,
    f_hi: float,
    n_fft: int | None = None,
    *,
    beta_in: float = 1e-8,
    beta_out: float = 1.0,
    transition_octaves: float = 1.0,
) -> NDArray[np.float64]:
    """Deconvolve with the analytic sweep spectrum (no loopback channel).

    Uses Novák's stationary-phase spectrum (:meth:`Sweep.spectrum`, zero outside
    ``[f1, f2]``) as ``X`` in the regularized division. Latency and the interface
    response are *not* removed: the IR origin is the start of the recording.
    The approximation ignores the fades, so keep ``[f_lo, f_hi]`` inside the
    sweep range away from the faded ends (see :func:`calib.signals.sweep.extended_range`).

    Returns
    -------
    numpy.ndarray
        Circular IRs ``[..., n_fft]``.
    """
    y = np.asarray(recorded, dtype=np.float64)
    if y.ndim == 0:
        raise ValueError("recorded needs a samples axis (last), got a scalar")
    _check_band(f_lo, f_hi, sweep.sample_rate)
    if f_lo < sweep.f1_hz or f_hi > sweep.f2_hz:
        raise ValueError(
            f"band [{f_lo:g}, {f_hi:g}] Hz is outside the sweep range [{sweep.f1_hz:g}, {sweep.f2_hz:g}] Hz"
        )
    n = _n_fft(max(y.shape[-1], sweep.n_samples), n_fft)
    f = scipy.fft.rfftfreq(n, 1.0 / sweep.sample_rate)
    G = regularized_inverse(sweep.spectrum(n), f, f_lo, f_hi, beta_in, beta_out, transition_octaves)
    return scipy.fft.irfft(scipy.fft.rfft(y, n, axis=-1) * G, n, axis=-1)
