"""Absolute level: FS/FS impulse responses to Pa/FS with sensitivity and mic calibration files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from calib.capture.absolute import InputCalibration, apply_input_calibration, input_calibrations, ir_unit
from calib.errors import ProcedureError
from calib.procedure import load_procedure
from calib.procedure.station_file import load_station
from calib.store.miccal import apply_mic_calibration, read_mic_calibration

ROOT = Path(__file__).resolve().parents[2]
DUO = ROOT / "procedures" / "duo2.toml"
FS = 48000
N = 8192


def _peaking_biquad(f0_hz: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """RBJ Audio EQ Cookbook peaking filter (b, a)."""
    a_lin = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0_hz / FS
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin])
    a = np.array([1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin])
    return b / a[0], a / a[0]


DELAY = 112  # samples: a dummy head 0.8 m away (2.3 ms)


def _true_pressure_ir() -> np.ndarray:
    """A loudspeaker-like IR in Pa/FS: 2nd-order 80 Hz high-pass, 0.3 Pa peak gain, 2.3 ms acoustic delay."""
    x = np.zeros(N)
    x[DELAY] = 0.3
    sos = scipy.signal.butter(2, 80, btype="highpass", fs=FS, output="sos")
    return scipy.signal.sosfilt(sos, x)


def _mic_file(path: Path, b: np.ndarray, a: np.ndarray) -> Path:
    """A REW file of the filter's magnitude at 1/12-octave points, 10 Hz .. 24 kHz (no phase column)."""
    freqs = 10 * 2 ** (np.arange(0, 12 * np.log2(24000 / 10)) / 12)
    _, h = scipy.signal.freqz(b, a, worN=freqs, fs=FS)
    lines = [
        "Microphone calibration data",
        *(f"{f:.3f}\t{20 * np.log10(abs(v)):.4f}" for f, v in zip(freqs, h, strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sensitivity_and_mic_file_give_the_true_pressure_within_0p1_db(tmp_path):
    # Mic: +6 dB presence peak at 6 kHz (Q 1.2) and -4 dB at 120 Hz (Q 0.8), as IIR filters.
    peak, low = _peaking_biquad(6000, 6.0, 1.2), _peaking_biquad(120, -4.0, 0.8)
    b, a = np.polymul(peak[0], low[0]), np.polymul(peak[1], low[1])
    cal = read_mic_calibration(_mic_file(tmp_path / "mic.txt", b, a))
    h_pa = _true_pressure_ir()
    sensitivities = np.array([0.05, 0.0123])  # FS/Pa of two input chains
    # Recorded IRs (FS/FS): pressure x mic filter x input sensitivity; rows = receivers, 2 sources.
    measured = scipy.signal.lfilter(b, a, h_pa)[None, None, :] * sensitivities[:, None, None] * np.ones((1, 2, 1))
    cals = {
        4: InputCalibration("arc_0", 4, 0.05, cal),
        1: InputCalibration("ears.left", 1, 0.0123, cal),
    }
    out = apply_input_calibration(measured, [4, 1], cals, FS)
    assert out.shape == (2, 2, N)

    freqs = np.fft.rfftfreq(N, 1 / FS)
    band = (freqs >= 50) & (freqs <= 16000)
    want_db = 20 * np.log10(np.abs(np.fft.rfft(h_pa)[band]))
    got_db = 20 * np.log10(np.abs(np.fft.rfft(out, axis=-1)[..., band]))
    err = np.abs(got_db - want_db)
    assert err.max() < 0.1, f"max error {err.max():.3f} dB"  # measured: 0.037 dB (1/12-octave file at 6 kHz)
    # Minimum-phase division restores the waveform too (measured 0.1 %, uncorrected 42 %) and is causal:
    # nothing rings before the direct sound.
    for row in out.reshape(-1, N):
        assert np.linalg.norm(row - h_pa) / np.linalg.norm(h_pa) < 5e-3
        assert np.abs(row[:DELAY]).max() < 1e-9
    # Without the mic file the presence peak stays in (independent check that the correction acts).
    flat = apply_input_calibration(measured, [4, 1], {k: InputCalibration(v.name, k, v.sensitivity_fs_per_pa)
                                                      for k, v in cals.items()}, FS)
    flat_db = 20 * np.log10(np.abs(np.fft.rfft(flat[0, 0])[np.argmin(np.abs(freqs - 6000))]))
    true_db = 20 * np.log10(np.abs(np.fft.rfft(h_pa)[np.argmin(np.abs(freqs - 6000))]))
    np.testing.assert_allclose(flat_db - true_db, 6.0, atol=0.05)
    # Flat: exactly the division by the sensitivity.
    np.testing.assert_allclose(flat[1, 1], measured[1, 1] / 0.0123, rtol=1e-12)


def test_a_phase_column_is_used_as_given(tmp_path):
    (tmp_path / "p.txt").write_text("20 0 0\n1000 3 -20\n20000 -2 10\n")
    cal = read_mic_calibration(tmp_path / "p.txt")
    ir = np.random.default_rng(3).standard_normal((1, 2, 512))
    out = apply_input_calibration(ir, [0], {0: InputCalibration("arc_0", 0, 0.5, cal)}, FS)
    np.testing.assert_allclose(out[0], apply_mic_calibration(ir[0] / 0.5, FS, cal), rtol=1e-12, atol=1e-15)


def test_input_calibrations_from_the_station(tmp_path):
    (tmp_path / "umik.txt").write_text('"Sens Factor =-1.378dB, AGain =18dB"\n20 -1.0\n1000 0\n20000 2.0\n')
    station_file = tmp_path / "bench.toml"
    station_file.write_text(
        "[channels]\noutputs = { left = 1, right = 2 }\nmics = { arc_0 = 5 }\nears = { left = 6, right = 7 }\n"
        "loopback = { output = 3, input = 3 }\n"
        '[[mics]]\nname = "arc_0"\nsensitivity_dbfs_at_94db = -20.0\ncalibration_file = "umik.txt"\n'
        '[[mics]]\nname = "ears.right"\nsensitivity_fs_per_pa = 0.02\n'
    )
    cals = input_calibrations(load_procedure(DUO), load_station(station_file))
    assert sorted(cals) == [4, 6]  # 0-based: arc_0 on input 5, right ear on input 7
    # -20 dBFS (AES17) at 94 dB SPL = 0.1 FS peak = 0.0707 FS rms per 1.0024 Pa rms.
    np.testing.assert_allclose(cals[4].sensitivity_fs_per_pa, 0.1 / np.sqrt(2) / (20e-6 * 10 ** (94 / 20)), rtol=1e-12)
    assert cals[4].mic is not None and cals[4].mic.sens_factor_db == -1.378
    np.testing.assert_allclose(cals[4].mic.gain_db, [-1.0, 0.0, 2.0])
    assert cals[6].mic is None and cals[6].sensitivity_fs_per_pa == 0.02
    assert ir_unit([4], cals) == "Pa/FS"
    assert ir_unit([4, 5, 6], cals) == "FS/FS" and ir_unit([], cals) == "FS/FS"


def test_apply_input_calibration_errors():
    cals = {0: InputCalibration("arc_0", 0, 0.05)}
    with pytest.raises(ProcedureError, match=r"input channel\(s\) 2, 3: expected a \[\[mics\]\] sensitivity .* "
                                             r"\(calibrated inputs: 1 \(arc_0\)\)"):
        apply_input_calibration(np.zeros((3, 1, 8)), [0, 1, 2], cals, FS)
    with pytest.raises(ValueError, match=r"ir must be \[R, S, N\] with R = len\(inputs\) = 2, got shape \(1, 1, 8\)"):
        apply_input_calibration(np.zeros((1, 1, 8)), [0, 1], cals, FS)


def test_noise_spl_from_a_known_white_noise_in_pascal(tmp_path):
    """White noise of 40 dB SPL (0.002 Pa rms) at a mic of 0.05 FS/Pa and a +6 dB peak at 1 kHz in its file.

    Recorded in FS the noise is p * S * |M(f)|; its 1/3-octave band mean square 2 sigma^2 B / fs gives
    10 log10(2 ms) dBFS. Converted back, every band reads the white noise's SPL in that band,
    40 + 10 log10(2 B / fs) dB, whatever the sensitivity and the file's gain there.
    """
    from calib.capture.absolute import noise_spl_db
    from calib.metrics.bands import third_octave_bands
    from calib.store.miccal import mic_correction

    b, a = _peaking_biquad(1000.0, 6.0, 2.0)
    mic = read_mic_calibration(_mic_file(tmp_path / "mic.txt", b, a))
    bands = third_octave_bands(100.0, 8000.0)
    width = bands.upper_hz - bands.lower_hz
    sigma_pa = 20e-6 * 10 ** (40 / 20)
    band_spl = 40 + 10 * np.log10(2 * width / FS)
    ms_fs = [(2 * (sigma_pa * s) ** 2 * width / FS) * np.abs(mic_correction(mic, bands.centre_hz)) ** 2
             for s in (0.05, 0.0123)]
    dbfs = 10 * np.log10(2 * np.array(ms_fs))[:, None, :].repeat(3, axis=1)  # [R=2, S=3, B]
    cals = {4: InputCalibration("arc_0", 4, 0.05, mic), 1: InputCalibration("ears.left", 1, 0.0123, None)}
    dbfs[1] -= 20 * np.log10(np.abs(mic_correction(mic, bands.centre_hz)))  # the ear has no file: flat
    want = np.broadcast_to(band_spl, (2, 3, len(bands)))
    np.testing.assert_allclose(noise_spl_db(dbfs, [4, 1], cals, bands.centre_hz), want, atol=1e-9)
    with pytest.raises(ValueError, match=r"noise_dbfs must be \[R, S, B\] with R = 2"):
        noise_spl_db(dbfs[0], [4, 1], cals, bands.centre_hz)
