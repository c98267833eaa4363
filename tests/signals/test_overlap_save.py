"""Overlap-save convolution with a FIR matrix (calib.signals.overlap_save) against scipy's oaconvolve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import oaconvolve

from calib.signals.overlap_save import OverlapSave, best_fft_length, convolve_fir_matrix, cost_per_sample


@pytest.mark.parametrize(
    ("n", "taps", "block", "nfft", "dtype", "tol"),
    [
        (5000, 300, 777, None, np.float64, 1e-12),
        (10, 64, 3, 64, np.float64, 1e-12),
        (4000, 1, 4000, 8, np.float64, 1e-12),
        # float32 transforms: rounding of a few 1e-7 of the peak, as the float32 WAV the render writes.
        (30000, 2303, 4096, None, np.float32, 1e-6),
    ],
)
def test_overlap_save_equals_oaconvolve(n, taps, block, nfft, dtype, tol):
    rng = np.random.default_rng(3)
    x, h = rng.standard_normal((3, n)), rng.standard_normal((3, 2, taps)) * np.exp(-np.arange(taps) / (taps / 4))
    ref = sum(oaconvolve(x[k][None, :], h[k], axes=-1) for k in range(3))
    conv = OverlapSave(h, nfft, dtype)
    got = np.concatenate([*(conv.push(x[:, i : i + block]) for i in range(0, n, block)), conv.finish()], axis=-1)
    assert got.shape == (2, n + taps - 1) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref).max())


def test_overlap_save_default_fft_length_has_the_least_work_per_output_sample():
    conv = OverlapSave(np.ones((3, 5, 2303)))
    # Candidates 2^a and 3 * 2^a from 2 to 8 filter lengths: 6144, 8192, 12288, 16384. Per output sample,
    # (8 n log2(n) + 6 * 15 * (n / 2 + 1)) / (n - 2302): 16384 -> 182.7, 12288 -> 189.0, 8192 -> 207.3.
    assert conv.nfft == 16384 and conv.step == 16384 - 2303 + 1
    np.testing.assert_allclose(cost_per_sample(3, 5, 2303, 16384), (8 * 16384 * 14 + 90 * 8193) / 14082, rtol=1e-12)
    assert best_fft_length(3, 5, 2303) == 16384 and best_fft_length(1, 1, 100) in (256, 384, 512, 768)


@pytest.mark.parametrize(("n", "taps", "n_out"), [(500, 700, 500), (500, 700, 1199), (5000, 64, 5000), (3, 1, 3)])
def test_convolve_fir_matrix_is_the_sum_of_the_pairs_convolutions(n, taps, n_out):
    rng = np.random.default_rng(5)
    x, h = rng.standard_normal((3, n)), rng.standard_normal((3, 4, taps))
    ref = oaconvolve(x[:, None, :], h, axes=-1).sum(axis=0)[:, :n_out]
    got = convolve_fir_matrix(x, h, n_out)
    assert got.shape == (4, n_out)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_overlap_save_errors():
    with pytest.raises(ValueError, match=r"fir: expected shape \[K, S, L >= 1\], got \[2, 3\]"):
        OverlapSave(np.ones((2, 3)))
    with pytest.raises(ValueError, match="nfft: expected >= the filter length 64, got 32"):
        OverlapSave(np.ones((1, 1, 64)), 32)
    with pytest.raises(ValueError, match=r"n_out: expected 0 <= n_out <= N \+ L - 1 = 12, got 13"):
        convolve_fir_matrix(np.ones((1, 10)), np.ones((1, 1, 3)), 13)
