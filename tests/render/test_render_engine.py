"""Render engine against direct np.convolve references."""

from __future__ import annotations

import numpy as np
import pytest

from calib.render.in_memory import effective_fir, render, render_inputs
from calib.render.upmix import upmix


def _reference_feeds(fir: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """sum_k fir[k, s] * inputs[k] by np.convolve (direct, independent of FFT code)."""
    k_n, s_n, t = fir.shape
    out = np.zeros((s_n, inputs.shape[-1] + t - 1))
    for k in range(k_n):
        for s in range(s_n):
            out[s] += np.convolve(inputs[k], fir[k, s].astype(np.float64))
    return out


def test_render_inputs_matches_direct_convolution(cal):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5000))
    y = render_inputs(cal, x)
    assert y.shape == (3, 5000 + 64 - 1)
    ref = _reference_feeds(cal.fir, x)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())
    # One input alone (verification): only its filters contribute.
    alone = np.zeros_like(x)
    alone[1] = x[1]
    np.testing.assert_allclose(
        render_inputs(cal, alone), _reference_feeds(cal.fir[1:2], x[1:2]), rtol=1e-6, atol=1e-9 * np.abs(ref).max()
    )


@pytest.mark.parametrize(("tv", "delay"), [(1, 0), (16, 5)])
def test_render_is_upmix_virtualizer_then_fir(make_cal, tv, delay):
    cal = make_cal(virtualizer_taps=tv, delay_samples=delay, n_drivers=2)
    rng = np.random.default_rng(2)
    stereo = rng.standard_normal((2, 6000))
    y = render(cal, stereo)
    n_out = 6000 + cal.taps + tv - 2
    assert y.shape == (2, n_out)
    # Reference: the chain of the design, stage by stage, with np.convolve.
    lp, rp, c = upmix(stereo, cal.sample_rate)
    v = cal.virtualizer.astype(np.float64)
    lv = np.convolve(v[0, 0], lp) + np.convolve(v[0, 1], rp)
    rv = np.convolve(v[1, 0], lp) + np.convolve(v[1, 1], rp)
    cd = np.zeros_like(lv)
    cd[delay : delay + c.size] = c  # C is delayed by the virtualizer's bulk delay
    ref = _reference_feeds(cal.fir, np.stack([lv, rv, cd]))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_effective_fir_of_unit_virtualizer_is_the_fir(cal):
    eff = effective_fir(cal)
    assert eff.shape == cal.fir.shape
    np.testing.assert_allclose(eff, cal.fir, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(eff.astype(np.float32), cal.fir)


def test_passthrough_calibration_returns_the_stereo(make_cal):
    # L -> driver 0, R -> driver 1, C -> both: the drivers get L' + C = L and R' + C = R.
    cal = make_cal(n_drivers=2, taps=4)
    fir = np.zeros((3, 2, 4), np.float32)
    fir[0, 0, 0] = fir[1, 1, 0] = fir[2, 0, 0] = fir[2, 1, 0] = 1.0
    cal.fir = fir
    rng = np.random.default_rng(3)
    stereo = rng.standard_normal((2, 4000)) + rng.standard_normal(4000)
    y = render(cal, stereo)
    np.testing.assert_allclose(y[:, :4000], stereo, atol=1e-9)
    np.testing.assert_allclose(y[:, 4000:], 0.0, atol=1e-9)


def test_shape_errors(cal):
    with pytest.raises(ValueError, match=r"stereo: expected shape \[2, N\], got \[1, 10\]"):
        render(cal, np.zeros((1, 10)))
    with pytest.raises(ValueError, match=r"inputs: expected shape \[K=3, N\], got \[2, 10\]"):
        render_inputs(cal, np.zeros((2, 10)))
