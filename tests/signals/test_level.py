"""Microphone sensitivity from a simulated calibrator recording."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import CalibError
from calib.signals.level import (
    P_REF_PA,
    CalibratorError,
    pa_to_spl,
    sensitivity_from_calibrator,
    spl_to_pa,
)

FS = 48000


def calibrator_recording(
    sensitivity_fs_per_pa=0.05,
    spl_db=94.0,
    freq_hz=1003.0,
    duration_s=2.0,
    seated_from_s=0.3,
    noise_rms=0.002,
    hum_amplitude=0.05,
    seed=1,
):
    """A calibrator tone (seated after `seated_from_s`), white noise and 50 Hz hum with harmonics."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration_s * FS)) / FS
    amplitude = np.sqrt(2.0) * sensitivity_fs_per_pa * spl_to_pa(spl_db)
    # seating the calibrator: the level rises over 50 ms (raised cosine)
    ramp = np.clip((t - seated_from_s) / 0.05, 0.0, 1.0)
    tone = amplitude * np.sin(2 * np.pi * freq_hz * t + 0.3) * np.sin(0.5 * np.pi * ramp) ** 2
    hum = hum_amplitude * (np.sin(2 * np.pi * 50 * t) + 0.4 * np.sin(2 * np.pi * 150 * t + 1.0))
    return tone + hum + noise_rms * rng.standard_normal(t.size)


def test_spl_to_pa():
    assert_allclose(spl_to_pa(94.0), 1.0024, rtol=1e-4)  # 94 dB SPL ~ 1 Pa
    assert_allclose(spl_to_pa(0.0), 20e-6)


@pytest.mark.parametrize(
    ("sensitivity", "spl_db", "freq_hz", "nominal_hz", "noise_rms"),
    [
        (0.05, 94.0, 1003.0, 1000.0, 0.002),
        (0.01, 114.0, 251.0, 250.0, 0.002),
        (0.002, 94.0, 995.0, 1000.0, 0.0003),
    ],
)
def test_sensitivity_within_0p1_db(sensitivity, spl_db, freq_hz, nominal_hz, noise_rms):
    x = calibrator_recording(sensitivity, spl_db, freq_hz, noise_rms=noise_rms)
    reading = sensitivity_from_calibrator(x, FS, spl_db, nominal_hz)
    error_db = 20 * np.log10(reading.sensitivity_fs_per_pa / sensitivity)
    assert abs(error_db) < 0.02, error_db  # task target 0.1 dB; measured <= 0.003 dB
    assert_allclose(reading.tone_freq_hz, freq_hz, atol=1.0)
    # AES17: a 94 dB tone with RMS S * 1.0024 FS reads 20 log10(sqrt(2) S 1.0024) dBFS
    assert_allclose(reading.dbfs_at_94_db, 20 * np.log10(np.sqrt(2) * sensitivity * spl_to_pa(94)), atol=0.1)
    tone_rms = sensitivity * spl_to_pa(spl_db)
    assert_allclose(reading.level_dbfs, 20 * np.log10(np.sqrt(2) * tone_rms), atol=0.1)
    # the tone is seated for 1.7 s of 2 s; blocks straddling the edges are dropped
    assert 1.5 <= reading.steady_s <= 1.7


def test_snr_estimate_matches_analytic():
    # tone power / (white-noise density x band width), band = 1/3 octave around 1 kHz
    sensitivity, noise_rms = 0.05, 0.002
    x = calibrator_recording(sensitivity, noise_rms=noise_rms, seated_from_s=0.0)
    reading = sensitivity_from_calibrator(x, FS)
    tone_power = (sensitivity * spl_to_pa(94.0)) ** 2
    band_hz = 1000.0 * (2 ** (1 / 6) - 2 ** (-1 / 6))
    expected_db = 10 * np.log10(tone_power / (noise_rms**2 / (FS / 2) * band_hz))
    assert_allclose(reading.snr_db, expected_db, atol=2.0)


def test_noise_bias_is_removed_at_low_snr():
    # band SNR ~14 dB: in-band noise would add ~+0.16 dB to a plain band RMS; the estimator
    # subtracts the expected noise power (residual: random, ~0.04 dB std over seeds)
    x = calibrator_recording(0.01, noise_rms=0.02, seated_from_s=0.0, duration_s=8.0)
    reading = sensitivity_from_calibrator(x, FS, min_snr_db=10.0)
    assert reading.snr_db < 15
    assert abs(20 * np.log10(reading.sensitivity_fs_per_pa / 0.01)) < 0.1
    with pytest.raises(CalibratorError, match=r"dB above the band noise \(need within 5 % and >= 15 dB\)"):
        sensitivity_from_calibrator(x, FS)


def test_no_tone_is_an_error():
    x = calibrator_recording(sensitivity_fs_per_pa=0.0)
    with pytest.raises(CalibratorError, match=r"no calibrator tone near 1000 Hz"):
        sensitivity_from_calibrator(x, FS)
    # a tone elsewhere (a 250 Hz pistonphone while 1 kHz is expected) is not a calibrator tone
    x = calibrator_recording(freq_hz=250.0)
    with pytest.raises(CalibratorError, match=r"no calibrator tone near 1000 Hz"):
        sensitivity_from_calibrator(x, FS)
    # the error is a calib error and a ValueError
    assert issubclass(CalibratorError, CalibError) and issubclass(CalibratorError, ValueError)


def test_tone_off_frequency_tolerance():
    x = calibrator_recording(freq_hz=1080.0)
    with pytest.raises(CalibratorError, match=r"at 1080\.\d Hz.*need within 5 %"):
        sensitivity_from_calibrator(x, FS)


def test_too_little_steady_tone():
    x = calibrator_recording(seated_from_s=1.7)
    with pytest.raises(CalibratorError, match=r"only 0\.\d+ s of the calibrator tone is steady"):
        sensitivity_from_calibrator(x, FS)


def test_clipping_and_bad_arguments():
    with pytest.raises(CalibratorError, match="clips"):
        sensitivity_from_calibrator(calibrator_recording(sensitivity_fs_per_pa=1.0), FS)
    with pytest.raises(ValueError, match=r"one channel \[N\], got shape \(2, 10\)"):
        sensitivity_from_calibrator(np.zeros((2, 10)), FS)
    with pytest.raises(ValueError, match="sample_rate must be > 0 Hz, got 0"):
        sensitivity_from_calibrator(np.zeros(10), 0)
    with pytest.raises(ValueError, match="calibrator_freq_hz=20000"):
        sensitivity_from_calibrator(np.zeros(FS), FS, calibrator_freq_hz=20000.0)
    with pytest.raises(CalibratorError, match=r"0\.1 s is shorter than min_steady_s=0\.5 s"):
        sensitivity_from_calibrator(np.zeros(FS // 10), FS)


def test_spl_units():
    # 94 dB SPL is 1.0024 Pa RMS; 0 dB is the reference; arrays map element-wise and back
    assert_allclose(spl_to_pa(94.0), 20e-6 * 10 ** (94 / 20), rtol=1e-15)
    assert_allclose(spl_to_pa(94.0), 1.0024, rtol=1e-4)
    assert spl_to_pa(0.0) == P_REF_PA == 20e-6
    assert_allclose(pa_to_spl(spl_to_pa(np.array([20.0, 120.0]))), [20.0, 120.0], rtol=1e-13)
    assert isinstance(spl_to_pa(94.0), float) and spl_to_pa(np.zeros((2, 3))).shape == (2, 3)
