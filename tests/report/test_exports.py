"""``calib export`` of a measurement as WAV IRs and FRD text, read back by independent readers.

WAV files are read with python-soundfile; FRD files with the small parser
below (comment lines start with ``*``, then ``Hz dB degrees``), and compared
with the measurement's IRs and their DFT. The measurement is the report
fixtures' characterize file (no new unit is measured).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from calib.cli.main import main
from calib.export.levels import level_label
from calib.export.measurements import export_measurement, frd_text
from calib.procedure.load import parse_procedure
from calib.stages.gating import measurement_gates
from calib.store.measurement import read_measurement

F32 = np.finfo(np.float32).eps


def parse_frd(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(freqs_hz, magnitude_db, phase_deg, comment lines)`` of an FRD file."""
    comments, rows = [], []
    for line in path.read_text().splitlines():
        if line.startswith("*"):
            comments.append(line[1:].strip())
        elif line.strip():
            rows.append([float(v) for v in line.split()])
    data = np.array(rows)
    return data[:, 0], data[:, 1], data[:, 2], comments


def manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _ir(meas, row: dict[str, str]) -> np.ndarray:
    """The measured IR a manifest row names (found by its metadata, not its file name)."""
    s = meas.sources.index(row["driver"])
    if row["group"] == "directivity":
        a = int(np.flatnonzero(meas.azimuth_deg == float(row["azimuth_deg"]))[0])
        return meas.directivity_ir[a, meas.receivers.index(row["receiver"]), s]
    p = [q.name for q in meas.positions].index(row["position"])
    return meas.binaural_ir[p, ["left ear", "right ear"].index(row["receiver"]), s]


def test_wav_irs_equal_the_measurement(reports, tmp_path, capsys) -> None:
    char = reports["pass"].files["characterize"]
    meas = read_measurement(char)
    out = tmp_path / "wav"
    assert main(["export", str(char), "--format", "ir-wav", "--out", str(out)]) == 0
    rows = manifest(out)
    n_dir = int(meas.directivity_done.sum()) * len(meas.receivers) * len(meas.sources)
    n_bin = int(meas.binaural_done.sum()) * 2 * len(meas.sources)
    assert len(rows) == n_dir + n_bin and sum(r["group"] == "directivity" for r in rows) == n_dir
    assert f"exported {n_dir + n_bin} ir-wav files to {out}, listed in manifest.csv" in capsys.readouterr().out
    assert {r["driver"] for r in rows} == set(meas.sources)
    assert {float(r["azimuth_deg"]) for r in rows if r["azimuth_deg"]} == set(meas.azimuth_deg.tolist())
    for row in rows:
        data, rate = soundfile.read(out / row["file"], dtype="float64")
        info = soundfile.info(str(out / row["file"]))
        assert (rate, info.subtype, info.channels) == (meas.sample_rate, "FLOAT", 1) == (int(row["sample_rate"]),
                                                                                         "FLOAT", 1)
        ir = _ir(meas, row)
        np.testing.assert_allclose(data, ir, rtol=0, atol=F32 * np.abs(ir).max())
        assert row["unit"] == "FS/FS" and row["serial"] == meas.serial and row["stage"] == "characterize"
    # nothing is overwritten
    assert main(["export", str(char), "--format", "ir-wav", "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err


def test_frd_equals_the_dft_of_the_gated_measurement(reports, tmp_path) -> None:
    char = reports["pass"].files["characterize"]
    meas = read_measurement(char)
    gates = measurement_gates(meas, parse_procedure(meas.procedure_text))
    out = tmp_path / "frd"
    files = export_measurement(char, out, "frd", gated=True)
    rows = manifest(out)
    assert [f.name for f in files] == [r["file"] for r in rows] + ["manifest.csv"]
    for row in rows[:: max(1, len(rows) // 12)] + rows[-2:]:  # a dozen across azimuths, mics and positions
        freqs, mag, phase, comments = parse_frd(out / row["file"])
        ir = np.asarray(_ir(meas, row), float)
        if row["group"] == "directivity":
            step = int(np.flatnonzero(meas.azimuth_deg == float(row["azimuth_deg"]))[0])
            gate = gates.of("directivity", meas.receivers.index(row["receiver"]))
        else:
            step = [q.name for q in meas.positions].index(row["position"])
            gate = gates.of("binaural")
        windows = gate.windows(ir.size, meas.sample_rate)
        ir = ir * windows[min(step, len(windows) - 1)]
        assert gate.gated == (row["gate"] != "none")
        if gate.gated:
            assert row["gate"].endswith(", applied") and float(row["gate_lowest_hz"]) > 0
        ref = np.fft.rfft(ir)[1:]
        np.testing.assert_allclose(freqs, np.fft.rfftfreq(ir.size, 1 / meas.sample_rate)[1:], rtol=1e-8)
        got = 10 ** (mag / 20) * np.exp(1j * np.radians(phase))
        np.testing.assert_allclose(got, ref, rtol=0, atol=F32 * np.abs(ref).max())
        assert np.all((phase > -180) & (phase <= 180))
        assert f"driver {row['driver']}, receiver {row['receiver']}" in comments[1]
        assert row["magnitude_reference"] == level_label("FS/FS") == "level (dB re 1 FS/FS)"


def test_frd_of_a_pascal_ir_is_spl_at_0_dbfs() -> None:
    # A delayed impulse of sqrt(2) * 20 uPa per FS: a 0 dBFS sine gives 20 uPa RMS, 0 dB SPL at every
    # frequency, with the phase of a 5-sample delay.
    fs, n, d = 48000, 64, 5
    ir = np.zeros(n)
    ir[d] = np.sqrt(2) * 20e-6
    text = frd_text(ir, fs, "Pa/FS", ["test"])
    rows = np.array([[float(v) for v in ln.split()] for ln in text.splitlines() if not ln.startswith("*")])
    freqs, mag, phase = rows.T
    np.testing.assert_allclose(mag, 0.0, atol=1e-6)
    expected = (-360.0 * freqs * d / fs + 180.0) % 360.0 - 180.0
    expected = np.where(expected <= -180.0, expected + 360.0, expected)
    np.testing.assert_allclose(np.exp(1j * np.radians(phase)), np.exp(1j * np.radians(expected)), atol=1e-7)
    assert "SPL at 0 dBFS (dB re 20 µPa)" in text.splitlines()[1]


def test_export_measurement_rejects_an_unknown_format(tmp_path) -> None:
    with pytest.raises(ValueError, match="fmt: expected one of wav, frd, got 'txt'"):
        export_measurement(tmp_path / "x.h5", tmp_path, "txt")


def test_gated_export_windows_each_step_before_its_reflection(reports, tmp_path, monkeypatch) -> None:
    """FRD export with a gate per azimuth, checked against an independent DFT.

    A gate per azimuth (the free-field fixture has none): the FRD is the DFT of the IR times a half-Hann
    fade ending at that azimuth's gate, written independently here; the manifest names the gate.
    """
    import calib.export.measurements as exp
    from calib.stages.gating import UNGATED, Gate, Gates

    char = reports["pass"].files["characterize"]
    meas = read_measurement(char)
    ends = 0.004 + 0.0005 * np.arange(len(meas.azimuth_deg))  # 4 ms, 4.5 ms, ... per azimuth
    gate = Gate(ends, 0.001, 0.003, 1 / 0.0025, "geometry")
    monkeypatch.setattr(exp, "measurement_gates", lambda m, p: Gates(tuple(gate for _ in m.receivers), UNGATED))
    out = tmp_path / "gated"
    export_measurement(char, out, "frd", gated=True)
    rows = [r for r in manifest(out) if r["group"] == "directivity"]
    t = np.arange(meas.ir_length) / meas.sample_rate
    for row in rows[:: max(1, len(rows) // 6)]:
        a = int(np.flatnonzero(meas.azimuth_deg == float(row["azimuth_deg"]))[0])
        fade = np.clip((t - (ends[a] - 0.001)) / 0.001, 0, 1)
        ref = np.fft.rfft(_ir(meas, row) * 0.5 * (1 + np.cos(np.pi * fade)))[1:]
        _, mag, phase, _ = parse_frd(out / row["file"])
        got = 10 ** (mag / 20) * np.exp(1j * np.radians(phase))
        np.testing.assert_allclose(got, ref, rtol=0, atol=F32 * np.abs(ref).max())
        assert (row["gate"], row["gate_fade_ms"]) == ("geometry, applied", "1")
        np.testing.assert_allclose(float(row["gate_end_ms"]), ends[a] * 1e3, rtol=1e-9)
    assert {r["gate"] for r in manifest(out) if r["group"] == "binaural"} == {"none"}
