"""FFT convolution over the last axis with broadcasting of the leading axes, and FFT sizes."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["fft_convolve", "next_pow2"]


def next_pow2(n: float) -> int:
    """Return the smallest power of two ``>= n`` (an FFT size that holds ``n`` samples).

    Parameters
    ----------
    n : float
        A positive length; a fractional one is rounded up first.

    Returns
    -------
    int
        ``2**k`` with ``2**(k-1) < n <= 2**k`` (1 for ``n <= 1``).
    """
    m = math.ceil(n)
    if m < 1:
        raise ValueError(f"n: expected a positive length, got {n!r}")
    return 1 << (m - 1).bit_length()  # exact in integers, unlike 2**ceil(log2(n)) in floating point


def fft_convolve(x: ArrayLike, h: ArrayLike, n_out: int | None = None) -> NDArray[np.float64]:
    """Linear convolution ``x * h`` along the last axis.

    Parameters
    ----------
    x : array_like
        Signals ``[..., N]``.
    h : array_like
        Impulse responses ``[..., M]``; leading axes broadcast against ``x``'s.
    n_out : int, optional
        Output length: the full ``N + M - 1`` by default, else truncated or
        zero-padded to ``n_out`` samples (sample 0 is kept).

    Returns
    -------
    numpy.ndarray
        ``[broadcast(...), n_out]``.
    """
    a = np.asarray(x)
    b = np.asarray(h)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] == 0 or b.shape[-1] == 0:
        raise ValueError(f"x and h need a non-empty samples axis (last), got {a.shape} and {b.shape}")
    try:
        lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except ValueError:
        raise ValueError(f"leading shapes {a.shape[:-1]} and {b.shape[:-1]} do not broadcast") from None
    if n_out is not None and n_out < 0:
        raise ValueError(f"n_out must be >= 0, got {n_out!r}")
    a = np.broadcast_to(a, lead + a.shape[-1:])
    b = np.broadcast_to(b, lead + b.shape[-1:])
    from scipy.signal import oaconvolve  # on first use: see calib.signals (import cost)

    y = oaconvolve(a, b, mode="full", axes=-1)
    if n_out is None:
        return y
    if n_out <= y.shape[-1]:
        return y[..., :n_out]
    return np.concatenate([y, np.zeros(lead + (n_out - y.shape[-1],), dtype=y.dtype)], axis=-1)
