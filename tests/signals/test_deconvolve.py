"""Loopback-referenced and analytic deconvolution against known FIRs."""

import numpy as np
import pytest
import scipy.fft
import scipy.signal
from numpy.testing import assert_allclose

from calib.signals.deconvolve import band_weight, deconvolve, deconvolve_with_sweep, regularized_inverse
from calib.signals.sweep import synchronized_sweep

FS = 48000
BAND = (50.0, 10000.0)


@pytest.fixture(scope="module")
def sweep():
    return synchronized_sweep(25.0, 20000.0, 0.5, FS)


def decaying_fir(rng, n=600, delay=37.3, tau=50.0):
    """Random decaying FIR behind a windowed-sinc fractional delay (propagation)."""
    t = np.arange(n)
    onset = np.sinc(t - delay) * np.clip(1 - ((t - delay) / 32) ** 2, 0, None) ** 2  # windowed sinc
    tail = rng.standard_normal(n) * np.exp(-(t - delay) / tau) * (t > delay + 2)
    return onset + 0.3 * tail


def in_band_error_db(est, truth, band, n_fft):
    """Energy of the difference over energy of the truth, on the bins of ``band``."""
    f = np.fft.rfftfreq(n_fft, 1 / FS)
    b = (f >= band[0]) & (f <= band[1])
    E = np.fft.rfft(est, n_fft)[..., b]
    T = np.fft.rfft(truth, n_fft)[..., b]
    return 10 * np.log10(np.sum(np.abs(E - T) ** 2, axis=-1) / np.sum(np.abs(T) ** 2, axis=-1))


def test_loopback_deconvolution_recovers_fir_through_interface_and_latency(sweep):
    rng = np.random.default_rng(7)
    h = decaying_fir(rng)
    # interface response: a 15 Hz DC-blocking high-pass and a short random FIR;
    # latency 1234 samples. Both act on the microphone and the loopback channel.
    b_hp, a_hp = scipy.signal.butter(2, 15.0, "highpass", fs=FS)
    g = np.r_[1.0, 0.2 * rng.standard_normal(15) * np.exp(-np.arange(15) / 4)]
    latency = 1234
    n = sweep.n_samples + FS // 4
    x = np.r_[sweep.signal, np.zeros(n - sweep.n_samples)]

    def interface(s):
        s = scipy.signal.lfilter(b_hp, a_hp, np.convolve(s, g)[:n])
        return np.r_[np.zeros(latency), s[: n - latency]]

    recorded = interface(np.convolve(x, h)[:n])
    loopback = interface(x)
    ir = deconvolve(recorded, loopback, *BAND, FS)
    n_fft = scipy.fft.next_fast_len(n, real=True)  # the default circular period
    assert ir.shape == (n_fft,)
    # full circular IR: the regularization is 1e-8 in band, so in band the
    # division is exact (no band-limiting of the truth needed).
    assert in_band_error_db(ir, h, BAND, n_fft) < -60
    # windowed to the first 2048 samples and compared with the truth band-limited
    # the same way (the same regularization factor R = |X|^2/(|X|^2 + eps)):
    f = np.fft.rfftfreq(n_fft, 1 / FS)
    X = np.fft.rfft(loopback, n_fft)
    R = (regularized_inverse(X, f, *BAND) * X).real
    truth = np.fft.irfft(np.fft.rfft(h, n_fft) * R, n_fft)
    assert in_band_error_db(ir[:2048], truth[:2048], BAND, 8192) < -60
    # the time origin is the output instant: the same IR one sample late is far off
    assert in_band_error_db(ir[1:2049], truth[:2048], BAND, 8192) > -10


def test_broadcasting_over_channels(sweep):
    rng = np.random.default_rng(1)
    n = sweep.n_samples + 4000
    x = np.r_[sweep.signal, np.zeros(4000)]
    hs = np.stack([[decaying_fir(rng, 300, d) for d in (10.0, 20.5, 30.25)] for _ in range(2)])  # [2, 3, 300]
    y = scipy.signal.fftconvolve(x[None, None, :], hs, axes=-1)[..., :n]
    ir = deconvolve(y, x, *BAND, FS, n_fft=2**16)
    assert ir.shape == (2, 3, 2**16)
    assert np.all(in_band_error_db(ir, hs, BAND, 2**16) < -60)
    # one reference per leading row (e.g. one loopback per capture) broadcasts too
    ir2 = deconvolve(y, np.stack([x, 0.5 * x])[:, None, :], *BAND, FS, n_fft=2**16)
    assert_allclose(ir2[0], ir[0], atol=1e-10)
    assert_allclose(ir2[1], 2 * ir[1], atol=1e-10)


def test_analytic_inverse_without_loopback(sweep):
    rng = np.random.default_rng(3)
    h = decaying_fir(rng, 400, 12.6)
    n = sweep.n_samples + 8000
    x = np.r_[sweep.signal, np.zeros(8000)]
    y = np.convolve(x, h)[:n]
    ir = deconvolve_with_sweep(y, sweep, 100.0, 10000.0)
    # the stationary-phase spectrum is an approximation (Fresnel ripple): -40 dB
    assert in_band_error_db(ir, h, (100.0, 10000.0), ir.shape[-1]) < -40
    # without a loopback the latency stays in the IR
    y_late = np.r_[np.zeros(500), y[:-500]]
    ir_late = deconvolve_with_sweep(y_late, sweep, 100.0, 10000.0)
    assert_allclose(np.roll(ir, 500), ir_late, atol=1e-9 * np.max(np.abs(ir)))


def test_band_weight_shape():
    f = np.array([0.0, 25.0, 50 / 2**0.5, 50.0, 1000.0, 10000.0, 10000 * 2**0.5, 20000.0])
    w = band_weight(f, 50.0, 10000.0, transition_octaves=1.0)
    assert_allclose(w, [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-12)
    assert_allclose(band_weight(f, 0.0, 10000.0)[:2], [1.0, 1.0])  # f_lo = 0: no low edge
    assert_allclose(band_weight(f, 50.0, 10000.0, 0.0), [0, 0, 0, 1, 1, 1, 0, 0])


def test_regularized_inverse_is_exact_in_band_and_bounded_outside():
    f = np.linspace(0, 24000, 1001)
    X = np.where((f > 20) & (f < 20000), 1.0 / np.sqrt(np.maximum(f, 1)), 1e-9) * np.exp(1j * f)
    G = regularized_inverse(X, f, 100.0, 10000.0)
    inb = (f >= 100) & (f <= 10000)
    assert_allclose(G[inb] * X[inb], 1.0, atol=1e-5)
    assert np.max(np.abs(G[~((f > 20) & (f < 20000))])) < 1e-3  # no noise amplification


@pytest.mark.parametrize(
    "rec_shape, ref_shape, kwargs, match",
    [
        ((2, 100), (3, 100), {}, "does not broadcast"),
        ((100,), (100,), dict(n_fft=50), "n_fft=50 is shorter"),
        ((100,), (100,), dict(f_lo=500.0, f_hi=100.0), "0 <= f_lo < f_hi"),
        ((100,), (100,), dict(f_hi=30000.0), "above the Nyquist"),
        ((100,), (), {}, "scalar"),
        ((100,), (100,), dict(sample_rate=0.0), "sample_rate must be > 0"),
    ],
)
def test_deconvolve_errors(rec_shape, ref_shape, kwargs, match):
    args = dict(f_lo=100.0, f_hi=1000.0, sample_rate=FS) | kwargs
    rec = np.ones(rec_shape)
    ref = np.ones(ref_shape)
    with pytest.raises(ValueError, match=match):
        deconvolve(rec, ref, **args)


def test_deconvolve_errors_on_dead_reference_and_empty_band():
    with pytest.raises(ValueError, match="no energy in the band"):
        deconvolve(np.ones(1000), np.zeros(1000), 100.0, 1000.0, FS)
    with pytest.raises(ValueError, match="no frequency bin lies in the band"):
        deconvolve(np.ones(16), np.ones(16), 100.0, 200.0, FS)


def test_deconvolve_with_sweep_errors(sweep):
    with pytest.raises(ValueError, match="outside the sweep range"):
        deconvolve_with_sweep(np.ones(sweep.n_samples), sweep, 10.0, 1000.0)
    with pytest.raises(ValueError, match="scalar"):
        deconvolve_with_sweep(np.float64(1.0), sweep, 100.0, 1000.0)
