"""Fades, IR windows, FFT convolution, and the numerical core's import contract."""

import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.signals.convolve import fft_convolve, next_pow2
from calib.signals.windows import fade, half_hann, window_ir


def test_half_hann_values():
    w = half_hann(8)
    assert_allclose(w, 0.5 * (1 - np.cos(np.pi * np.arange(8) / 8)), atol=1e-15)
    assert w[0] == 0.0 and w[4] == pytest.approx(0.5) and np.all(np.diff(w) > 0)
    assert_allclose(half_hann(8, rising=False), w[::-1])
    assert half_hann(0).shape == (0,)
    with pytest.raises(ValueError, match="fade length must be >= 0"):
        half_hann(-1)


def test_fade_and_window_ir():
    x = np.ones((2, 20))
    y = fade(x, 4, 6)
    assert_allclose(y[0, :4], half_hann(4))
    assert_allclose(y[1, -6:], half_hann(6, rising=False))
    assert_allclose(y[:, 4:14], 1.0)
    h = np.arange(1.0, 11.0)
    assert_allclose(window_ir(h, 6, fade_out_samples=0), h[:6])
    padded = window_ir(h, 15, fade_out_samples=5)
    assert_allclose(padded[:10], h)
    assert np.all(padded[10:] == 0)
    w = window_ir(h, 10)  # default fade: length // 10 = 1 sample
    assert w[-1] == 0.0
    assert_allclose(w[:-1], h[:-1])
    with pytest.raises(ValueError, match="do not fit"):
        fade(x, 15, 10)
    with pytest.raises(ValueError, match="window length must be > 0"):
        window_ir(h, 0)
    with pytest.raises(ValueError, match="scalar"):
        window_ir(np.float64(1), 4)
    with pytest.raises(ValueError, match="scalar"):
        fade(np.float64(1))


def test_fft_convolve_matches_direct_convolution():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, 500))
    h = rng.standard_normal((4, 37))
    y = fft_convolve(x, h)
    assert y.shape == (3, 4, 536)
    for i in range(3):
        for j in range(4):
            assert_allclose(y[i, j], np.convolve(x[i, 0], h[j]), atol=1e-10)
    assert_allclose(fft_convolve(x, h, n_out=100), y[..., :100])
    longer = fft_convolve(x[0, 0], h[0], n_out=600)
    assert longer.shape == (600,) and np.all(longer[536:] == 0)


def test_fft_convolve_errors():
    with pytest.raises(ValueError, match="do not broadcast"):
        fft_convolve(np.ones((2, 10)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="non-empty samples axis"):
        fft_convolve(np.ones(10), np.ones(0))
    with pytest.raises(ValueError, match="n_out must be >= 0"):
        fft_convolve(np.ones(10), np.ones(3), n_out=-1)


def test_next_pow2():
    # the smallest 2**k >= n, exact in integers (also at 2**k ± 1 where a float log2 is closest to k)
    cases = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 1000: 1024, 1024: 1024, 1025: 2048, 12000.0: 16384, 0.3: 1}
    assert {n: next_pow2(n) for n in cases} == cases
    for k in (20, 40, 60):
        assert next_pow2(2**k - 1) == next_pow2(2**k) == 2**k and next_pow2(2**k + 1) == 2 ** (k + 1)
    assert all(next_pow2(n) == int(2 ** np.ceil(np.log2(n))) for n in range(1, 5000))
    with pytest.raises(ValueError, match="n: expected a positive length, got 0"):
        next_pow2(0)
    with pytest.raises(ValueError, match="n: expected a positive length, got -3"):
        next_pow2(-3.5)


def test_numerical_core_imports_no_io():
    code = (
        "import importlib, pkgutil, sys, calib.signals as s\n"
        "for m in pkgutil.iter_modules(s.__path__): importlib.import_module('calib.signals.' + m.name)\n"
        "bad = [m for m in ('h5py', 'sounddevice', 'matplotlib', 'jack', 'serial') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
