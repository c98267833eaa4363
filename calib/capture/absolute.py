"""Absolute level: impulse responses in pascal per full scale.

An IR deconvolved against the loopback is the ratio of two digital signals,
recorded input over played output, in FS/FS. With the sensitivity ``S`` of
the input chain (FS per Pa, from a 94 dB calibrator, see
:mod:`calib.signals.level`) and the microphone's own response ``M(f)`` (a
REW-style file, see :mod:`calib.store.miccal`), the sound pressure per unit
of output is

    h_Pa(t) = F⁻¹{ F{h_FS(t)} / (S · M(f)) }      [Pa/FS]

``S`` is a ratio of RMS values of the same tone, so it scales instantaneous
values alike. ``M`` is 0 dB at the calibrator frequency for a file
normalised there (the usual case); calib does not renormalise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calib.errors import ProcedureError
from calib.procedure.model import Procedure
from calib.procedure.station import Station, apply_station, input_channel_names
from calib.store.miccal import MicCalibration, apply_mic_calibration, read_mic_calibration

IR_UNIT_RELATIVE = "FS/FS"
IR_UNIT_PASCAL = "Pa/FS"


@dataclass(frozen=True)
class InputCalibration:
    """Calibration of one input channel.

    Attributes
    ----------
    name : str
        Station mic name (a procedure mic, ``ears.left`` or ``ears.right``).
    input_index : int
        0-based input channel.
    sensitivity_fs_per_pa : float
        RMS full scale per RMS pascal of the whole input chain.
    mic : MicCalibration or None
        The microphone's response, divided out; None: flat.
    """

    name: str
    input_index: int
    sensitivity_fs_per_pa: float
    mic: MicCalibration | None = None


def input_calibrations(proc: Procedure, station: Station) -> dict[int, InputCalibration]:
    """Input calibrations of the station's ``[[mics]]``, by 0-based input channel.

    Channels come from the procedure as the station runs it
    (:func:`~calib.procedure.station.apply_station`); calibration files are
    read now, so a damaged one fails before anything is measured.

    Raises
    ------
    ProcedureError
        If the station does not fit the procedure.
    FileFormatError
        If a calibration file does not parse.
    """
    channels = input_channel_names(apply_station(proc, station))
    out = {}
    for mic in station.mics:
        path = station.calibration_path(mic)
        index = channels[mic.name]
        out[index] = InputCalibration(
            mic.name, index, mic.fs_per_pa, read_mic_calibration(path) if path is not None else None
        )
    return out


def ir_unit(inputs: Sequence[int], cals: dict[int, InputCalibration]) -> str:
    """``"Pa/FS"`` when every one of ``inputs`` (0-based) is calibrated, else ``"FS/FS"``."""
    return IR_UNIT_PASCAL if inputs and all(i in cals for i in inputs) else IR_UNIT_RELATIVE


def apply_input_calibration(
    ir: ArrayLike, inputs: Sequence[int], cals: dict[int, InputCalibration], sample_rate: float
) -> NDArray[np.float64]:
    """Convert IRs from FS/FS to Pa/FS.

    Parameters
    ----------
    ir : array_like, shape (R, S, N)
        One step's IRs: receiver rows, sources, samples.
    inputs : sequence of int, length R
        0-based input channel of each receiver row.
    cals : dict
        From :func:`input_calibrations`.
    sample_rate : float
        Sample rate in Hz.

    Returns
    -------
    ndarray, float64, shape (R, S, N)
        ``ir[r] / S_r``, then ``M_r`` divided out (:func:`apply_mic_calibration`).

    Raises
    ------
    ValueError
        If ``ir`` is not 3-D or ``inputs`` does not have one entry per row.
    ProcedureError
        If an input has no calibration: mixing units in one file is refused.
    """
    x = np.asarray(ir, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != len(inputs):
        raise ValueError(f"ir must be [R, S, N] with R = len(inputs) = {len(inputs)}, got shape {x.shape}")
    missing = [i for i in inputs if i not in cals]
    if missing:
        have = ", ".join(f"{c.input_index + 1} ({c.name})" for c in cals.values()) or "none"
        raise ProcedureError(
            f"input channel(s) {', '.join(str(i + 1) for i in missing)}: expected a [[mics]] sensitivity "
            f"in the station file for absolute level, got none (calibrated inputs: {have})"
        )
    scale = np.array([1.0 / cals[i].sensitivity_fs_per_pa for i in inputs])
    out = x * scale[:, None, None]
    for row, i in enumerate(inputs):  # one correction per receiver row (R is small), vectorized over S and N
        mic = cals[i].mic
        if mic is not None:
            out[row] = apply_mic_calibration(out[row], sample_rate, mic)
    return out
