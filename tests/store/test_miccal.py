"""REW-style microphone calibration files and their application."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose

from calib.errors import FileFormatError
from calib.store.miccal import (
    MicCalibration,
    apply_mic_calibration,
    mic_correction,
    read_mic_calibration,
)

FS = 48000

SAMPLE = """\
"Sens Factor =-1.2dB, AGain =18dB, SERNO: 7000123"
Microphone calibration data
* free field, 0 deg

20.0\t-1.50\t10.0
100.0 -0.25 2.0
# mid band
1000.0, 0.00, 0.0
10000.0 ; 1.25 ; -20.0

20000.0 2.50 -45.0
"""


def write(tmp_path, text, name="mic.cal"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_sample_with_header_and_comments(tmp_path):
    cal = read_mic_calibration(write(tmp_path, SAMPLE))
    assert_allclose(cal.freqs_hz, [20, 100, 1000, 10000, 20000])
    assert_allclose(cal.gain_db, [-1.5, -0.25, 0.0, 1.25, 2.5])
    assert_allclose(cal.phase_deg, [10, 2, 0, -20, -45])
    assert cal.sens_factor_db == -1.2  # kept, never added to the response
    assert cal.header == (
        '"Sens Factor =-1.2dB, AGain =18dB, SERNO: 7000123"',
        "Microphone calibration data",
        "* free field, 0 deg",
        "# mid band",
    )
    assert cal.path.endswith("mic.cal")


def test_read_two_columns_no_header(tmp_path):
    cal = read_mic_calibration(write(tmp_path, "\ufeff10 0.5\n20000 -3\n"))  # with a BOM
    assert cal.phase_deg is None and cal.sens_factor_db is None
    assert_allclose(cal.gain_db, [0.5, -3.0])


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("20 -1\n100 abc\n", 2, r"expected 'freq_hz gain_db \[phase_deg\]', got '100 abc'"),
        ("* c\n20 -1\n1000\n", 3, r"expected .* got 1 values in '1000'"),
        ("20 -1 0\n100 -1\n", 2, r"expected 3 columns like the first data line"),
        ("20 -1\n100 0\nend of data\n", 3, r"expected .* or a comment .* got 'end of data'"),
        ("20 -1\n20 0\n", 2, r"expected a frequency above 20 Hz \(line 1\), got 20 Hz"),
        ("0 -1\n20 0\n", 1, r"expected a frequency > 0 Hz, got 0\.0"),
        ("20 -1\n100 nan\n", 2, r"expected .* with finite values, got '100 nan'"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, text, line, what):
    path = write(tmp_path, text, "bad_mic.txt")
    with pytest.raises(FileFormatError, match=rf"bad_mic\.txt:{line}: {what}"):
        read_mic_calibration(path)


def test_too_few_points_and_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match=r"one\.cal: expected at least 2 data lines .* found 1"):
        read_mic_calibration(write(tmp_path, '"Sens Factor =0dB"\n1000 0\n', "one.cal"))
    with pytest.raises(FileFormatError, match=r"cannot read mic calibration file .*absent\.cal"):
        read_mic_calibration(tmp_path / "absent.cal")


def test_correction_interpolates_log_frequency_and_holds_ends():
    cal = MicCalibration("x", np.array([100.0, 1000.0, 10000.0]), np.array([0.0, 2.0, -4.0]), None, None, ())
    f = np.array([0.0, 10.0, 100.0, np.sqrt(100 * 1000), 1000.0, 10 ** 3.75, 20000.0])
    expected_db = np.array([0.0, 0.0, 0.0, 1.0, 2.0, -2.5, -4.0])
    h = mic_correction(cal, f)
    assert_allclose(20 * np.log10(np.abs(h)), expected_db, atol=1e-12)
    assert_allclose(h.imag, 0.0)


def test_correction_phase_unwrapped():
    # -170 -> +170 deg is a 20 deg step down across the wrap, not 340 deg up
    cal = MicCalibration("x", np.array([100.0, 10000.0]), np.zeros(2), np.array([-170.0, 170.0]), None, ())
    h = mic_correction(cal, [0.0, 100.0, 1000.0, 10000.0])
    assert_allclose(np.rad2deg(np.angle(h)), [0.0, -170.0, -180.0 + 0.0, -190.0 + 360.0], atol=1e-9)


def _shelf(freqs_hz):
    """+3 dB first-order high shelf around 5 kHz, minimum phase: (1 + s/w1)/(1 + s/w2), w2/w1 = 10^(3/20)."""
    w1 = 2 * np.pi * 5000.0 / 10 ** (3 / 40)
    w2 = w1 * 10 ** (3 / 20)
    s = 2j * np.pi * np.asarray(freqs_hz)
    return (1 + s / w1) / (1 + s / w2)


def _true_ir(n=4096, delay=200):
    b, a = scipy.signal.butter(2, [60.0, 18000.0], btype="bandpass", fs=FS)
    impulse = np.zeros(n)
    impulse[delay] = 1.0
    return scipy.signal.lfilter(b, a, impulse)


def _cal_file(tmp_path, with_phase):
    freqs = 10 * 2 ** (np.arange(0, 24 * 11.3) / 24)  # 1/24 octave, 10 Hz .. ~25 kHz
    h = _shelf(freqs)
    lines = ['"Sens Factor =-1.2dB"']
    for f, v in zip(freqs, h, strict=True):
        row = f"{f:.3f} {20 * np.log10(abs(v)):.4f}"
        lines.append(row + (f" {np.rad2deg(np.angle(v)):.4f}" if with_phase else ""))
    return read_mic_calibration(write(tmp_path, "\n".join(lines) + "\n"))


@pytest.mark.parametrize("with_phase", [False, True])
def test_apply_removes_known_shelf(tmp_path, with_phase):
    true = _true_ir()
    n_big = 8 * true.size
    spectrum = np.fft.rfft(true, n_big)
    mic = _shelf(np.fft.rfftfreq(n_big, 1 / FS))
    mic = mic if with_phase else np.abs(mic)
    measured = np.fft.irfft(spectrum * mic, n_big)[: true.size]

    cal = _cal_file(tmp_path, with_phase)
    corrected = apply_mic_calibration(np.stack([measured, 0.5 * measured]), FS, cal)
    assert corrected.shape == (2, true.size)

    freqs = np.fft.rfftfreq(true.size, 1 / FS)
    band = (freqs >= 100) & (freqs <= 16000)
    ratio = np.fft.rfft(corrected[0])[band] / np.fft.rfft(true)[band]
    before = np.fft.rfft(measured)[band] / np.fft.rfft(true)[band]
    assert np.max(20 * np.log10(np.abs(before))) > 2.5  # the shelf is there before
    assert_allclose(20 * np.log10(np.abs(ratio)), 0.0, atol=0.1)
    assert_allclose(np.rad2deg(np.angle(ratio)), 0.0, atol=1.0)
    assert_allclose(corrected[1], 0.5 * corrected[0], atol=1e-12)
    # the Sens Factor (-1.2 dB) is not part of the response: the file's points come back as written
    assert cal.sens_factor_db == -1.2
    assert_allclose(20 * np.log10(np.abs(mic_correction(cal, cal.freqs_hz))), cal.gain_db, atol=1e-9)


def test_apply_bad_arguments():
    cal = MicCalibration("x", np.array([100.0, 1000.0]), np.zeros(2), None, None, ())
    with pytest.raises(ValueError, match=r"non-empty samples axis .* shape \(\)"):
        apply_mic_calibration(1.0, FS, cal)
    with pytest.raises(ValueError, match="sample_rate must be > 0 Hz, got -1"):
        apply_mic_calibration(np.zeros(8), -1, cal)
