"""Listening-area core: ear path geometry, cell phase error, interpolation against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.geometry import HeadPosition
from calib.procedure.load import load_procedure
from calib.rig.virtual_lab import unit_device
from calib.sim.lab import EarReceiver, VirtualLab
from calib.solve.area import (
    HEAD_RADIUS_M,
    HeadGrid,
    allowed_phase_error_rad,
    cell_phase_error_rad,
    ear_path_length_m,
    ear_positions_m,
    interpolate_ear_tfs,
)

AURORA = Path(__file__).resolve().parents[2] / "procedures" / "aurora5.toml"
C = 343.0


def test_ear_positions_face_the_device():
    ears = ear_positions_m(np.array([1.0, 0.0, 0.0]), np.array(180.0))
    # Facing -x, the left ear is on the device's -y side, 10 deg behind the interaural axis.
    az = np.deg2rad(280.0)
    assert_allclose(ears[0], [1 + HEAD_RADIUS_M * np.cos(az), HEAD_RADIUS_M * np.sin(az), 0.0], atol=1e-15)
    assert_allclose(ears[1, 1], -ears[0, 1], atol=1e-15)


def test_path_length_straight_and_round_the_head():
    a = HEAD_RADIUS_M
    src = np.array([[0.0, 0.0, 0.0]])
    # Ears exactly lateral (azimuth 90): theta = 90 deg, in the shadow for both:
    # tangent sqrt(R^2 - a^2) plus arc a (pi/2 - arccos(a/R)).
    length = ear_path_length_m(src, np.array([[1.0, 0.0, 0.0]]), np.array([180.0]), ear_azimuth_deg=90.0)
    assert_allclose(length[0, :, 0], np.sqrt(1 - a**2) + a * (np.pi / 2 - np.arccos(a)), rtol=1e-12)
    # Ear pointing at the source (ear azimuth 0 facing it): straight line R - a.
    length = ear_path_length_m(src, np.array([[1.0, 0.0, 0.0]]), np.array([180.0]), ear_azimuth_deg=0.0)
    assert_allclose(length[0, :, 0], 1 - a, rtol=1e-12)
    # The two branches meet at the tangent point (continuous in the angle).
    theta_t = np.rad2deg(np.arccos(a / 1.0))
    both = ear_path_length_m(src, np.array([[1.0, 0.0, 0.0]] * 2), np.array([180.0, 180.0]),
                             ear_azimuth_deg=theta_t)  # cos(theta) = a / R exactly
    assert_allclose(both[0, 0, 0], np.sqrt(1 - a**2), rtol=1e-9)


def test_path_length_rejects_bad_shapes_and_a_source_in_the_head():
    with pytest.raises(ValueError, match=r"need sources \[S, 3\]"):
        ear_path_length_m(np.zeros((2, 2)), np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ValueError, match="inside the head sphere"):
        ear_path_length_m(np.zeros((1, 3)), np.array([[0.05, 0.0, 0.0]]), np.zeros(1))


def test_allowed_phase_error_and_its_inverse():
    phi = allowed_phase_error_rad(15.0)
    assert_allclose(-20 * np.log10(2 * np.sin(phi / 2)), 15.0, rtol=1e-12)
    assert_allclose(phi, 0.1781, atol=1e-4)
    with pytest.raises(ValueError, match="cancellation_db must be > 0"):
        allowed_phase_error_rad(0.0)


def test_cell_phase_error_matches_the_small_shift_formula():
    # Two drivers d apart laterally, head at D: a lateral shift delta changes their
    # path difference by ~ delta d / D at both ears (the module docstring's estimate).
    d, dist, delta, f = 0.13, 1.0, 0.005, 6000.0
    src = np.array([[0.0, -d / 2, 0.0], [0.0, d / 2, 0.0]])
    phi = cell_phase_error_rad(f, src, np.array([dist, 0.0, 0.0]), 180.0, (0.0, delta, 0.0), C)
    assert_allclose(phi, 2 * np.pi * f * delta * d / (C * dist), rtol=0.05)
    # Depth barely matters for a symmetric pair: second order in d / D.
    phi_depth = cell_phase_error_rad(f, src, np.array([dist, 0.0, 0.0]), 180.0, (delta, 0.0, 0.0), C)
    assert phi_depth < 0.1 * phi


def test_head_grid_points_and_validation():
    grid = HeadGrid((0.9, 1.1), (-0.1, 0.0, 0.1), (180.0,), z_m=0.02)
    xyz, yaw = grid.points()
    assert grid.shape == (2, 3, 1) and xyz.shape == (6, 3)
    assert_allclose(xyz[4], [1.1, 0.0, 0.02])
    assert_allclose(yaw, 180.0)
    with pytest.raises(ValueError, match="y_m must be a non-empty ascending list"):
        HeadGrid((1.0,), (0.1, 0.0), (180.0,))


# ------------------------------------------------------------ against the simulator's truth
@pytest.fixture(scope="module")
def aurora_truth():
    """The Aurora 5 unit's true ear TFs on a coarse grid (25 cm lateral, 15 cm depth, 20 deg yaw)."""
    proc = load_procedure(AURORA)
    lab = VirtualLab(unit_device(proc, "AREA1"), proc.audio.sample_rate, n_ir=4096)
    src = np.array([d.position_m for d in proc.drivers])

    def tfs(xyz, yaws):
        heads = [HeadPosition(f"h{i}", tuple(p), float(w)) for i, (p, w) in enumerate(zip(xyz, yaws, strict=True))]
        irs = lab.true_irs([EarReceiver(h, e) for h in heads for e in (0, 1)])
        irs = irs.reshape(len(heads), 2, *irs.shape[1:])
        return np.moveaxis(np.fft.rfft(irs, axis=-1), -1, 1)  # [P, F, 2, S]

    grid = HeadGrid((0.85, 1.0, 1.15), (-0.25, 0.0, 0.25), (160.0, 180.0, 200.0))
    measured = tfs(*grid.points()).reshape(*grid.shape, lab.freqs_hz.size, 2, len(src))
    # Halfway between measured positions along every axis at once (the worst place).
    targets = np.array([[0.925, 0.125, 0.0], [1.075, -0.125, 0.0], [0.925, -0.125, 0.0]])
    yaws = np.array([190.0, 170.0, 170.0])
    return lab.freqs_hz, grid, measured, src, targets, yaws, np.moveaxis(tfs(targets, yaws), 0, 1)


def _normalized_error_db(est, truth, freqs):
    band = (freqs >= 500) & (freqs <= 6000)
    err = np.sum(np.abs(est - truth)[band] ** 2, axis=(0, 2, 3))
    return 10 * np.log10(err / np.sum(np.abs(truth[band]) ** 2, axis=(0, 2, 3)))


@pytest.mark.parametrize("method", ["complex", "polar"])
def test_interpolation_within_minus_20_db_of_truth_halfway(aurora_truth, method):
    freqs, grid, measured, src, targets, yaws, truth = aurora_truth
    est = interpolate_ear_tfs(freqs, measured, grid, src, targets, yaws, C, method=method)
    err_db = _normalized_error_db(est, truth, freqs)
    assert np.all(err_db < -20.0), err_db


def test_interpolation_needs_the_delay_alignment(aurora_truth):
    """Without taking the geometric delay out, the same grid interpolates far worse."""
    freqs, grid, measured, src, targets, yaws, truth = aurora_truth
    aligned = _normalized_error_db(interpolate_ear_tfs(freqs, measured, grid, src, targets, yaws, C), truth, freqs)
    far = np.array([[0.0, 0.0, 50.0]] * len(src))  # a source far above: almost the same delay everywhere
    naive = _normalized_error_db(interpolate_ear_tfs(freqs, measured, grid, far, targets, yaws, C), truth, freqs)
    assert np.all(naive > aligned + 15.0), (naive, aligned)


def test_interpolation_is_exact_on_grid_points(aurora_truth):
    freqs, grid, measured, src, *_ = aurora_truth
    xyz, yaw = grid.points()
    est = interpolate_ear_tfs(freqs, measured, grid, src, xyz[[4, 13]], yaw[[4, 13]], C)
    flat = measured.reshape(-1, *measured.shape[3:])
    assert_allclose(np.moveaxis(est, 1, 0), flat[[4, 13]], rtol=1e-9, atol=1e-15)


def test_interpolation_rejects_bad_input(aurora_truth):
    freqs, grid, measured, src, targets, yaws, _ = aurora_truth
    with pytest.raises(ValueError, match=r"grid_tfs must have shape .*\[Nx, Ny, Nyaw, F, 2, S\]"):
        interpolate_ear_tfs(freqs, measured[:2], grid, src, targets, yaws, C)
    with pytest.raises(ValueError, match="method must be 'complex' or 'polar'"):
        interpolate_ear_tfs(freqs, measured, grid, src, targets, yaws, C, method="cubic")
    with pytest.raises(ValueError, match="speed_of_sound must be > 0"):
        interpolate_ear_tfs(freqs, measured, grid, src, targets, yaws, 0.0)
