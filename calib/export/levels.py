"""The level an IR's magnitude is shown in, after the unit its file records.

An IR deconvolved against the loopback is in FS/FS (recorded over played
full scale); with the station's microphone calibration it is in Pa/FS
(:mod:`calib.capture.absolute`). A Pa/FS response is shown as sound pressure
level for a full-scale sine (0 dBFS, AES17): a sine of amplitude 1 FS gives a
pressure amplitude ``|H|`` Pa, i.e. ``|H| / √2`` Pa RMS, so

    L = 20 log10(|H| / (√2 · 20 µPa))      dB SPL at 0 dBFS

An FS/FS response stays in dB re 1 FS/FS.
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import power_db
from calib.signals.level import P_REF_PA

IR_UNIT_PASCAL = "Pa/FS"


def ir_unit(meas, group: str = "directivity") -> str:
    """``Pa/FS`` or ``FS/FS``: attribute ``ir_unit_<group>``, else ``ir_unit``, else ``FS/FS``."""
    return str(meas.attrs.get(f"ir_unit_{group}", meas.attrs.get("ir_unit", "FS/FS")))


def level_offset_db(unit: str) -> float:
    """Return what :func:`level_db` adds to ``20 log10 |H|`` for an IR in ``unit``."""
    return float(-20.0 * np.log10(np.sqrt(2.0) * P_REF_PA)) if unit == IR_UNIT_PASCAL else 0.0


def level_label(unit: str) -> str:
    """Return the axis label of :func:`level_db`, with its reference."""
    return "SPL at 0 dBFS (dB re 20 µPa)" if unit == IR_UNIT_PASCAL else f"level (dB re 1 {unit})"


def level_db(power: np.ndarray, unit: str) -> np.ndarray:
    """``|H|²`` (a power, possibly smoothed) as the level of :func:`level_label`; 0 gives -inf."""
    return power_db(np.asarray(power, dtype=float)) + level_offset_db(unit)
