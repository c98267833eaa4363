r"""On-axis response deviation from a target response (docs/metrics.md, 'On-axis response deviation').

Per third-octave band ``b``:

.. math::

    \Delta_b = 10\log_{10}\langle |X|^2 \rangle_b
              - 10\log_{10}\langle 10^{T/10} \rangle_b \; [- \mathrm{offset}]

(band power averages of the response ``X`` and of the target ``T`` in dB).
With ``normalize=True`` the mean deviation over the bands with data is
subtracted, so the result judges the shape, not the absolute level (the
usual "+-3 dB around the target" specification).
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import Bands, band_power_average, power_db

__all__ = ["interpolate_target_db", "response_deviation_db"]


def interpolate_target_db(freqs_hz: np.ndarray, points_hz: np.ndarray, points_db: np.ndarray) -> np.ndarray:
    """Target in dB on ``freqs_hz`` from breakpoints, linear in log frequency.

    Held constant beyond the first and last breakpoint (and at 0 Hz).
    """
    pf = np.asarray(points_hz, dtype=float)
    pd = np.asarray(points_db, dtype=float)
    if pf.ndim != 1 or pf.shape != pd.shape or pf.size == 0:
        raise ValueError(f"points_hz and points_db must be 1-D of equal length, got {pf.shape} and {pd.shape}")
    if np.any(pf <= 0) or np.any(np.diff(pf) <= 0) or not np.all(np.isfinite(pd)):
        raise ValueError(f"points_hz must be > 0 and increasing, points_db finite; got {pf.tolist()}")
    f = np.maximum(np.asarray(freqs_hz, dtype=float), pf[0])
    return np.interp(np.log(f), np.log(pf), pd)


def response_deviation_db(
    response: np.ndarray,
    freqs_hz: np.ndarray,
    target_db: np.ndarray | tuple[np.ndarray, np.ndarray],
    bands: Bands,
    normalize: bool = True,
) -> np.ndarray:
    """Deviation of a response from a target, per band, dB [..., B].

    Parameters
    ----------
    response : array_like, complex or real [..., F]
        Response spectra (frequency last); ``|response|^2`` is averaged.
    freqs_hz : array_like [F]
    target_db : array_like [F] or (points_hz, points_db)
        Target level in dB on the bins, or breakpoints interpolated by
        :func:`interpolate_target_db`.
    bands : Bands
    normalize : bool
        Subtract the mean deviation over bands (per leading index).
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    resp = np.asarray(response)
    if resp.shape[-1:] != freqs.shape:
        raise ValueError(f"response must have F={freqs.size} bins on its last axis, got shape {resp.shape}")
    if isinstance(target_db, tuple):
        target = interpolate_target_db(freqs, *target_db)
    else:
        target = np.asarray(target_db, dtype=float)
        if target.shape != freqs.shape:
            raise ValueError(
                f"target_db must have shape [F]=({freqs.size},) or be (points_hz, points_db), got {target.shape}"
            )
    got = band_power_average(freqs, np.abs(resp) ** 2, bands)
    want = band_power_average(freqs, 10.0 ** (target / 10.0), bands)
    dev = power_db(got, want)
    if normalize:
        finite = np.isfinite(dev)
        if not np.any(finite):
            return dev
        offset = np.sum(np.where(finite, dev, 0.0), axis=-1, keepdims=True) / np.maximum(
            np.sum(finite, axis=-1, keepdims=True), 1
        )
        dev = dev - offset
    return dev
