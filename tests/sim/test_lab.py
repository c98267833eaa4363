"""VirtualLab: geometry, rotation, ears, true IRs, caching, errors."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import ProcedureError
from calib.geometry import HeadPosition
from calib.sim.driver import driver_response
from calib.sim.lab import EarReceiver, MicReceiver, VirtualLab, mic_arc, rotation_z
from calib.sim.params import DeviceModel, DriverModel, driver_names
from calib.sim.sphere import rigid_sphere_transfer

FS, C = 48000, 343.0
DEVICE = DeviceModel((
    DriverModel("left", (0.0, 0.1, 0.0), axis=(1.0, 0.4, 0.0), radius_m=0.02, sensitivity_pa=0.8, fc_hz=90.0),
    DriverModel("centre", (0.01, 0.0, 0.02), radius_m=0.04, sensitivity_pa=1.2, fc_hz=60.0, q=0.9),
    DriverModel("right", (0.0, -0.1, 0.0), axis=(1.0, -0.4, 0.0), radius_m=0.02, sensitivity_pa=0.8, fc_hz=90.0,
                polarity=-1),
))


def test_driver_names_helper():
    assert driver_names(DEVICE) == ("left", "centre", "right")
    assert DEVICE.names == VirtualLab(DEVICE, FS).driver_names == ("left", "centre", "right")
    assert DEVICE.driver("centre").radius_m == 0.04
    with pytest.raises(ProcedureError, match="unknown driver 'woofer'; valid: left, centre, right"):
        DEVICE.driver("woofer")
    with pytest.raises(ProcedureError, match=r"driver names must be unique, repeated: \['a'\]"):
        DeviceModel((DriverModel("a", (0, 0, 0)), DriverModel("a", (0, 0, 1))))


def test_on_axis_mic_level_delay_and_polarity():
    dev = DeviceModel((DriverModel("d", (0.0, 0.0, 0.0), radius_m=0.02, sensitivity_pa=2.0, fc_hz=40.0, q=0.6,
                                   lowpass_hz=1e7),))
    lab = VirtualLab(dev, FS, 4096)
    f = np.array([1000.0, 3000.0])
    t = lab.transfer(f, [MicReceiver("m1", (1.0, 0, 0)), MicReceiver("m2", (2.0, 0, 0))])
    assert t.shape == (2, 2, 1)
    resp = driver_response(f, 40.0, 0.6, 1e7)
    assert_allclose(t[:, 0, 0], 2.0 * resp * np.exp(-2j * np.pi * f * 1.0 / C), rtol=1e-12)
    assert_allclose(20 * np.log10(np.abs(t[:, 1, 0] / t[:, 0, 0])), -6.0206, atol=0.01)
    # IR peak at the travel time for an integer-sample distance
    r = 150 * C / FS
    ir = lab.true_irs([MicReceiver("m", (r, 0.0, 0.0))])[0, 0]
    assert int(np.argmax(np.abs(ir))) == 150
    assert_allclose(ir[150], 2.0 / r, rtol=0.01)  # 1 %: the 40 Hz high-pass tail
    # polarity -1 negates
    neg = DeviceModel((DriverModel("d", (0, 0, 0), polarity=-1),))
    pos = DeviceModel((DriverModel("d", (0, 0, 0)),))
    mic = [MicReceiver("m", (1.0, 0.5, 0.0))]
    assert_allclose(VirtualLab(neg, FS).transfer(f, mic), -VirtualLab(pos, FS).transfer(f, mic), rtol=1e-15)


def test_turntable_rotates_device_not_receivers():
    lab = VirtualLab(DEVICE, FS)
    f = np.geomspace(50, 20000, 40)
    alpha, phi = 35.0, 10.0
    at_alpha = lab.transfer(f, mic_arc(1.5, [phi]), alpha)
    at_zero = lab.transfer(f, mic_arc(1.5, [phi - alpha]), 0.0)
    assert_allclose(at_alpha, at_zero, rtol=1e-10, atol=1e-14)
    assert_allclose(rotation_z(90.0) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)  # CCW from +x to +y
    arc = mic_arc(2.0, [0.0, 90.0])
    assert arc[1].name == "mic+90"
    assert_allclose(arc[1].xyz_m, (0.0, 2.0, 0.0), atol=1e-15)


def test_true_irs_are_irfft_of_transfer_and_cached():
    lab = VirtualLab(DEVICE, FS, 4096, cache_size=4)
    mics = mic_arc(1.0, [0.0, 45.0])
    irs = lab.true_irs(mics, 20.0)
    assert irs.shape == (2, 3, 4096) and irs.dtype == np.float64
    ref = np.fft.irfft(np.moveaxis(lab.transfer(lab.freqs_hz, mics, 20.0), 0, -1), n=4096)
    assert_allclose(irs, ref, rtol=0, atol=1e-14 * np.abs(ref).max())
    assert not irs.flags.writeable
    again = lab.true_irs(mics[::-1], 380.0)  # 380 == 20 modulo 360: served from the cache
    assert np.array_equal(again, irs[::-1])
    assert len(lab._cache) == 2
    lab.true_irs(mic_arc(1.0, [10.0, 20.0, 30.0]), 0.0)
    assert len(lab._cache) == 4  # least recently used entries dropped


def test_a_second_lab_of_the_same_unit_reuses_the_true_irs():
    """Calib run's verification opens a new lab of the unit it measured: the truth is computed once."""
    mics = mic_arc(1.0, [5.0])
    first = VirtualLab(DEVICE, FS, 4096).true_irs(mics, 33.0)
    second = VirtualLab(DEVICE, FS, 4096)
    second.transfer = None  # would fail if called
    assert np.array_equal(second.true_irs(mics, 33.0), first)
    other = VirtualLab(DEVICE, FS, 4096, speed_of_sound=340.0)  # other air: other physics
    assert not np.array_equal(other.true_irs(mics, 33.0), first)


def test_ears_are_free_field_to_centre_times_sphere():
    drv = DriverModel("d", (0.0, 0.12, 0.0), radius_m=0.03, rear_attenuation_db=6.0, fc_hz=50.0)
    lab = VirtualLab(DeviceModel((drv,)), FS)
    head = HeadPosition("seat", (1.2, 0.3, 0.0), 190.0)
    f = np.array([200.0, 2000.0, 9000.0])
    ears = lab.transfer(f, [EarReceiver(head, 0), EarReceiver(head, 1)])[:, :, 0]
    mic = lab.transfer(f, [MicReceiver("centre", head.xyz_m)])[:, 0, 0]
    # incidence angles by hand: ear directions at yaw +-100 deg, source direction from the centre
    to_src = np.array(drv.position_m) - head.xyz_m
    dist = np.linalg.norm(to_src)
    for ear, az in ((0, 190.0 + 100.0), (1, 190.0 - 100.0)):
        e = np.array([np.cos(np.deg2rad(az)), np.sin(np.deg2rad(az)), 0.0])
        theta = np.rad2deg(np.arccos(to_src @ e / dist))
        assert_allclose(ears[:, ear], mic * rigid_sphere_transfer(f, dist, theta), rtol=1e-10)


def test_ear_mirror_symmetry():
    # symmetric device, head on the axis facing it: left ear from "left" == right ear from "right"
    sym = DeviceModel((
        DriverModel("left", (0.0, 0.1, 0.0), axis=(1.0, 0.4, 0.0)),
        DriverModel("right", (0.0, -0.1, 0.0), axis=(1.0, -0.4, 0.0)),
    ))
    head = HeadPosition("centre", (1.0, 0.0, 0.0), 180.0)
    irs = VirtualLab(sym, FS).true_irs([EarReceiver(head, 0), EarReceiver(head, 1)])
    assert_allclose(irs[0, 0], irs[1, 1], atol=1e-12 * np.abs(irs).max())
    assert_allclose(irs[0, 1], irs[1, 0], atol=1e-12 * np.abs(irs).max())
    # facing the device, the listener's left ear (y < 0 side) is ipsilateral to the "right" driver
    e_left = np.sum(irs[0, 1] ** 2)
    e_right = np.sum(irs[0, 0] ** 2)
    assert e_left > e_right


def test_errors():
    lab = VirtualLab(DEVICE, FS, 1024)
    with pytest.raises(ProcedureError, match="ear must be 0 \\(left\\) or 1 \\(right\\), got 2"):
        EarReceiver(HeadPosition("c", (1.0, 0.0, 0.0), 180.0), 2)
    with pytest.raises(ProcedureError, match="has no head position"):
        lab.transfer(np.array([100.0]), [EarReceiver(None, 0)])
    with pytest.raises(ProcedureError, match=r"n_ir=1024 samples is too short"):
        lab.true_irs([MicReceiver("far", (10.0, 0.0, 0.0))])
    with pytest.raises(ProcedureError, match="coincides with a driver"):
        lab.transfer(np.array([100.0]), [MicReceiver("on", (0.0, 0.1, 0.0))])
    with pytest.raises(ProcedureError, match="head 'squash'"):
        lab.transfer(np.array([100.0]), [EarReceiver(HeadPosition("squash", (0.05, 0.0, 0.0), 0.0), 0)])
    with pytest.raises(ProcedureError, match="axis must not be the zero vector"):
        DriverModel("z", (0, 0, 0), axis=(0, 0, 0))
    with pytest.raises(ProcedureError, match="polarity must be 1 or -1, got 2"):
        DriverModel("p", (0, 0, 0), polarity=2)
    with pytest.raises(ProcedureError, match="fc_hz must be a positive number, got -5"):
        DriverModel("f", (0, 0, 0), fc_hz=-5.0)
    with pytest.raises(ProcedureError, match="xyz_m must be 3 finite numbers"):
        MicReceiver("bad", (1.0, 2.0))


def test_elevated_mics_see_the_piston_about_the_driver_axis():
    # The arc over elevation (spinorama, balloons) needs the directivity in 3-D: an up-firing and a
    # tilted driver, receivers all round the sphere, against 2 J1(ka sin t)/(ka sin t) x rear gain of the
    # angle t to the driver's own axis (the piston is axisymmetric: elevation is not special).
    from scipy.special import j1

    radius, rear = 0.03, 12.0
    axes = {"up": (0.0, 0.0, 1.0), "tilted": (np.cos(0.5) * np.cos(0.8), np.cos(0.5) * np.sin(0.8), np.sin(0.5))}
    dev = DeviceModel(tuple(DriverModel(n, (0.0, 0.0, 0.0), axis=a, radius_m=radius, rear_attenuation_db=rear,
                                        lowpass_hz=1e7) for n, a in axes.items()))
    lab = VirtualLab(dev, FS, 4096)
    f = np.array([500.0, 3000.0, 8000.0])
    rng = np.random.default_rng(3)
    u = rng.normal(size=(12, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    mics = [MicReceiver(f"m{i}", tuple(2.0 * v)) for i, v in enumerate(u)]
    t = lab.transfer(f, mics)  # [F, R, S]
    resp = np.abs(driver_response(f, 80.0, 0.707, 1e7))
    for s, a in enumerate(axes.values()):
        cos_t = u @ np.asarray(a)
        x = (2 * np.pi * f / C * radius) * np.sqrt(1 - cos_t**2)[:, None]
        gain = 10 ** (-rear * np.clip(-cos_t, 0, 1) ** 2 / 20)
        want = np.abs(2 * j1(x) / x) * gain[:, None] * resp / 2.0  # 1/r at 2 m, 1 Pa at 1 m
        assert_allclose(np.abs(t[:, :, s]).T, want, rtol=1e-9)
