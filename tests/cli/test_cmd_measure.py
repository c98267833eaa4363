"""``calib measure`` and ``calib inspect``: a failed step, inspect, resume; one-line errors with exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from calib.cli.main import EXIT_ERROR, main
from calib.store.measurement import read_measurement

AURORA = Path(__file__).resolve().parents[2] / "procedures" / "aurora5.toml"
DRIVERS = "mid_left, mid_right, tweeter, up_mid, woofer"


def _small_aurora(path: Path, azimuths: str = "[0.0, 90.0]", extra: str = "") -> Path:
    """Aurora 5 at ``azimuths`` and its first two head positions (centre, left_1cm), plus ``extra`` TOML."""
    text = AURORA.read_text()
    before, after = text.split("[[positions]]", 1)
    blocks = after.split("[[positions]]")
    text = before + "[[positions]]" + "[[positions]]".join(blocks[:2]) + blocks[-1][blocks[-1].index("[sweep]"):]
    text = re.sub(r"(?m)^step_deg = .*$", f"azimuths_deg = {azimuths}", text)
    path.write_text(text + extra)
    return path


def _cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calib: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_failed_step_inspect_and_resume(tmp_path, capsys):
    # MESM: calls 0, 1 measure the two azimuths; the first head position loses samples on its
    # capture and both retries (calls 2, 3, 4), so the run stops there with two steps on disk.
    proc = _small_aurora(tmp_path / "p.toml", extra="\n[sim.faults]\ndropout_calls = [2, 3, 4]\n")
    out = tmp_path / "meas"
    code, _, err = _cli(capsys, "measure", proc, "--serial", "SN-CLI-1", "--out", out)
    assert code == EXIT_ERROR
    line = _one_line_error(err)
    assert "characterize head at centre: still bad after 2 retries (dropout in the capture;" in line
    (path,) = (out / "SN-CLI-1").glob("characterize-*.h5")

    code, text, _ = _cli(capsys, "inspect", path)
    assert code == 0
    assert re.search(r"serial +SN-CLI-1 +stage characterize +rig sim +\(SIMULATED\)", text), text
    assert re.search(r"sources +mid_left, mid_right, tweeter, up_mid, woofer", text)
    assert re.search(r"azimuths +2 \(2 measured\), 0 to 90 deg", text)
    assert re.search(r"positions +2 \(0 measured\): centre, left_1cm", text)
    assert re.search(r"complete +NO \(2 steps missing; continue with --resume\)", text)
    assert "quality binaural" not in text  # nothing measured there yet

    # The resumed process plays two captures (calls 0, 1): the injected dropouts are not reached.
    code, _, err = _cli(capsys, "measure", proc, "--serial", "SN-CLI-1", "--out", out, "--resume")
    assert code == 0, err
    assert f"resuming {path}" in err
    assert read_measurement(path).complete
    code, text, _ = _cli(capsys, "inspect", path)
    assert re.search(r"complete +yes", text)
    snr = re.search(r"quality binaural +SNR ([0-9.]+)\.\.([0-9.]+) dB, THD max ([0-9.]+) %.*retries 0", text)
    assert snr, text
    assert 40.0 < float(snr.group(1)) <= float(snr.group(2)) < 90.0

    code, _, err = _cli(capsys, "measure", proc, "--serial", "SN-CLI-1", "--out", out, "--resume")
    assert code == EXIT_ERROR
    assert "--resume: no incomplete characterize measurement of SN-CLI-1 in" in _one_line_error(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--serial", "bad serial!"), "--serial: expected 1-64 letters, digits, '_', '.' or '-' starting "
                                      "with a letter or digit, got 'bad serial!'"),
        (("--serial", "SN1", "--resume"), "--resume: no incomplete characterize measurement of SN1 in "),
        (("--serial", "SN1", "--rig", "bogus"), "--rig: expected one of sim, replay:<measurement.h5>, portaudio, "
                                                "got 'bogus'"),
        (("--serial", "SN1", "--sim-fault", "melted=woofer"), "--sim-fault: expected dead=DRIVER or "
                                                              "reversed=DRIVER, got 'melted=woofer'"),
        (("--serial", "SN1", "--sim-fault", "dead="), "--sim-fault: expected dead=DRIVER or reversed=DRIVER, "
                                                      "got 'dead='"),
        (("--serial", "SN1", "--sim-fault", "dead=subwoofer"), f"unknown driver 'subwoofer'; valid: {DRIVERS}"),
    ],
)
def test_measure_errors_are_one_line_with_exit_code_2(tmp_path, capsys, args, message):
    proc = _small_aurora(tmp_path / "p.toml")
    out = tmp_path / "meas"
    code, _, err = _cli(capsys, "measure", proc, "--out", out, *args)
    assert code == EXIT_ERROR
    assert message in _one_line_error(err)
    assert not list(out.rglob("*.h5"))  # nothing half-made left behind


def test_inspect_errors(tmp_path, capsys):
    code, _, err = _cli(capsys, "inspect", tmp_path / "none.h5")
    assert code == EXIT_ERROR and "none.h5: no such file" in _one_line_error(err)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    code, _, err = _cli(capsys, "inspect", junk)
    assert code == EXIT_ERROR and "junk.h5: not a readable HDF5 file" in _one_line_error(err)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something-else"
    code, _, err = _cli(capsys, "inspect", other)
    assert code == EXIT_ERROR
    assert "format: expected 'calib-measurement', got 'something-else'" in _one_line_error(err)


def test_measure_without_loopback_warns(tmp_path, capsys):
    proc = _small_aurora(tmp_path / "p.toml", azimuths="[0.0]")
    proc.write_text(proc.read_text().replace("loopback = { output = 8, input = 8 }", "allow_no_loopback = true"))
    code, text, err = _cli(capsys, "measure", proc, "--serial", "SN-NOLB", "--out", tmp_path / "meas")
    assert code == 0, err
    assert "calib: warning: no loopback channel: IRs keep the interface latency and response" in err
    path = Path(text.strip().removeprefix("measurement: "))
    m = read_measurement(path)
    assert m.complete and np.all(m.quality["directivity"]["latency_samples"] == -1)
