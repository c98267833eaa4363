"""Per-driver health from characterize IRs: present (SNR) and acoustic polarity."""

from __future__ import annotations

import numpy as np


def ir_polarity(ir: np.ndarray) -> np.ndarray:
    """Acoustic polarity of impulse responses: the sign of the largest-magnitude sample.

    A driver pushed by a positive step radiates a positive pressure pulse
    first: its IR's main peak (the direct sound, after the high-pass) is
    positive for every ordinary driver measured in front of it; a reversed
    wiring flips it.

    Parameters
    ----------
    ir : array_like [..., N]

    Returns
    -------
    ndarray of int [...]
        +1 or -1 (0 for an all-zero IR).
    """
    h = np.asarray(ir, dtype=float)
    if h.ndim == 0 or h.shape[-1] == 0:
        raise ValueError(f"ir must have samples on its last axis, got shape {h.shape}")
    peak = np.take_along_axis(h, np.argmax(np.abs(h), axis=-1)[..., None], axis=-1)[..., 0]
    return np.sign(peak).astype(int)
