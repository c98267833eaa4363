"""``calib calibrate-mic``: sensitivity from a simulated calibrator WAV, printed TOML, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from calib.cli.cmd_hardware import calibrate_mic
from calib.cli.main import cli, main

if "calibrate-mic" not in cli.commands:  # until the lead registers it in calib/cli/main.py
    cli.add_command(calibrate_mic)

FS = 48000
P94 = 20e-6 * 10 ** (94 / 20)  # Pa rms of 94 dB SPL


def _calibrator_wav(path: Path, sensitivity: float, spl_db: float = 94.0, freq_hz: float = 1000.0,
                    channels: int = 2, on: int = 1, seed: int = 0) -> Path:
    """16-bit WAV: calibrator tone seated from 0.5 s to 3.5 s on channel ``on`` (0-based), noise elsewhere."""
    rng = np.random.default_rng(seed)
    t = np.arange(4 * FS) / FS
    amp = np.sqrt(2) * sensitivity * 20e-6 * 10 ** (spl_db / 20)
    seated = (t >= 0.5) & (t < 3.5)
    x = 1e-4 * rng.standard_normal((channels, t.size))  # -80 dBFS noise and hum on every channel
    x += 3e-4 * np.sin(2 * np.pi * 50 * t)
    x[on] += np.where(seated, amp * np.sin(2 * np.pi * freq_hz * 1.004 * t + 0.3), 0.0)  # calibrator 0.4 % sharp
    wavfile.write(path, FS, np.round(x.T * 32767).astype(np.int16))
    return path


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["calibrate-mic", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _printed_sensitivity(out: str) -> tuple[float, float]:
    m = re.search(r"sensitivity: ([0-9.e+-]+) FS/Pa \(([0-9.+-]+) dBFS at 94 dB SPL\)", out)
    assert m, out
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize(("spl_db", "sensitivity"), [(94.0, 0.0316), (114.0, 0.004)])
def test_sensitivity_within_0p1_db(tmp_path, capsys, spl_db, sensitivity):
    wav = _calibrator_wav(tmp_path / "cal.wav", sensitivity, spl_db)
    code, out, err = _run(capsys, wav, "--channel", "2", "--spl", spl_db)
    assert code == 0, err
    fs_per_pa, dbfs94 = _printed_sensitivity(out)
    error_db = 20 * np.log10(fs_per_pa / sensitivity)
    assert abs(error_db) < 0.1, f"{error_db:.3f} dB"
    # AES17: a 94 dB tone reads 20 log10(sqrt(2) S p94) dBFS.
    np.testing.assert_allclose(dbfs94, 20 * np.log10(np.sqrt(2) * sensitivity * P94), atol=0.1)
    assert re.search(r"tone 1004\.\d Hz", out)
    assert f"station [[mics]] line: sensitivity_fs_per_pa = {fs_per_pa:.6g}" in out


def test_prints_a_mics_entry_and_never_writes_the_station(tmp_path, capsys):
    wav = _calibrator_wav(tmp_path / "mono.wav", 0.02, channels=1, on=0)
    station = tmp_path / "bench.toml"
    text = '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.5\n'
    station.write_text(text)
    code, out, _ = _run(capsys, wav, "--mic", "arc_0", "--station", station)
    assert code == 0
    fs_per_pa, _ = _printed_sensitivity(out)
    assert "replace the sensitivity of mics[0] (name = \"arc_0\")" in out
    assert out.endswith(f'[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = {fs_per_pa:.6g}\n')
    assert station.read_text() == text
    code, out, _ = _run(capsys, wav, "--mic", "ears.left", "--station", station)
    assert code == 0 and 'no [[mics]] entry for "ears.left" yet; append the entry below' in out


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    stereo = _calibrator_wav(tmp_path / "st.wav", 0.03)
    noise = _calibrator_wav(tmp_path / "noise.wav", 0.0, channels=1, on=0)
    cases = [
        ((stereo,), r"st\.wav: --channel: expected a channel 1\.\.2 for a 2-channel file, got none"),
        ((stereo, "--channel", "3"), r"st\.wav: --channel: expected 1\.\.2 \(channels in the file\), got 3"),
        ((noise,), r"noise\.wav: no calibrator tone near 1000 Hz"),
        ((stereo, "--channel", "2", "--freq", "30000"), r"st\.wav: calibrator_freq_hz=30000\.0 must be > 0 "),
        ((tmp_path / "none.wav",), r"none\.wav: no such file"),
        ((stereo, "--channel", "2", "--station", stereo), r"--station needs --mic NAME"),
        ((stereo, "--channel", "2", "--mic", "arc 0"), r"Invalid value for '?--mic'?: expected a mic name matching"),
    ]
    for args, pattern in cases:
        code, out, err = _run(capsys, *args)
        assert code == 2, (args, out, err)
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
        assert len(lines) == 1 and re.search(pattern, lines[0]), (args, err)
