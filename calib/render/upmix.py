r"""Stereo to (L', R', C) upmix for rendering.

Signal model, per STFT bin (frequency f, frame n)::

    L = C0 + A_L,    R = C0 + A_R

with a centre component C0 common to both channels and side components
A_L, A_R, all three mutually uncorrelated. With mid and side
M = (L + R) / 2 and S = (L - R) / 2 (so S = (A_L - A_R) / 2 holds no C0):

1. Decorrelate the mid from the side (docs/chain.md, 'Rendering'):

   .. math:: M' = M - \alpha S, \quad \alpha = \frac{\operatorname{Re} E[M S^*]}{E[|S|^2]}

   which makes E[M' S*] real part zero. For a source panned off-centre M
   is fully predicted by S, so it leaves C altogether (C ~ 0 for hard-left).

2. Keep only the part of M' that is common to L and R, by the linear
   minimum mean-square-error (Wiener) estimate of C0 from M':

   .. math:: C = g\,M', \quad g = \frac{P_{C}}{E[|M'|^2]}, \quad
             P_C = \operatorname{Re} E[L R^*] = E[|M|^2] - E[|S|^2]

   clipped to 0 <= g <= 1. Under the model, C0 is uncorrelated with S, so
   this is also the LMMSE estimate of C0 from (M, S); uncorrelated L, R
   (ambience) give P_C ~ 0 and stay out of C.

3. L' = L - C and R' = R - C, formed in the time domain, so L' + C = L and
   R' + C = R hold to rounding.

Expectations E[.] are first-order recursive averages over frames with time
constant ``time_constant_s`` (100 ms: long enough for stable estimates, short
enough to follow a mix), which a device can run causally too. Every ratio
needs only three smoothed real spectra: |L|^2, |R|^2 and Re(L R*).

The approach (inter-channel cross-correlation per STFT bin) follows
C. Avendano and J.-M. Jot, "A frequency-domain approach to multichannel
upmix", J. Audio Eng. Soc. 52(7/8), 740-749 (2004).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import ShortTimeFFT, lfilter
from scipy.signal.windows import hann

#: Relative floor of the power estimates (against the mean power): silence gives C = 0.
_REL_FLOOR = 1e-12


def _stft(sample_rate: float, frame_s: float) -> ShortTimeFFT:
    """Hann-windowed STFT, power-of-two frame near ``frame_s``, 75 % overlap."""
    n_frame = int(2 ** np.round(np.log2(max(frame_s * sample_rate, 16.0))))
    return ShortTimeFFT(hann(n_frame, sym=False), hop=n_frame // 4, fs=sample_rate)


def upmix(
    stereo: np.ndarray,
    sample_rate: float,
    *,
    time_constant_s: float = 0.1,
    frame_s: float = 0.04,
) -> np.ndarray:
    """Split stereo into (L', R', C), C the centre made uncorrelated with the side.

    Parameters
    ----------
    stereo
        [2, N] left and right channels.
    sample_rate
        Sample rate in Hz.
    time_constant_s
        Time constant of the recursive smoothing of the statistics, seconds.
    frame_s
        STFT frame length, seconds (rounded to a power of two in samples;
        2048 at 48 kHz, hop a quarter frame).

    Returns
    -------
    numpy.ndarray
        [3, N]: L' = L - C, R' = R - C and C (see the module docstring).
    """
    x = np.asarray(stereo, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"stereo: expected shape [2, N], got {list(x.shape)}")
    if time_constant_s <= 0:
        raise ValueError(f"time_constant_s: expected > 0, got {time_constant_s}")
    n = x.shape[-1]
    if n == 0:
        return np.zeros((3, 0))
    sft = _stft(sample_rate, frame_s)
    # The STFT needs at least one frame: pad short input with silence (trimmed below).
    n_pad = max(n, sft.m_num)
    spec = sft.stft(x if n_pad == n else np.pad(x, ((0, 0), (0, n_pad - n))))  # [2, F, P]
    xl, xr = spec[0], spec[1]

    # Recursive averaging over frames: E[.][p] = a E[.][p-1] + (1 - a) (.)[p].
    a = np.exp(-sft.hop / (time_constant_s * sample_rate))
    raw = np.stack([np.abs(xl) ** 2, np.abs(xr) ** 2, np.real(xl * np.conj(xr))])
    p_ll, p_rr, p_lr = lfilter([1.0 - a], [1.0, -a], raw, axis=-1)

    floor = _REL_FLOOR * float(np.mean(p_ll + p_rr)) + np.finfo(float).tiny
    centre = sft.istft(centre_spectrum(xl, xr, p_ll, p_rr, p_lr, floor), k1=n_pad)[:n]
    return np.stack([x[0] - centre, x[1] - centre, centre])


def centre_spectrum(
    xl: np.ndarray, xr: np.ndarray, p_ll: np.ndarray, p_rr: np.ndarray, p_lr: np.ndarray, floor: float
) -> np.ndarray:
    """C = g (M - alpha S) per bin and frame from the smoothed statistics (steps 1 and 2 above).

    Parameters
    ----------
    xl, xr
        STFT of L and R (same shape).
    p_ll, p_rr, p_lr
        Smoothed E|L|^2, E|R|^2 and Re E[L R*] (same shape, real).
    floor
        Power floor added to the denominators (silence gives C = 0).
    """
    # Passes in place on a few buffers, the statistics scaled by 4 (4 E|S|^2 = E|L|^2 + E|R|^2 - 2 Re E[L R*],
    # ...) so that none is spent on the factors: this runs on every bin of every frame of every render.
    floor4 = 4.0 * floor
    diff = p_ll - p_rr  # 4 Re E[M S*]
    lr2 = p_lr + p_lr  # 2 Re E[L R*]
    mm4 = p_ll + p_rr
    ss4 = np.subtract(mm4, lr2)
    np.maximum(ss4, 0.0, out=ss4)  # 4 E|S|^2
    mm4 += lr2
    np.maximum(mm4, 0.0, out=mm4)  # 4 E|M|^2
    alpha = np.add(ss4, floor4)
    np.divide(diff, alpha, out=alpha)
    # 4 E|M - alpha S|^2 = 4 E|M|^2 - alpha (2 * 4 Re E[M S*] - alpha 4 E|S|^2)
    term = np.multiply(alpha, ss4, out=ss4)
    np.subtract(diff, term, out=term)
    term += diff
    term *= alpha
    mm4 -= term
    np.maximum(mm4, 0.0, out=mm4)
    # g / 2 = min(max(Re E[L R*], 0) / (E|M'|^2 + floor), 1) / 2 = min(2 max(.., 0) / (4 E|M'|^2 + 4 floor), 1/2)
    mm4 += floor4
    half_gain = np.maximum(lr2, 0.0, out=lr2)
    half_gain /= mm4
    np.minimum(half_gain, 0.5, out=half_gain)
    # g (M - alpha S) = g (1 - alpha) / 2 L + g (1 + alpha) / 2 R, real gains on complex bins.
    g_alpha = np.multiply(half_gain, alpha, out=alpha)
    g_l = np.subtract(half_gain, g_alpha, out=diff)
    g_r = np.add(half_gain, g_alpha, out=mm4)
    # Real and imaginary parts apart: a broadcast (re, im) axis of length 2 makes numpy's inner loops 2 long.
    out = np.empty(np.broadcast_shapes(xl.shape, xr.shape), dtype=np.result_type(xl, xr, np.complex128))
    right_part = np.empty(out.shape)
    for dest, left, right in ((out.real, xl.real, xr.real), (out.imag, xl.imag, xr.imag)):
        np.multiply(left, g_l, out=dest)
        dest += np.multiply(right, g_r, out=right_part)
    return out
