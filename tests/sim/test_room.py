"""Image-source room against hand-built images and path-length delays."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import ProcedureError
from calib.sim.driver import driver_directivity, driver_response
from calib.sim.lab import MicReceiver, VirtualLab
from calib.sim.params import DeviceModel, DriverModel, RoomModel
from calib.sim.propagation import point_source
from calib.sim.room import image_lattice, image_sources


def test_image_counts_per_order():
    _, _, order = image_lattice(4)
    counts = np.bincount(order)
    # in 3-D there are 4 k^2 + 2 images of order k >= 1
    assert counts.tolist() == [1, 6, 18, 38, 66]


def test_first_order_images_are_wall_mirrors():
    dims = np.array([5.0, 4.0, 3.0])
    src = np.array([1.0, 1.5, 0.7])
    img = image_sources(src, dims, 1, 0.8)
    expected = {
        (1.0, 1.5, 0.7),
        (-1.0, 1.5, 0.7), (9.0, 1.5, 0.7),
        (1.0, -1.5, 0.7), (1.0, 6.5, 0.7),
        (1.0, 1.5, -0.7), (1.0, 1.5, 5.3),
    }
    got = {tuple(np.round(p, 12)) for p in img.positions_m}
    assert got == expected
    assert_allclose(img.gain, np.where(img.order == 0, 1.0, 0.8))
    # axis mirrored with the same sign flips as the position (relative to the walls)
    floor = np.flatnonzero(np.isclose(img.positions_m[:, 2], -0.7))[0]
    assert_allclose(img.mirror_axes(np.array([0.6, 0.0, -0.8]))[floor], [0.6, 0.0, 0.8])


def _omni(name="d", axis=(1.0, 0.0, 0.0)):
    # tiny piston, no rear loss, low corner, corner-less top: almost a pure monopole
    return DriverModel(name, (0.0, 0.0, 0.0), axis=axis, radius_m=1e-4, sensitivity_pa=1.0,
                       fc_hz=20.0, q=0.5, lowpass_hz=1e7, rear_attenuation_db=0.0)


def test_floor_reflection_delay_and_amplitude():
    fs, c, beta = 48000, 343.0, 0.5
    dx = c / fs  # one sample of travel
    d, h = 240 * dx, 160 * dx  # direct 240 samples; floor path sqrt(d^2 + (2h)^2) = 400 samples
    room = RoomModel((40.0, 40.0, 10.0), (20.0, 20.0, h), beta, 1)
    mic = [MicReceiver("m", (d, 0.0, 0.0))]
    dev = DeviceModel((_omni(),))
    ir_room = VirtualLab(dev, fs, 16384, c, room).true_irs(mic)[0, 0]
    ir_free = VirtualLab(dev, fs, 16384, c, None).true_irs(mic)[0, 0]
    refl = ir_room - ir_free
    floor_path = np.hypot(d, 2 * h)
    assert_allclose(floor_path / dx, 400.0, rtol=1e-12)
    window = refl[:2000]  # before the ceiling reflection (about 2490 samples)
    assert int(np.argmax(np.abs(window))) == 400
    assert_allclose(window[400], beta / floor_path, rtol=0.01)  # 1 % : the 20 Hz high-pass tail
    assert int(np.argmax(np.abs(ir_free))) == 240


def test_room_transfer_equals_hand_built_first_order_sum():
    fs, c, beta = 48000, 343.0, 0.7
    dims, origin = np.array([6.0, 5.0, 3.0]), np.array([2.0, 2.5, 1.2])
    drv = DriverModel("tw", (0.05, 0.1, 0.0), axis=(1.0, 0.3, -0.2), radius_m=0.03, fc_hz=300.0, q=0.8,
                      lowpass_hz=18000.0, rear_attenuation_db=8.0)
    mic = np.array([1.5, -0.4, 0.2])
    lab = VirtualLab(DeviceModel((drv,)), fs, 8192, c, RoomModel(tuple(dims), tuple(origin), beta, 1))
    f = np.array([200.0, 1000.0, 5000.0])
    got = lab.transfer(f, [MicReceiver("m", tuple(mic))])[:, 0, 0]
    src = np.asarray(drv.position_m) + origin
    axis = np.asarray(drv.axis)
    ref = np.zeros(3, complex)
    images = [(src, axis, 1.0)]
    for ax in range(3):
        for wall in (0.0, dims[ax]):
            p, a = src.copy(), axis.copy()
            p[ax] = 2 * wall - p[ax]
            a[ax] = -a[ax]
            images.append((p, a, beta))
    for p, a, g in images:
        v = mic + origin - p
        r = np.linalg.norm(v)
        ref += g * driver_directivity(f, 0.03, v @ a / r, 8.0, c) * point_source(f, r, c)
    ref *= driver_response(f, 300.0, 0.8, 18000.0)
    assert_allclose(got, ref, rtol=1e-12)


def test_zero_reflection_is_free_field_and_errors():
    dev = DeviceModel((_omni(),))
    mic = [MicReceiver("m", (1.0, 0.2, 0.0))]
    f = np.array([500.0, 2000.0])
    room = RoomModel((5.0, 4.0, 3.0), (2.0, 2.0, 1.0), 0.0, 3)
    assert_allclose(VirtualLab(dev, 48000, room=room).transfer(f, mic), VirtualLab(dev, 48000).transfer(f, mic),
                    rtol=1e-14)
    with pytest.raises(ProcedureError, match="not inside the room"):
        RoomModel((5.0, 4.0, 3.0), (6.0, 2.0, 1.0))
    with pytest.raises(ProcedureError, match="reflection_coefficient must be in"):
        RoomModel((5.0, 4.0, 3.0), (2.0, 2.0, 1.0), 1.2)
    with pytest.raises(ProcedureError, match=r"receiver at \(3.5, 0.0, 0.0\) m \(lab frame\) is outside the room"):
        VirtualLab(dev, 48000, room=room).transfer(f, [MicReceiver("out", (3.5, 0.0, 0.0))])
    with pytest.raises(ValueError, match="inside the room"):
        image_sources(np.array([7.0, 1.0, 1.0]), np.array([5.0, 4.0, 3.0]), 1, 0.5)
    with pytest.raises(ValueError, match="max_order must be >= 0"):
        image_lattice(-1)


def test_first_reflection_paths_by_hand():
    """Source and receiver 1.2 m above the floor, 2 m apart: the floor path is sqrt(2^2 + 2.4^2)."""
    from calib.sim.room import reflection_paths_m

    dims = np.array([7.0, 6.0, 3.2])
    src = np.array([[2.5, 3.0, 1.2], [2.5, 3.1, 1.2]])
    rec = np.array([[4.5, 3.0, 1.2], [4.5, 3.0, 2.2]])
    direct, first = reflection_paths_m(src, rec, dims)
    assert direct.shape == first.shape == (2, 2)
    assert_allclose(direct[0, 0], 2.0)
    assert_allclose(first[0, 0], np.hypot(2.0, 2.4))  # floor (the ceiling is 2 m up: longer)
    # 2.2 m high receiver: the ceiling (1.0 m above it, 2.0 m above the source) comes first
    assert_allclose(first[1, 0], np.hypot(2.0, 3.0))
    assert_allclose(direct[0, 1], np.hypot(2.0, 0.1))
    with pytest.raises(ValueError, match="receivers must lie inside the room"):
        reflection_paths_m(src, np.array([[7.5, 3.0, 1.2]]), dims)


def test_ears_on_a_coarse_sphere_grid_match_the_exact_series():
    """The cubic spline over the 50 Hz series grid is within -90 dB of the series on every bin."""
    import calib.sim.lab as lab_module
    from calib.geometry import HeadPosition

    room = RoomModel((5.0, 4.0, 3.0), (2.0, 2.0, 1.2), 0.6, 1)
    lab = VirtualLab(DeviceModel((_omni("a"), _omni("b", (0.0, 1.0, 0.0)))), 48000, n_ir=2048, room=room)
    freqs = lab.freqs_hz
    src, _, _ = lab._sources(10.0)
    head = HeadPosition("h", (1.0, 0.05, 0.0), 175.0)
    coarse = lab._sphere_smooth(freqs, src, np.asarray(head.xyz_m), head.yaw_deg)
    assert lab_module.SPHERE_GRID_HZ // (freqs[1] - freqs[0]) > 1  # the test really interpolates
    from calib.sim.sphere import head_to_ear_transfer

    exact = head_to_ear_transfer(freqs, src, np.asarray(head.xyz_m), head.yaw_deg)
    assert np.max(np.abs(coarse - exact)) / np.max(np.abs(exact)) < 10 ** (-90 / 20)


@pytest.mark.parametrize("preset", ["treated_booth", "typical_lab", "bare_room"])
def test_room_presets_fill_the_room_and_fields_override_them(preset):
    from calib.procedure.spec import ROOM_PRESETS, SimRoom

    room = SimRoom(preset=preset)
    assert room.dimensions_m == ROOM_PRESETS[preset]["dimensions_m"]
    assert room.device_position_m[2] == 1.2  # a table-height device in every preset
    assert room.max_order >= 3
    assert SimRoom(preset=preset, reflection_coefficient=0.1).reflection_coefficient == 0.1
    assert SimRoom(preset="bare_room").reflection_coefficient == 0.85


def test_room_geometry_refuses_a_device_outside():
    from pydantic import ValidationError

    from calib.procedure.spec import SimRoom

    with pytest.raises(ValidationError, match=r"device_position_m \[2.5, 3.0, 4.0\] must lie inside the room"):
        SimRoom(dimensions_m=(7.0, 6.0, 3.2), device_position_m=(2.5, 3.0, 4.0))
