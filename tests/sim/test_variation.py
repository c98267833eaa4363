"""Unit-to-unit variation seeded by the serial number."""

import hashlib

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import ProcedureError
from calib.sim.lab import MicReceiver, VirtualLab
from calib.sim.params import DeviceModel, DriverModel, UnitVariation
from calib.sim.variation import serial_seed, unit_from_serial

NOMINAL = DeviceModel(tuple(
    DriverModel(f"d{i}", (0.0, 0.05 * i, 0.0), sensitivity_pa=0.5, fc_hz=100.0, q=0.8) for i in range(4)
))
VAR = UnitVariation(sensitivity_db=1.0, fc_pct=5.0, q_pct=4.0, position_mm=0.5)
MICS = [MicReceiver("m0", (1.0, 0.0, 0.0)), MicReceiver("m1", (0.7, 0.7, 0.0))]
F = np.geomspace(20, 20000, 64)


def test_seed_is_sha256_of_serial():
    assert serial_seed("SN123") == int.from_bytes(hashlib.sha256(b"SN123").digest()[:8], "big")
    with pytest.raises(ValueError, match="serial must be a non-empty string"):
        serial_seed("")


def test_same_serial_same_unit_exactly():
    a = unit_from_serial(NOMINAL, VAR, "SN0001")
    b = unit_from_serial(NOMINAL, VAR, "SN0001")
    assert a == b
    ta = VirtualLab(a, 48000).transfer(F, MICS)
    tb = VirtualLab(b, 48000).transfer(F, MICS)
    assert np.array_equal(ta, tb)


def test_different_serials_differ():
    ta = VirtualLab(unit_from_serial(NOMINAL, VAR, "SN0001"), 48000).transfer(F, MICS)
    tb = VirtualLab(unit_from_serial(NOMINAL, VAR, "SN0002"), 48000).transfer(F, MICS)
    diff_db = np.abs(20 * np.log10(np.abs(ta) / np.abs(tb)))
    assert diff_db.max() > 0.1


def test_deviations_follow_the_stated_spread():
    units = [unit_from_serial(NOMINAL, VAR, f"SN{k:05d}") for k in range(250)]
    d = np.array([[(20 * np.log10(x.sensitivity_pa / 0.5)) / VAR.sensitivity_db,
                   (x.fc_hz / 100.0 - 1) / 0.05,
                   (x.q / 0.8 - 1) / 0.04,
                   *((np.asarray(x.position_m) - n.position_m) / 0.5e-3)]
                  for u in units for x, n in zip(u.drivers, NOMINAL.drivers, strict=True)])
    assert np.abs(d).max() <= 4.0 + 1e-9  # z-scores within 4 std devs
    # 1000 draws per column: sample std within 10 % of 1, mean within 0.15
    assert_allclose(d.std(axis=0), 1.0, atol=0.1)
    assert_allclose(d.mean(axis=0), 0.0, atol=0.15)
    # untouched fields stay nominal
    assert all(
        x.axis == n.axis and x.radius_m == n.radius_m for x, n in zip(units[0].drivers, NOMINAL.drivers, strict=True)
    )


def test_zero_variation_is_nominal_and_bad_variation_raises():
    same = unit_from_serial(NOMINAL, UnitVariation(0.0, 0.0, 0.0, 0.0), "X")
    for x, n in zip(same.drivers, NOMINAL.drivers, strict=True):
        assert_allclose([x.sensitivity_pa, x.fc_hz, x.q, *x.position_m],
                        [n.sensitivity_pa, n.fc_hz, n.q, *n.position_m], rtol=1e-15)
    with pytest.raises(ProcedureError, match=r"fc_pct must be in \[0, 20\) percent, got 25"):
        UnitVariation(fc_pct=25.0)
    with pytest.raises(ProcedureError, match="sensitivity_db must be >= 0"):
        UnitVariation(sensitivity_db=-1.0)
