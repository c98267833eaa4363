"""Half-Hann fades and impulse-response windows.

All functions work on the last axis (channels first, samples last).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def half_hann(n_samples: int, rising: bool = True) -> NDArray[np.float64]:
    """Half of a Hann window, for fades.

    ``w[k] = 0.5 * (1 - cos(pi * k / n))`` for ``k = 0 .. n-1`` when rising, so a
    fade-in starts at exactly 0 and a fade-out (the reversed window) ends at
    exactly 0.

    Parameters
    ----------
    n_samples : int
        Fade length in samples (0 gives an empty window).
    rising : bool
        True for a fade-in (0 -> 1), False for a fade-out (1 -> 0).

    Returns
    -------
    numpy.ndarray
        The window, shape ``[n_samples]``.
    """
    if n_samples < 0:
        raise ValueError(f"fade length must be >= 0 samples, got {n_samples}")
    k = np.arange(n_samples)
    w = 0.5 * (1.0 - np.cos(np.pi * k / max(n_samples, 1)))
    return w if rising else w[::-1].copy()


def fade(x: ArrayLike, fade_in_samples: int = 0, fade_out_samples: int = 0) -> NDArray[np.float64]:
    """Apply half-Hann fades at both ends of the last axis.

    Parameters
    ----------
    x : array_like
        Signals ``[..., N]``.
    fade_in_samples, fade_out_samples : int
        Fade lengths in samples; their sum must not exceed ``N``.

    Returns
    -------
    numpy.ndarray
        Faded copy of ``x`` (float64).
    """
    y = np.array(x, dtype=np.float64, copy=True)
    if y.ndim == 0:
        raise ValueError("x must have at least one axis (samples last), got a scalar")
    n = y.shape[-1]
    if fade_in_samples < 0 or fade_out_samples < 0 or fade_in_samples + fade_out_samples > n:
        raise ValueError(
            f"fades of {fade_in_samples} + {fade_out_samples} samples do not fit a signal of {n} samples"
        )
    if fade_in_samples:
        y[..., :fade_in_samples] *= half_hann(fade_in_samples, rising=True)
    if fade_out_samples:
        y[..., n - fade_out_samples :] *= half_hann(fade_out_samples, rising=False)
    return y


def window_ir(
    ir: ArrayLike, length: int, fade_out_samples: int | None = None, fade_in_samples: int = 0
) -> NDArray[np.float64]:
    """Truncate (or zero-pad) impulse responses to ``length`` samples and fade the end.

    The time origin is kept: sample 0 of the result is sample 0 of ``ir``.

    Parameters
    ----------
    ir : array_like
        Impulse responses ``[..., N]``.
    length : int
        Output length in samples (> 0).
    fade_out_samples : int, optional
        Half-Hann fade-out at the end of the window; default ``length // 10``.
    fade_in_samples : int
        Half-Hann fade-in at the start (default none: keep the onset intact).

    Returns
    -------
    numpy.ndarray
        Windowed responses ``[..., length]``.
    """
    h = np.asarray(ir, dtype=np.float64)
    if h.ndim == 0:
        raise ValueError("ir must have at least one axis (samples last), got a scalar")
    if length <= 0:
        raise ValueError(f"window length must be > 0 samples, got {length}")
    if fade_out_samples is None:
        fade_out_samples = length // 10
    n = h.shape[-1]
    if n >= length:
        out = h[..., :length]
    else:
        out = np.concatenate([h, np.zeros(h.shape[:-1] + (length - n,))], axis=-1)
    return fade(out, fade_in_samples, fade_out_samples)
