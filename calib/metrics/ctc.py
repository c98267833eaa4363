"""Cancellation gain of a CTC system (docs/metrics.md, 'Cancellation gain').

Input L at head position ``p``: ``CG = 10 log10(<|P_left|^2> / <|P_right|^2>)``,
input R mirrored (``<.>`` = band power average when bands are given, i.e. a
ratio of band powers, else per bin). Two entry points:

- :func:`cancellation_gain_db`: predicted, from the plant and the filters
  (``P = C H``);
- :func:`cancellation_gain_from_ears_db`: verified, from ear responses
  measured while playing the rendered inputs.
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import Bands, optional_band_average, power_db

__all__ = ["cancellation_gain_db", "cancellation_gain_from_ears_db"]


def cancellation_gain_from_ears_db(
    ears: np.ndarray, freqs_hz: np.ndarray | None = None, bands: Bands | None = None
) -> np.ndarray:
    """Return cancellation gain from ear responses to inputs L and R.

    Parameters
    ----------
    ears : array_like, complex [F, P, 2, 2]
        Ear pressure (ear 0 = left, 1 = right) at P positions for inputs
        L (0) and R (1), e.g. the verify measurement's spectra sliced to L, R.
    freqs_hz : array_like [F], optional
        Required with ``bands``.
    bands : Bands, optional
        Third-octave bands; per bin if omitted.

    Returns
    -------
    ndarray [2, P, B] (or [2, P, F] per bin)
        Index 0: input L (left over right ear), 1: input R (right over left).
    """
    ears = np.asarray(ears)
    if ears.ndim != 4 or ears.shape[2:] != (2, 2):
        raise ValueError(f"ears must have shape [F, P, 2 ears, 2 inputs (L, R)], got {ears.shape}")
    power = optional_band_average(freqs_hz, np.moveaxis(np.abs(ears) ** 2, 0, -1), bands)  # [P, ear, input, F|B]
    wanted = np.stack([power[:, 0, 0], power[:, 1, 1]])  # ipsilateral ear per input
    crosstalk = np.stack([power[:, 1, 0], power[:, 0, 1]])
    return power_db(wanted, crosstalk)


def cancellation_gain_db(
    plant_ears: np.ndarray,
    H: np.ndarray,
    freqs_hz: np.ndarray | None = None,
    bands: Bands | None = None,
) -> np.ndarray:
    """Predicted cancellation gain from the plant and the CTC filters.

    Parameters
    ----------
    plant_ears : array_like, complex [F, P, 2, S]
    H : array_like, complex [F, S, 2]
        Filters of inputs L and R.
    freqs_hz, bands : optional
        As in :func:`cancellation_gain_from_ears_db`.

    Returns
    -------
    ndarray [2, P, B] (or [2, P, F])
    """
    plant = np.asarray(plant_ears)
    H = np.asarray(H)
    if plant.ndim != 4 or plant.shape[2] != 2:
        raise ValueError(f"plant_ears must have shape [F, P, 2, S], got {plant.shape}")
    if H.shape != (plant.shape[0], plant.shape[3], 2):
        raise ValueError(
            f"H must have shape [F, S, 2] = ({plant.shape[0]}, {plant.shape[3]}, 2), got {H.shape}"
        )
    ears = np.einsum("fpes,fsk->fpek", plant, H)
    return cancellation_gain_from_ears_db(ears, freqs_hz, bands)
