"""Tests of calib.solve.regularized against per-bin references and a 2x2 free-field inversion."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.solve.regularized import TikhonovSolver, reference_gain, regularized_solve

C_SOUND = 343.0


def _random(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _naive(plant, target, beta, weights):
    """Explicit normal-equation formula, one bin at a time."""
    out = []
    for f in range(plant.shape[0]):
        c, d, w = plant[f], target[f], np.diag(weights[f])
        a = c.conj().T @ w @ c + beta[f] * np.eye(c.shape[1])
        out.append(np.linalg.inv(a) @ c.conj().T @ w @ d)
    return np.array(out)


@pytest.mark.parametrize("n_recv, n_drv", [(6, 4), (3, 5), (4, 4)])
def test_equals_naive_formula(n_recv, n_drv):
    rng = np.random.default_rng(1)
    plant = _random(rng, (7, n_recv, n_drv))
    target = _random(rng, (7, n_recv, 2))
    beta = rng.uniform(0.01, 2.0, 7)
    weights = rng.uniform(0.2, 3.0, (7, n_recv))
    got = regularized_solve(plant, target, beta, weights)
    assert got.shape == (7, n_drv, 2)
    assert_allclose(got, _naive(plant, target, beta, weights), rtol=1e-9, atol=1e-12)
    # [E] weights broadcast over bins, scalar beta
    got = regularized_solve(plant, target, 0.3, weights[0])
    assert_allclose(got, _naive(plant, target, np.full(7, 0.3), np.tile(weights[0], (7, 1))), rtol=1e-9, atol=1e-12)


def test_beta_zero_is_least_squares_or_minimum_norm():
    rng = np.random.default_rng(2)
    tall, wide = _random(rng, (5, 6, 3)), _random(rng, (5, 3, 6))
    d_tall, d_wide = _random(rng, (5, 6, 2)), _random(rng, (5, 3, 2))
    ref_tall = np.array([np.linalg.lstsq(tall[f], d_tall[f], rcond=None)[0] for f in range(5)])
    ref_wide = np.array([np.linalg.pinv(wide[f]) @ d_wide[f] for f in range(5)])
    assert_allclose(regularized_solve(tall, d_tall, 0.0), ref_tall, rtol=1e-9, atol=1e-12)
    assert_allclose(regularized_solve(wide, d_wide, 0.0), ref_wide, rtol=1e-9, atol=1e-12)


def test_large_beta_tends_to_scaled_matched_filter():
    rng = np.random.default_rng(3)
    plant, target = _random(rng, (4, 5, 3)), _random(rng, (4, 5, 1))
    weights = rng.uniform(0.5, 2.0, 5)
    beta = 1e9
    matched = np.conj(np.swapaxes(plant, 1, 2)) @ (weights[:, None] * target)
    # H = (C^H W C + beta)^-1 C^H W D = C^H W D / beta (1 + O(|C|^2 / beta))
    assert_allclose(beta * regularized_solve(plant, target, beta, weights), matched, rtol=1e-7)


def test_solver_reuse_matches_direct_solve_for_stacked_betas():
    rng = np.random.default_rng(4)
    plant, target = _random(rng, (6, 4, 3)), _random(rng, (6, 4, 2))
    solver = TikhonovSolver.from_plant(plant)
    coords = solver.project(target)
    betas = np.array([np.full(6, 0.1), np.full(6, 10.0)])
    stacked = solver.solve_projected(coords, betas)
    assert stacked.shape == (2, 6, 3, 2)
    for i in range(2):
        assert_allclose(stacked[i], regularized_solve(plant, target, betas[i]), rtol=1e-12)


def _free_field(src_xyz, rcv_xyz, freqs):
    """Point-source plant e^{-jkr}/r, [F, receivers, sources]."""
    r = np.linalg.norm(rcv_xyz[:, None, :] - src_xyz[None, :, :], axis=-1)
    return np.exp(-2j * np.pi * freqs[:, None, None] / C_SOUND * r) / r


def test_two_by_two_inversion_gives_delayed_identity():
    freqs = np.fft.rfftfreq(1024, 1 / 48000)
    sources = np.array([[0.0, 0.075, 0.0], [0.0, -0.075, 0.0]])
    ears = np.array([[1.0, 0.0875, 0.0], [1.0, -0.0875, 0.0]])
    plant = _free_field(sources, ears, freqs)
    g = reference_gain(plant)
    delay = np.exp(-2j * np.pi * freqs * 0.005)
    target = (g * delay)[:, None, None] * np.eye(2)
    H = regularized_solve(plant, target, 1e-8 * g**2)
    band = (freqs >= 100) & (freqs <= 10000)
    err = np.linalg.norm(plant @ H - target, axis=(1, 2)) / np.linalg.norm(target, axis=(1, 2))
    assert np.max(20 * np.log10(err[band])) < -60.0


def test_reference_gain_is_rms_and_floored():
    plant = np.zeros((3, 2, 2), complex)
    plant[1] = [[3, 4j], [0, 0]]  # mean |c|^2 = 25 / 4
    plant[2] = 1.0
    g = reference_gain(plant, floor_rel=1e-6)
    assert_allclose(g, [2.5e-6, 2.5, 1.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(plant=np.ones((3, 2))), r"plant must have shape \[F, E, S\]"),
        (dict(plant=np.full((2, 2, 2), np.nan)), "NaN or infinite"),
        (dict(weights=np.ones(3)), r"weights must have shape \[E\]"),
        (dict(weights=-np.ones(2)), "weights must be finite and >= 0"),
        (dict(beta=-1.0), "beta must be finite and >= 0"),
        (dict(beta=np.ones(5)), r"beta must be a float or have shape \[F\]"),
        (dict(target=np.ones((2, 3, 1))), r"target must have shape \[F, E, K\]"),
    ],
)
def test_value_errors(kwargs, match):
    args = dict(plant=np.ones((2, 2, 2)), target=np.ones((2, 2, 1)), beta=0.1, weights=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        regularized_solve(**args)


def test_reference_gain_rejects_1d():
    with pytest.raises(ValueError, match=r"plant must have shape \[F, \.\.\.\]"):
        reference_gain(np.ones(4))
