"""Rendering: stereo -> upmix -> virtualizer -> FIR matrix -> driver feeds.

Signal flow (shapes channels-first)::

    stereo [2, N] --upmix--> (L', R', C) --virtualizer on (L', R')--> (L, R)
                                           C delayed by the virtualizer's delay_samples
    driver s = sum_k fir[k, s] * input k                      (k over L, R, C)

Both linear stages fold into one FIR matrix from (L', R', C) to the drivers,
:func:`effective_fir` (also what the exports ship)::

    eff[L', s] = v[0, 0] * fir[L, s] + v[1, 0] * fir[R, s]
    eff[R', s] = v[0, 1] * fir[L, s] + v[1, 1] * fir[R, s]
    eff[C,  s] = delta(n - delay_samples) * fir[C, s]

with ``v = cal.virtualizer`` ([out, in, Tv]) and ``*`` convolution, so the
effective length is T + Tv - 1. Convolution is FFT overlap-add
(:func:`scipy.signal.oaconvolve`).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import oaconvolve

from calib.render.upmix import upmix
from calib.store.calibration import Calibration


def effective_fir(cal: Calibration) -> np.ndarray:
    """Return the FIR matrix from the upmixed inputs (L', R', C) to the drivers.

    Returns
    -------
    numpy.ndarray
        [3, S, T + Tv - 1] float64 (see the module docstring).
    """
    fir = cal.fir.astype(np.float64)  # [K, S, T]
    v = cal.virtualizer.astype(np.float64)  # [o, i, Tv]
    n_out = cal.taps + v.shape[-1] - 1
    # eff[i, s] = sum_o v[o, i] * fir[o, s]: convolve [o, i, 1, Tv] with [o, 1, S, T], sum over o.
    lr = oaconvolve(v[:, :, None, :], fir[:2, None, :, :], axes=-1).sum(axis=0)
    centre = np.zeros((1, fir.shape[1], n_out))
    d = cal.virtualizer_delay_samples
    centre[0, :, d : d + cal.taps] = fir[2]
    return np.concatenate([lr, centre])


def render_inputs(cal: Calibration, inputs: np.ndarray, fir: np.ndarray | None = None) -> np.ndarray:
    """Driver feeds for given FIR inputs, bypassing upmix and virtualizer.

    Parameters
    ----------
    cal
        The calibration (its ``fir`` [K, S, T] is used unless ``fir`` is given).
    inputs
        [K, N] signals for the inputs ``cal.inputs`` (L, R, C); verification
        plays one input at a time with the others zero.
    fir
        Optional [K, S, T'] matrix to use instead of ``cal.fir``.

    Returns
    -------
    numpy.ndarray
        [S, N + T - 1] driver feeds, sum over k of fir[k, s] * inputs[k].
    """
    h = cal.fir if fir is None else fir
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != h.shape[0]:
        raise ValueError(f"inputs: expected shape [K={h.shape[0]}, N], got {list(x.shape)}")
    out = np.zeros((h.shape[1], x.shape[-1] + h.shape[-1] - 1))
    if x.shape[-1] == 0:
        return out
    for k in range(h.shape[0]):  # K = 3: accumulate to keep one [S, N] buffer, not [K, S, N]
        if np.any(x[k]):
            out += oaconvolve(x[k][None, :], h[k].astype(np.float64), axes=-1)
    return out


def render(cal: Calibration, stereo: np.ndarray, **upmix_options: float) -> np.ndarray:
    """Render stereo to the driver feeds of one calibrated unit.

    Parameters
    ----------
    cal
        The unit's calibration.
    stereo
        [2, N] left and right at ``cal.sample_rate``.
    **upmix_options
        Passed to :func:`calib.render.upmix.upmix` (``time_constant_s``, ``frame_s``).

    Returns
    -------
    numpy.ndarray
        [S, N + T + Tv - 2] driver feeds in ``cal.drivers`` order (for a
        one-tap virtualizer, N + T - 1).
    """
    x = np.asarray(stereo, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"stereo: expected shape [2, N], got {list(x.shape)}")
    return render_inputs(cal, upmix(x, cal.sample_rate, **upmix_options), fir=effective_fir(cal))
