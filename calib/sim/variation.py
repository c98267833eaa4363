"""Unit-to-unit variation, seeded by the serial number.

The same serial is the same unit in every run and on every machine: the
random generator is seeded from SHA-256 of the serial (not Python's salted
``hash()``), and the draws are taken in one fixed-shape block so adding
fields elsewhere does not reshuffle them.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from calib.sim.params import DeviceModel, UnitVariation

TRUNCATE_SIGMA = 4.0
"""Draws are clipped to +-4 standard deviations (probability 6e-5 per draw)."""

_DRAWS_PER_DRIVER = 6  # sensitivity, fc, q, x, y, z


def serial_seed(serial: str) -> int:
    """Return a 64-bit seed from the SHA-256 digest of the UTF-8 serial."""
    if not isinstance(serial, str) or not serial:
        raise ValueError(f"serial must be a non-empty string, got {serial!r}")
    return int.from_bytes(hashlib.sha256(serial.encode("utf-8")).digest()[:8], "big")


def unit_from_serial(nominal: DeviceModel, variation: UnitVariation, serial: str) -> DeviceModel:
    """Return the unit with serial number ``serial``: the nominal device with production spread.

    For each driver ``i`` (in order), with ``z`` independent standard normal
    draws clipped to +-4 (``numpy.random.default_rng(serial_seed(serial))``,
    one block of shape ``[S, 6]``):

    - sensitivity: ``p_i = p_nom * 10**(sigma_dB z_0 / 20)`` (normal in dB),
    - corner: ``fc_i = fc_nom * (1 + fc_pct/100 * z_1)``,
    - Q: ``q_i = q_nom * (1 + q_pct/100 * z_2)``,
    - position: ``x_i = x_nom + position_mm/1000 * z_{3:6}`` (each axis).

    Axis, radius, low-pass, polarity and nonlinearity are nominal.

    Parameters
    ----------
    nominal : DeviceModel
    variation : UnitVariation
        Standard deviations.
    serial : str

    Returns
    -------
    DeviceModel
    """
    rng = np.random.default_rng(serial_seed(serial))
    z = np.clip(rng.standard_normal((len(nominal.drivers), _DRAWS_PER_DRIVER)), -TRUNCATE_SIGMA, TRUNCATE_SIGMA)
    drivers = []
    for d, zi in zip(nominal.drivers, z, strict=True):
        drivers.append(
            dataclasses.replace(
                d,
                sensitivity_pa=d.sensitivity_pa * 10.0 ** (variation.sensitivity_db * zi[0] / 20.0),
                fc_hz=d.fc_hz * (1.0 + variation.fc_pct / 100.0 * zi[1]),
                q=d.q * (1.0 + variation.q_pct / 100.0 * zi[2]),
                position_m=tuple(np.asarray(d.position_m) + variation.position_mm / 1000.0 * zi[3:6]),
            )
        )
    return DeviceModel(drivers=tuple(drivers))


__all__ = ["TRUNCATE_SIGMA", "serial_seed", "unit_from_serial"]
