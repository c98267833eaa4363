"""Synchronized sweep: instantaneous frequency, synchronization, level, analytic spectrum."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.signals.sweep import extended_range, synchronized_sweep

FS = 48000


@pytest.fixture(scope="module")
def sweep():
    return synchronized_sweep(20.0, 16000.0, 1.0, FS, level_dbfs=-6.0)


def upward_zero_crossings(x, fs):
    """Times (s) of upward zero crossings by linear interpolation."""
    k = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    return (k + x[k] / (x[k] - x[k + 1])) / fs


def test_rate_parameter_is_rounded_to_whole_cycles(sweep):
    cycles = sweep.f1_hz * sweep.rate_s
    assert cycles == pytest.approx(round(cycles), abs=1e-9)
    assert round(cycles) == round(20.0 * 1.0 / np.log(16000 / 20))  # Novák's rounding of f1 T / ln(f2/f1)
    assert_allclose(sweep.duration_s, sweep.rate_s * np.log(16000 / 20), rtol=1e-12)
    assert sweep.n_samples == int(np.floor(sweep.duration_s * FS))
    # rounding f1 L to an integer moves T by at most ln(f2/f1) / (2 f1)
    assert abs(sweep.duration_s - 1.0) <= np.log(16000 / 20) / (2 * 20.0) + 1e-12


def test_instantaneous_frequency_from_zero_crossings(sweep):
    # between consecutive upward crossings lies one cycle: 1/dt is the mean
    # frequency over that cycle, compared with f1 exp(t/L) at the cycle centre.
    tz = upward_zero_crossings(sweep.signal, FS)
    f_meas = 1.0 / np.diff(tz)
    t_mid = 0.5 * (tz[1:] + tz[:-1])
    f_true = sweep.f1_hz * np.exp(t_mid / sweep.rate_s)
    keep = (f_true > 100) & (f_true < 4000)  # >= 12 samples per cycle for the interpolation
    assert keep.sum() > 500
    assert_allclose(f_meas[keep], f_true[keep], rtol=5e-3)
    assert_allclose(sweep.instantaneous_frequency_hz(t_mid[keep]), f_true[keep], rtol=1e-12)


def test_phase_is_whole_cycles_where_frequency_is_k_f1(sweep):
    # Novák: at t_k = L ln k (f = k f1) the phase is 2 pi f1 L (k - 1), a
    # multiple of 2 pi, so the sweep crosses zero upwards there.
    tz = upward_zero_crossings(sweep.signal, FS)
    k = np.arange(3, 200)
    t_k = sweep.rate_s * np.log(k)
    nearest = tz[np.argmin(np.abs(tz[:, None] - t_k[None, :]), axis=0)]
    phase_error_cycles = (nearest - t_k) * k * sweep.f1_hz
    assert np.max(np.abs(phase_error_cycles)) < 2e-3
    # and harmonic n of the sweep is the sweep advanced by L ln n
    t = np.linspace(0.0, 0.5, 1001)
    for n in (2, 3, 5):
        assert_allclose(
            np.sin(n * sweep.phase(t)), np.sin(sweep.phase(t + sweep.rate_s * np.log(n))), atol=1e-9
        )


def test_level_and_fades(sweep):
    assert 20 * np.log10(np.max(np.abs(sweep.signal))) == pytest.approx(-6.0, abs=0.01)
    assert sweep.amplitude == pytest.approx(10 ** (-6 / 20))
    assert sweep.signal[0] == 0.0
    n_in = int(round(sweep.fade_in_s * FS))
    assert np.max(np.abs(sweep.signal[: n_in // 8])) < 0.05 * sweep.amplitude
    assert np.max(np.abs(sweep.signal[-3:])) < 1e-3 * sweep.amplitude
    assert not sweep.signal.flags.writeable


def test_analytic_spectrum_matches_dft(sweep):
    n_fft = 2**17
    f = np.fft.rfftfreq(n_fft, 1 / FS)
    X = np.fft.rfft(sweep.signal, n_fft)
    band = (f > 80) & (f < 8000)  # away from the faded ends
    err = np.sum(np.abs(X[band] - sweep.spectrum(n_fft)[band]) ** 2) / np.sum(np.abs(X[band]) ** 2)
    assert 10 * np.log10(err) < -40
    # the inverse filter flattens the sweep: X * X~ = 1 within 2 % (Fresnel ripple)
    assert_allclose(X[band] * sweep.inverse_spectrum(n_fft)[band], 1.0, atol=2e-2)
    assert np.all(sweep.spectrum(n_fft)[f > 16000] == 0) and sweep.inverse_spectrum(n_fft)[0] == 0


def test_extended_range():
    assert extended_range(50, 6000, FS) == (25.0, 12000.0)
    assert extended_range(50, 20000, FS) == (25.0, pytest.approx(21600.0))
    assert extended_range(50, 23000, FS) == (25.0, 23000.0)  # no room to extend above
    assert extended_range(100, 1000, FS, octaves_below=2, octaves_above=0.5) == (25.0, pytest.approx(1414.2, abs=0.1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(f1_hz=1000, f2_hz=100), "0 < f1_hz < f2_hz"),
        (dict(f1_hz=100, f2_hz=100), "0 < f1_hz < f2_hz"),
        (dict(f1_hz=0, f2_hz=100), "0 < f1_hz < f2_hz"),
        (dict(f2_hz=30000), "above the Nyquist"),
        (dict(duration_s=0), "duration_s must be > 0"),
        (dict(duration_s=-1), "duration_s must be > 0"),
        (dict(f1_hz=1, duration_s=0.1), "too short to synchronize"),
        (dict(fade_in_s=0.8, fade_out_s=0.5), "do not fit"),
        (dict(level_dbfs=3), "level_dbfs must be <= 0"),
        (dict(sample_rate=0), "sample_rate must be > 0"),
    ],
)
def test_sweep_errors(kwargs, match):
    args = dict(f1_hz=20, f2_hz=20000, duration_s=1.0, sample_rate=FS) | kwargs
    with pytest.raises(ValueError, match=match):
        synchronized_sweep(**args)


@pytest.mark.parametrize(
    "args, match",
    [
        ((100, 50, FS), "0 < band_lo_hz < band_hi_hz"),
        ((50, 30000, FS), "above the Nyquist"),
        ((50, 1000, FS, -1), "octave extensions must be >= 0"),
        ((50, 1000, FS, 1, 1, 1.5), r"max_fraction_of_nyquist must be in \(0, 1\]"),
    ],
)
def test_extended_range_errors(args, match):
    with pytest.raises(ValueError, match=match):
        extended_range(*args)
