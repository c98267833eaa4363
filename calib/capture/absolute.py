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

A file with a phase column is divided out as given
(:func:`~calib.store.miccal.apply_mic_calibration`). A magnitude-only file
(the usual REW/UMIK case) is taken as the minimum-phase response of that
magnitude: a pressure microphone is close to minimum phase, the division is
then causal and restores the phase too, where a zero-phase division would
ring before the direct sound and lose part of that ringing at the IR start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from calib.errors import ProcedureError
from calib.procedure.spec import Procedure
from calib.procedure.station_file import Station, apply_station, input_channel_names
from calib.signals.convolve import next_pow2
from calib.signals.level import P_REF_PA
from calib.store.miccal import MicCalibration, apply_mic_calibration, mic_correction, read_mic_calibration

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
    (:func:`~calib.procedure.station_file.apply_station`); calibration files are
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
        ``ir[r] / S_r``, then ``M_r`` divided out (given phase, else minimum phase).

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
        if mic is not None and mic.phase_deg is not None:
            out[row] = apply_mic_calibration(out[row], sample_rate, mic)
        elif mic is not None:
            out[row] = _divide_minimum_phase(out[row], sample_rate, mic)
    return out


def noise_spl_db(
    noise_dbfs: ArrayLike, inputs: Sequence[int], cals: dict[int, InputCalibration], centre_hz: ArrayLike
) -> NDArray[np.float64]:
    """Convert band noise levels from dBFS to dB SPL.

    A band's mean square ``ms`` (FS^2) is ``10 log10(2 ms)`` dBFS (re a
    full-scale sine, AES17); at the microphone it is ``ms / (S |M(f_c)|)^2``
    in Pa^2, the microphone's response taken at the band centre (smooth over
    a third of an octave), so ``L_SPL = L_FS - 10 log10 2 - 20 log10(S |M| p_ref)``.

    Parameters
    ----------
    noise_dbfs : array_like, shape (R, S, B)
        Band noise levels in dBFS, receiver rows first.
    inputs : sequence of int, length R
        0-based input channel of each row (every one calibrated).
    cals : dict
        From :func:`input_calibrations`.
    centre_hz : array_like, shape (B,)
        Band centres in Hz.

    Returns
    -------
    ndarray, shape (R, S, B)
    """
    x = np.asarray(noise_dbfs, dtype=np.float64)
    fc = np.asarray(centre_hz, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != len(inputs) or x.shape[-1] != fc.size:
        raise ValueError(f"noise_dbfs must be [R, S, B] with R = {len(inputs)}, B = {fc.size}, got shape {x.shape}")
    out = x - 10 * np.log10(2.0)
    for row, i in enumerate(inputs):
        mic = cals[i].mic
        gain = np.abs(mic_correction(mic, fc)) if mic is not None else np.ones(fc.size)
        out[row] -= 20 * np.log10(cals[i].sensitivity_fs_per_pa * gain * P_REF_PA)
    return out


def _divide_minimum_phase(ir: np.ndarray, sample_rate: float, mic: MicCalibration) -> np.ndarray:
    """Divide out the minimum-phase response whose magnitude the (phase-less) file gives.

    A pressure microphone is, to a good approximation, a minimum-phase
    system, and so is its inverse: dividing by it is causal and restores the
    phase as well. A zero-phase division (what a magnitude-only file
    suggests) rings before its input; with the direct sound only a few
    milliseconds after t = 0, part of that ringing falls before the IR's
    start and is lost, which biases the low-frequency level (0.6 dB at
    50-100 Hz for a 120 Hz feature and a 4 ms delay).

    The minimum-phase spectrum comes from the folded real cepstrum
    (Oppenheim & Schafer, *Discrete-Time Signal Processing*, 3rd ed.,
    sec. 13.5): ``c = IFFT(log|M|)``, ``ĉ = c·w`` with ``w = [1, 2, ..., 2, 1,
    0, ...]``, ``M_min = exp(FFT(ĉ))``, on a grid fine enough (≤ 1 Hz) that
    the cepstrum does not alias.
    """
    n = ir.shape[-1]
    n_fft = scipy.fft.next_fast_len(max(2 * n, next_pow2(sample_rate)), real=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    log_mag = np.log(np.abs(mic_correction(mic, freqs)))
    cepstrum = scipy.fft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = 1.0
    fold[1 : (n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    response = np.exp(scipy.fft.rfft(cepstrum * fold))
    spectrum = scipy.fft.rfft(ir, n_fft, axis=-1) / response
    return scipy.fft.irfft(spectrum, n_fft, axis=-1)[..., :n]


def station_calibrations(
    proc: Procedure, station: Station | None
) -> tuple[dict[int, InputCalibration], dict[str, object]]:
    """Return a station's input calibrations and the attributes that record the station in a measurement file."""
    if station is None:
        return {}, {}
    return input_calibrations(proc, station), {"station": station.source_text}
