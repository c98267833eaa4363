"""Fractional-octave smoothing of power spectra.

Each bin becomes the mean of ``|X|^2`` over the bins within ``f·2^(±1/(2n))``,
the usual presentation of loudspeaker responses (Hatziantoniou & Mourjopoulos,
"Generalized fractional-octave smoothing of audio and acoustic responses",
JAES 48(4), 2000, rectangular window). Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_fractional_octave"]


def smooth_fractional_octave(freqs_hz: np.ndarray, power: np.ndarray, fraction: int = 3) -> np.ndarray:
    """Smooth a power spectrum over a fraction of an octave.

    Parameters
    ----------
    freqs_hz : ndarray [F]
        Ascending bin frequencies.
    power : ndarray [..., F]
        Power-like quantity (``|X|^2``), frequency last.
    fraction : int
        ``n`` of a ``1/n``-octave window.

    Returns
    -------
    ndarray [..., F]
        Mean of ``power`` over ``f·2^(-1/(2n)) <= f' <= f·2^(1/(2n))`` at every bin
        (running sums, no loop over bins; the bin itself is always included).
    """
    f = np.asarray(freqs_hz, dtype=float)
    p = np.asarray(power, dtype=float)
    if f.ndim != 1 or p.shape[-1:] != f.shape:
        raise ValueError(f"power must have F={f.size} bins on its last axis, got shape {p.shape}")
    if fraction < 1:
        raise ValueError(f"fraction: expected a positive integer (3 for 1/3 octave), got {fraction!r}")
    half = 2.0 ** (1.0 / (2 * fraction))
    lo = np.minimum(np.searchsorted(f, f / half, side="left"), np.arange(f.size))
    hi = np.maximum(np.searchsorted(f, f * half, side="right"), np.arange(f.size) + 1)
    csum = np.concatenate([np.zeros(p.shape[:-1] + (1,)), np.cumsum(p, axis=-1)], axis=-1)
    return (csum[..., hi] - csum[..., lo]) / (hi - lo)
