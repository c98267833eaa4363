"""Tests of calib.solve.fir: spectrum of the synthesized FIR against H, windows, alignment."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from calib.solve.fir import align_delays, arrival_delay_s, bulk_delay_samples, half_hann_window, synthesize_fir

FS, N_FFT = 48000, 4096
FREQS = np.fft.rfftfreq(N_FFT, 1 / FS)


def _smooth_filters():
    """[F, 2, 3]: band-passes (2nd-order Butterworth) of different corners with a 5 ms modeling delay."""
    out = np.empty((FREQS.size, 2, 3), complex)
    for i, (lo, hi) in enumerate([(60, 12000), (100, 8000), (200, 16000), (80, 5000), (150, 10000), (50, 15000)]):
        sos = signal.butter(2, [lo, hi], btype="bandpass", fs=FS, output="sos")
        _, h = signal.sosfreqz(sos, worN=FREQS, fs=FS)
        out[:, i // 3, i % 3] = h * (1 + 0.3 * i) * np.exp(-2j * np.pi * FREQS * 0.005)
    return out


def test_fir_spectrum_matches_H_in_band():
    H = _smooth_filters()
    fir = synthesize_fir(H, N_FFT, 2048, FS)
    assert fir.shape == (2, 3, 2048) and fir.dtype == float
    spectrum = np.moveaxis(np.fft.rfft(fir, n=N_FFT, axis=-1), -1, 0)
    band = (FREQS >= 200) & (FREQS <= 10000)
    err = np.linalg.norm(spectrum[band] - H[band], axis=0) / np.linalg.norm(H[band], axis=0)
    assert np.max(20 * np.log10(err)) < -40.0
    # the modeling delay sits at the peak; the windows start and end near zero
    assert bulk_delay_samples(fir) == pytest.approx(0.005 * FS, abs=5)
    assert np.max(np.abs(fir[..., [0, -1]])) < 1e-6 * np.max(np.abs(fir))


def test_half_hann_window():
    w = half_hann_window(16, 4, 4)
    assert_allclose(w[4:12], 1.0)
    assert_allclose(w[:4] + w[-4:], 1.0)  # sin^2 + cos^2: fade-in mirrors fade-out
    assert_allclose(w[:4], np.sin(np.pi / 2 * (np.arange(4) + 0.5) / 4) ** 2)


def test_bulk_delay_and_alignment():
    a = np.zeros((2, 3, 64))
    a[1, 2, 10] = 1.0
    b = np.zeros((1, 3, 40))
    b[0, 0, 30] = 0.5
    assert bulk_delay_samples(a) == 10 and bulk_delay_samples(b) == 30
    (a2, b2), shifts = align_delays(a, b)
    assert list(shifts) == [20, 0]
    assert a2.shape == (2, 3, 84) and b2.shape == (1, 3, 84)
    assert bulk_delay_samples(a2) == bulk_delay_samples(b2) == 30
    assert_allclose(a2[..., 20:], a)
    (a3, b3), shifts = align_delays(a, b, delays_samples=[12, 2])
    assert list(shifts) == [0, 10] and a3.shape[-1] == 64 and b3[0, 0, 40] == 0.5


def test_arrival_delay_of_delayed_plant():
    # two channels: 1/r point-source delays of 140 and 150 samples, the louder (nearer) one wins
    delays = np.array([140, 150]) / FS
    plant = np.exp(-2j * np.pi * FREQS[:, None] * delays) / (delays * 343.0)
    assert arrival_delay_s(plant, FREQS) == pytest.approx(140 / FS)
    with pytest.raises(ValueError, match="freqs_hz must be a full rfft grid"):
        arrival_delay_s(plant[:100], np.geomspace(1, 1000, 100))
    with pytest.raises(ValueError, match="plant must have F=2049 >= 2 bins on axis 0"):
        arrival_delay_s(plant[:100], FREQS)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones((100, 2)), N_FFT, 64, FS), r"H must have F = n_fft // 2 \+ 1 = 2049"),
        ((np.ones((2049, 2)), N_FFT, 5000, FS), r"n_taps must be in \[2, n_fft=4096\]"),
        ((np.ones((2049, 2)), N_FFT, 64, 0.0), "sample_rate must be > 0"),
        ((np.full((2049, 2), np.nan), N_FFT, 64, FS), "H contains NaN"),
    ],
)
def test_synthesize_errors(args, match):
    with pytest.raises(ValueError, match=match):
        synthesize_fir(*args)


def test_window_and_alignment_errors():
    with pytest.raises(ValueError, match="n_in \\+ n_out <= n_taps=8"):
        half_hann_window(8, 6, 6)
    with pytest.raises(ValueError, match="n_in \\+ n_out <= n_taps=64"):
        synthesize_fir(np.ones((2049, 1)), N_FFT, 64, FS, fade_in_s=0.001, fade_out_s=0.001)
    with pytest.raises(ValueError, match="at least one filter set"):
        align_delays()
    with pytest.raises(ValueError, match="delays_samples must be 2 integers"):
        align_delays(np.ones(4), np.ones(4), delays_samples=[1])
    with pytest.raises(ValueError, match="fir must have samples on its last axis"):
        bulk_delay_samples(np.ones((2, 0)))
