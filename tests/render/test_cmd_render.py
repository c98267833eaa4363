"""``calib render`` and ``calib export`` through the real entry point."""

from __future__ import annotations

import sys
import types

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from calib.cli.cmd_render import export, render
from calib.cli.main import cli, main
from calib.geometry import HeadPosition
from calib.render.in_memory import render as render_stereo
from calib.store.calibration import write_calibration
from calib.store.measurement import create_measurement

for _command in (render, export):
    if _command.name not in cli.commands:  # until the lead registers them in main.py
        cli.add_command(_command)


@pytest.fixture
def cal_file(cal, tmp_path):
    return write_calibration(tmp_path / "calibration-SN.h5", cal)


@pytest.fixture
def meas_file(tmp_path):
    return create_measurement(
        tmp_path / "characterize-SN.h5", serial="SN", stage="characterize", sample_rate=48000, rig="sim",
        simulated=True, procedure_text="", procedure_sha256="0" * 64, sources=["a", "b"],
        azimuth_deg=np.array([0.0]), receivers=["arc_0"], positions=[HeadPosition("centre", (0.8, 0.0, 0.0), 0.0)],
        ir_length=64,
    )


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_render_writes_driver_feeds(cal, cal_file, tmp_path, capsys):
    x = (np.random.default_rng(5).standard_normal((3000, 2)) * 300).astype(np.int16)  # output below -1 dBFS
    wavfile.write(tmp_path / "in.wav", 48000, x)
    out = tmp_path / "out.wav"
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(out)]) == 0
    assert "3 channels (drv0, drv1, drv2)" in capsys.readouterr().out
    rate, y = wavfile.read(out)
    assert rate == 48000 and y.dtype == np.float32 and y.shape == (3000 + 64 - 1, 3)
    ref = render_stereo(cal, x.T / 32768.0)
    np.testing.assert_allclose(y.T, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # Never overwrites.
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(out)]) == 2
    assert "out.wav: exists already" in _error_line(capsys)


@pytest.mark.parametrize(
    ("rate", "channels", "match"),
    [
        (48000, 1, "mono.wav: expected 2 channels (stereo L, R), got 1"),
        (44100, 2, "mono.wav: expected sample rate 48000 Hz (the calibration's), got 44100 Hz"),
    ],
)
def test_render_rejects_wrong_input(cal_file, tmp_path, capsys, rate, channels, match):
    data = np.zeros((100, channels), np.float32) if channels > 1 else np.zeros(100, np.float32)
    wavfile.write(tmp_path / "mono.wav", rate, data)
    assert main(["render", str(cal_file), str(tmp_path / "mono.wav"), str(tmp_path / "o.wav")]) == 2
    assert match in _error_line(capsys)
    assert not (tmp_path / "o.wav").exists()


def test_render_rejects_missing_and_non_wav(cal_file, tmp_path, capsys):
    assert main(["render", str(cal_file), str(tmp_path / "nope.wav"), str(tmp_path / "o.wav")]) == 2
    assert "nope.wav: no such file" in _error_line(capsys)
    (tmp_path / "text.wav").write_text("hello")
    assert main(["render", str(cal_file), str(tmp_path / "text.wav"), str(tmp_path / "o.wav")]) == 2
    assert "text.wav: not a readable WAV file" in _error_line(capsys)


@pytest.mark.parametrize(("fmt", "expect"), [("raw", "L_to_drv0.raw"), ("camilladsp", "camilladsp.yml")])
def test_export_calibration_folders(cal_file, tmp_path, capsys, fmt, expect):
    assert main(["export", str(cal_file), "--format", fmt]) == 0
    folder = tmp_path / f"calibration-SN-{fmt}"
    assert (folder / expect).is_file() and (folder / "manifest.json").is_file()
    assert f"exported {fmt} for unit SN-TEST-1" in capsys.readouterr().out


def test_export_camilladsp_version_3(cal_file, tmp_path):
    assert main(["export", str(cal_file), "--format", "camilladsp", "--camilladsp-version", "3"]) == 0
    assert "format: FLOAT32LE" in (tmp_path / "calibration-SN-camilladsp" / "camilladsp.yml").read_text()


def test_export_wav_to_out_dir(cal, cal_file, tmp_path):
    assert main(["export", str(cal_file), "--format", "wav", "--out", str(tmp_path / "x")]) == 0
    rate, data = wavfile.read(tmp_path / "x" / "calibration-SN-filters.wav")
    np.testing.assert_array_equal(data[:, 0], cal.fir[0, 0])


def test_export_wrong_combinations(cal_file, meas_file, tmp_path, capsys):
    assert main(["export", str(cal_file), "--format", "sofa"]) == 2
    assert "--format sofa is not valid for a calibration file; valid: raw, wav, camilladsp" in _error_line(capsys)
    assert main(["export", str(meas_file), "--format", "raw"]) == 2
    assert "--format raw is not valid for a measurement file; valid: sofa, ir-wav, frd" in _error_line(capsys)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    assert main(["export", str(tmp_path / "other.h5"), "--format", "raw"]) == 2
    assert "format: expected one of 'calib-calibration', 'calib-measurement', got 'something-else'" in _error_line(
        capsys
    )


def test_export_sofa_unavailable(meas_file, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "calib.store.sofa", None)  # import raises ImportError
    assert main(["export", str(meas_file), "--format", "sofa"]) == 2
    assert "SOFA export is unavailable" in _error_line(capsys)


def test_export_sofa_calls_the_store(meas_file, tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("calib.store.sofa")
    fake.export_sofa = lambda src, dst: calls.append((src, dst))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "calib.store.sofa", fake)
    assert main(["export", str(meas_file), "--format", "sofa", "--out", str(tmp_path / "s")]) == 0
    assert calls == [(meas_file, tmp_path / "s" / "characterize-SN.sofa")]


def test_render_streams_in_blocks_with_gain(cal, cal_file, tmp_path, capsys, monkeypatch):
    import calib.render.stream

    monkeypatch.setattr(calib.render.stream, "BLOCK", 1000)  # many blocks through the CLI path
    x = np.random.default_rng(8).standard_normal((2, 25000)).astype(np.float32) * 0.1
    wavfile.write(tmp_path / "in.wav", 48000, x.T)
    out = tmp_path / "out.wav"
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(out), "--gain", "-6"]) == 0
    line = capsys.readouterr().out
    rate, y = wavfile.read(out)
    ref = render_stereo(cal, x.astype(np.float64)) * 10 ** (-6 / 20)
    np.testing.assert_allclose(y.T, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    peak = np.abs(y).max(axis=0)
    loudest = int(np.argmax(peak))
    at = int(np.argmax(np.abs(y[:, loudest])))
    assert f"gain -6.0 dB, peak {20 * np.log10(peak[loudest]):.1f} dBFS (drv{loudest} at {at / 48000:.3f} s)" in line
    assert not list(tmp_path.glob(".*partial"))


def test_render_keeps_headroom_or_refuses_a_clipping_gain(cal, cal_file, tmp_path, capsys):
    x = np.random.default_rng(9).standard_normal((2, 4000)).astype(np.float32)
    wavfile.write(tmp_path / "in.wav", 48000, x.T)
    ref = render_stereo(cal, x.astype(np.float64))
    peak_db = 20 * np.log10(np.abs(ref).max())
    assert peak_db > 0  # the random FIRs amplify
    # An explicit gain that clips is refused, naming the gain that fits; nothing is written.
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(tmp_path / "o.wav"), "--gain", "0"]) == 2
    err = _error_line(capsys)
    assert f"o.wav: --gain +0.0 dB puts the peak at {peak_db:+.1f} dBFS" in err
    assert f"above full scale; nothing written; use --gain {-1 - peak_db:.1f} (peak -1 dBFS)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration-SN.h5", "in.wav"]
    # By default the gain is lowered so the peak is -1 dBFS, and said so.
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(tmp_path / "o.wav")]) == 0
    line = capsys.readouterr().out
    assert f"gain {-1 - peak_db:+.1f} dB (lowered for headroom), peak -1.0 dBFS" in line
    rate, y = wavfile.read(tmp_path / "o.wav")
    np.testing.assert_allclose(np.abs(y).max(), 10 ** (-1 / 20), rtol=1e-6)
    np.testing.assert_allclose(y.T, ref * 10 ** ((-1 - peak_db) / 20), rtol=0, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration-SN.h5", "in.wav", "o.wav"]  # none hidden


def test_render_pcm24_is_the_float_render_quantized(cal, cal_file, tmp_path, capsys):
    import soundfile

    x = np.random.default_rng(4).standard_normal((2, 3000)).astype(np.float32) * 0.01
    wavfile.write(tmp_path / "in.wav", 48000, x.T)
    out = tmp_path / "o24.wav"
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(out), "--subtype", "PCM_24"]) == 0
    line = capsys.readouterr().out
    assert "3 channels (drv0, drv1, drv2), PCM_24, 3063 samples, gain +0.0 dB (headroom kept)" in line
    info = soundfile.info(str(out))
    assert (info.subtype, info.channels, info.samplerate) == ("PCM_24", 3, 48000)
    y, _ = soundfile.read(str(out), dtype="float64")
    ref = render_stereo(cal, x.astype(np.float64))
    assert np.abs(ref).max() < 10 ** (-1 / 20)  # no scaling needed: gain 0 dB
    np.testing.assert_allclose(y.T, ref, rtol=0, atol=2.0**-23 + 1e-7)  # one 24-bit step (+ float32 rounding)
    with pytest.raises(ValueError, match="subtype: expected one of FLOAT, PCM_24, PCM_16, got 'PCM_8'"):
        from calib.render.wav_io import write_float_wav

        write_float_wav(tmp_path / "x.wav", 48000, 1, [], subtype="PCM_8")


@pytest.mark.parametrize(("value", "shown"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_render_refuses_non_finite_samples_mid_stream(cal_file, tmp_path, capsys, monkeypatch, value, shown):
    import calib.render.stream

    monkeypatch.setattr(calib.render.stream, "BLOCK", 1000)
    x = np.zeros((5000, 2), np.float32)
    x[4321, 1] = value
    wavfile.write(tmp_path / "in.wav", 48000, x)
    out = tmp_path / "o.wav"
    assert main(["render", str(cal_file), str(tmp_path / "in.wav"), str(out)]) == 2
    assert f"in.wav: sample 4321 of channel 2: expected a finite value, got {shown}" in _error_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_render_refuses_an_empty_wav(cal_file, tmp_path, capsys):
    wavfile.write(tmp_path / "empty.wav", 48000, np.zeros((0, 2), np.int16))
    assert main(["render", str(cal_file), str(tmp_path / "empty.wav"), str(tmp_path / "o.wav")]) == 2
    assert "empty.wav: expected at least one sample, got an empty file" in _error_line(capsys)
    assert not (tmp_path / "o.wav").exists()


def test_partial_output_is_removed_when_the_blocks_fail(tmp_path):
    from calib.errors import FileFormatError
    from calib.render.wav_io import write_float_wav

    def blocks():
        yield np.ones((2, 10))
        raise FileFormatError("in.wav: broken")

    with pytest.raises(FileFormatError, match="in.wav: broken"):
        write_float_wav(tmp_path / "o.wav", 48000, 2, blocks())
    assert list(tmp_path.iterdir()) == []


def test_inspect_says_why_exported_filters_are_longer(make_cal, tmp_path, capsys):
    cal = make_cal(virtualizer_taps=240)
    path = write_calibration(tmp_path / "calibration-V.h5", cal)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 x 3 FIRs of 64 taps" in out
    assert "exported     303 taps per filter = 64 + 240 - 1: the 240-tap virtualizer of L, R is folded into" in out
    assert main(["export", str(path), "--format", "wav", "--out", str(tmp_path / "w")]) == 0
    assert wavfile.read(tmp_path / "w" / "calibration-V-filters.wav")[1].shape[0] == 303


def test_camilladsp_config_and_help_say_why_the_input_is_the_upmix(cal_file, tmp_path, capsys):
    import yaml

    assert main(["export", str(cal_file), "--format", "camilladsp"]) == 0
    text = (tmp_path / "calibration-SN-camilladsp" / "camilladsp.yml").read_text()
    comments = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert "not linear time-invariant" in comments and "calib render CALIBRATION in.wav out.wav" in comments
    assert yaml.safe_load(text)["devices"]["capture"]["channels"] == 3  # the comments leave the YAML valid
    capsys.readouterr()
    assert main(["export", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "The upmix is time-varying" in help_text and "run `calib render`" in help_text


def test_the_help_text_states_the_headroom_the_render_keeps():
    from calib.cli import cmd_render
    from calib.render import wav_render

    assert cmd_render.HEADROOM_DBFS == wav_render.HEADROOM_DBFS
