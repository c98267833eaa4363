"""SNR estimate, peak level, clipping and latency detection."""

import numpy as np
import pytest
import scipy.fft
from numpy.testing import assert_allclose, assert_array_equal

from calib.signals.deconvolve import deconvolve, regularized_inverse
from calib.signals.quality import estimate_latency_samples, is_clipped, noise_window, peak_dbfs, snr_db
from calib.signals.sweep import synchronized_sweep

FS = 48000
BAND = (50.0, 10000.0)
IR_LENGTH = 2400


@pytest.mark.parametrize("sigma", [3e-4, 3e-3, 1e-2])
def test_snr_matches_analytic(sigma):
    sweep = synchronized_sweep(25.0, 16000.0, 0.5, FS)
    n = scipy.fft.next_fast_len(sweep.n_samples + FS // 4, real=True)  # circular period = recording
    x = np.r_[sweep.signal, np.zeros(n - sweep.n_samples)]
    rng = np.random.default_rng(11)
    t = np.arange(800)
    h = 0.1 * rng.standard_normal(t.size) * np.exp(-t / 80) * (t > 30)
    y = np.convolve(x, h)[:n] + sigma * rng.standard_normal(n)
    ir = deconvolve(y, x, *BAND, FS, n_fft=n)
    window = noise_window(n, IR_LENGTH, sweep.rate_s, FS, n_harmonics=5)
    est = snr_db(ir, IR_LENGTH, window)
    # analytic: white noise of variance sigma^2 through the (circular) inverse G
    # has variance sigma^2 / n * sum_k |G_k|^2 per IR sample; the signal is h
    # band-limited by R = G X, in the IR window.
    f = np.fft.rfftfreq(n, 1 / FS)
    X = np.fft.rfft(x)
    G = regularized_inverse(X, f, *BAND)
    g2 = np.abs(G) ** 2
    sum_full = g2[0] + 2 * np.sum(g2[1:-1]) + g2[-1]  # n even: the Nyquist bin counts once
    noise_var = sigma**2 / n * sum_full
    signal = np.fft.irfft(np.fft.rfft(h, n) * (G * X).real, n)[:IR_LENGTH]
    analytic = 10 * np.log10(np.sum(signal**2) / (IR_LENGTH * noise_var))
    assert est == pytest.approx(analytic, abs=3.0)
    # several windows at once (MESM sources): a window of noise only is ~0 power
    both = snr_db(ir, IR_LENGTH, window, signal_start=np.array([0, window[0]]))
    assert both.shape == (2,)
    assert both[0] == pytest.approx(est) and both[1] < est - 10


def test_snr_edge_cases():
    ir = np.zeros(1000)
    ir[:10] = 1.0
    assert snr_db(ir, 100, (500, 900)) == np.inf  # no noise at all
    assert snr_db(np.zeros(1000), 100, (500, 900)) == -100.0  # nothing at all
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((3, 4000))
    assert np.all(snr_db(noise, 100, (2000, 4000)) < -3)  # noise only: about -inf, floored


def test_noise_window_position():
    start, stop = noise_window(10000, 1000, 0.1, 1000, n_harmonics=5)
    harmonic_start = 10000 - int(np.ceil(0.1 * np.log(5) * 1000))
    gap = harmonic_start - 1000
    assert (start, stop) == (1000 + gap // 8, harmonic_start - gap // 8)
    assert noise_window(10000, 1000, 0.1, 1000, 5, guard_samples=0) == (1000, harmonic_start)


def test_noise_window_errors():
    with pytest.raises(ValueError, match="no noise-only region"):
        noise_window(2000, 1900, 0.1, 1000, n_harmonics=5)
    with pytest.raises(ValueError, match="n_harmonics must be >= 1"):
        noise_window(2000, 100, 0.1, 1000, n_harmonics=0)
    with pytest.raises(ValueError, match=r"noise_window=\(10, 2000\) is not inside"):
        snr_db(np.zeros(1000), 100, (10, 2000))
    with pytest.raises(ValueError, match="ir_length must be in"):
        snr_db(np.zeros(1000), 0, (10, 200))
    with pytest.raises(ValueError, match="scalar"):
        snr_db(np.float64(1.0), 10, (0, 1))


def test_peak_dbfs():
    t = np.arange(4800) / FS
    x = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t), 0.1 * np.sin(2 * np.pi * 1000 * t), np.zeros_like(t)])
    assert_allclose(peak_dbfs(x)[:2], [20 * np.log10(0.5), -20.0], atol=1e-6)
    assert peak_dbfs(x)[2] == -np.inf
    with pytest.raises(ValueError, match="non-empty samples axis"):
        peak_dbfs(np.zeros((2, 0)))


def test_is_clipped():
    x = 0.5 * np.ones((4, 100))
    x[1, 10:13] = 1.0  # a run of 3 at full scale: clipped
    x[2, 10] = 1.0  # one full-scale sample: a legitimate peak
    x[2, 50:52] = -1.0  # a run of 2: below min_run
    x[3, 60:70] = -0.9995  # negative full scale counts too
    assert_array_equal(is_clipped(x), [False, True, False, True])
    assert_array_equal(is_clipped(x, min_run=2), [False, True, True, True])
    assert_array_equal(is_clipped(x, threshold=0.4, min_run=100), [True] * 4)  # the whole row
    assert not np.any(is_clipped(x, threshold=1.5))
    assert not is_clipped(np.ones(2), min_run=3)
    with pytest.raises(ValueError, match="min_run must be >= 1"):
        is_clipped(x, min_run=0)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        is_clipped(x, threshold=0)
    with pytest.raises(ValueError, match="non-empty samples axis"):
        is_clipped(np.float64(1.0))


def test_latency_exact_for_integer_delays():
    rng = np.random.default_rng(5)
    ref = rng.standard_normal(3000)
    delays = [0, 17, 1234, 6999]
    rec = np.zeros((len(delays), 10000))
    for row, d in zip(rec, delays, strict=True):
        row[d : d + ref.size] = ref[: 10000 - d]
    rec += 0.1 * rng.standard_normal(rec.shape)  # 20 dB SNR
    assert_array_equal(estimate_latency_samples(rec, ref), delays)
    # a sweep reference with reversed polarity (inverted mic) is found as well
    sweep = synchronized_sweep(50.0, 16000.0, 0.1, FS).signal
    rec1 = np.zeros(sweep.size + 700)
    rec1[333 : 333 + sweep.size] = -0.3 * sweep
    assert estimate_latency_samples(rec1, sweep) == 333


def test_latency_errors():
    with pytest.raises(ValueError, match="1-D reference_signal"):
        estimate_latency_samples(np.zeros(100), np.zeros((2, 10)))
    with pytest.raises(ValueError, match="must be non-empty and <= 100"):
        estimate_latency_samples(np.zeros(100), np.zeros(200))


def test_noise_band_power_recovers_a_white_noise_level():
    """White noise of variance sigma^2 has 2 sigma^2 / fs per Hz: the band mean square is 2 sigma^2 (f_hi - f_lo) / fs.

    The recording is longer than the sweep and zero-padded to the next fast length (n_recorded < n_fft, as in the
    engine); a decaying response is in the IR window too (the noise window must not see it).
    """
    from calib.metrics.bands import third_octave_bands
    from calib.signals.quality import noise_band_power

    sweep = synchronized_sweep(25.0, 16000.0, 0.5, FS)
    n_rec = sweep.n_samples + FS  # a 1 s tail: a long noise window
    n = scipy.fft.next_fast_len(n_rec, real=True)
    assert n > n_rec
    x = np.r_[sweep.signal, np.zeros(n_rec - sweep.n_samples)]
    rng = np.random.default_rng(5)
    t = np.arange(800)
    h = 0.1 * rng.standard_normal(t.size) * np.exp(-t / 80) * (t > 30)
    sigma = 1e-3
    y = np.convolve(x, h)[:n_rec] + sigma * rng.standard_normal((16, n_rec))  # 16 receivers, independent noise
    ir = deconvolve(y, x, *BAND, FS, n_fft=n)
    window = noise_window(n, IR_LENGTH, sweep.rate_s, FS, n_harmonics=5)
    bands = third_octave_bands(100.0, 8000.0)
    power = noise_band_power(ir, window, np.abs(scipy.fft.rfft(x, n)) ** 2, n_rec, bands.lower_hz,
                             bands.upper_hz, FS)
    expected = 2 * sigma**2 * (bands.upper_hz - bands.lower_hz) / FS
    assert power.shape == (16, len(bands))
    error_db = 10 * np.log10(power / expected)
    # one estimate scatters like a periodogram band of few bins (up to 4.4 dB at 100 Hz here: 25 Hann bins of 0.9 Hz);
    # the power mean of 16 receivers per band within 0.7 dB (3 sigma at 100 Hz; 0.34 dB here), the bands above
    # 1 kHz (hundreds of bins each) within 0.2 dB (0.15 dB here)
    assert np.all(np.abs(error_db) < 5.0)
    mean_db = 10 * np.log10(np.mean(power, axis=0) / expected)
    assert_allclose(mean_db, 0.0, atol=0.7)
    assert_allclose(mean_db[bands.centre_hz > 1000], 0.0, atol=0.2)
    # a band narrower than the periodogram's bin spacing holds no bin: NaN, not 0
    assert np.isnan(noise_band_power(ir[0], window, np.abs(scipy.fft.rfft(x, n)) ** 2, n_rec, [1000.2],
                                     [1000.6], FS)).all()


def test_noise_band_power_errors():
    from calib.signals.quality import noise_band_power

    ir, x2 = np.zeros(1024), np.ones(513)
    with pytest.raises(ValueError, match="needs a samples axis"):
        noise_band_power(np.float64(1.0), (0, 10), x2, 1000, [100], [200], FS)
    with pytest.raises(ValueError, match=r"noise_window=\(600, 2000\) is not inside"):
        noise_band_power(ir, (600, 2000), x2, 1000, [100], [200], FS)
    with pytest.raises(ValueError, match=r"reference_power must be the rfft power at n_fft=1024: \[513\]"):
        noise_band_power(ir, (600, 1000), np.ones(512), 1000, [100], [200], FS)
    with pytest.raises(ValueError, match="n_recorded must be in"):
        noise_band_power(ir, (600, 1000), x2, 2000, [100], [200], FS)
    with pytest.raises(ValueError, match="0 < lower < upper"):
        noise_band_power(ir, (600, 1000), x2, 1000, [200], [100], FS)
