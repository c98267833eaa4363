"""Table of bad inputs across every command: exit 2, one line naming the culprit, no traceback, nothing changed.

Each case gets a private copy of a finished archive (see conftest), spoils
one thing, runs ``calib.cli.main.main`` in-process and checks that every
file that existed before is byte-identical afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from calib.cli.main import main

SERIAL = "T1"  # the archive fixture's unit (conftest)

Case = tuple[str, Callable[[dict[str, Path]], list[str]], str]


def _proc(cmd: str, old: str, new: str, *extra: str) -> Callable[[dict[str, Path]], list[str]]:
    """A procedure with ``old`` replaced by ``new``, given to ``cmd``."""

    def setup(a: dict[str, Path]) -> list[str]:
        text = a["proc"].read_text()
        assert old in text, old
        bad = a["base"] / "bad.toml"
        bad.write_text(text.replace(old, new, 1))
        argv = [cmd, str(bad)]
        if cmd in ("measure", "run"):
            argv += ["--serial", "N1", "--out", str(a["out"])]
        if cmd == "run":
            argv += ["--reports", str(a["reports"]), "--results", str(a["results"])]
        return argv + list(extra)

    return setup


def _raw_proc(content: bytes | None) -> Callable[[dict[str, Path]], list[str]]:
    def setup(a: dict[str, Path]) -> list[str]:
        bad = a["base"] / "raw.toml"
        if content is None:
            bad.mkdir()
        else:
            bad.write_bytes(content)
        return ["check", str(bad)]

    return setup


def _serial(cmd: str, serial: str) -> Callable[[dict[str, Path]], list[str]]:
    def setup(a: dict[str, Path]) -> list[str]:
        common = ["--out", str(a["out"])]
        if cmd == "verify":
            return ["verify", str(a["calibration"]), "--serial", serial, *common, "--reports", str(a["reports"]),
                    "--results", str(a["results"])]
        extra = ["--reports", str(a["reports"]), "--results", str(a["results"])] if cmd == "run" else []
        return [cmd, str(a["proc"]), "--serial", serial, *common, *extra]

    return setup


def _argv(build: Callable[[dict[str, Path]], list[str]]) -> Callable[[dict[str, Path]], list[str]]:
    return build


def _h5(role: str, edit: Callable[[h5py.File], None], cmd: str) -> Callable[[dict[str, Path]], list[str]]:
    """Edit the archive's ``role`` file in place, then run ``cmd`` on it (or on what depends on it)."""

    def setup(a: dict[str, Path]) -> list[str]:
        with h5py.File(a[role], "r+") as f:
            edit(f)
        return _command(cmd, a, a[role])

    return setup


def _bytes(role: str, content: Callable[[bytes], bytes], cmd: str) -> Callable[[dict[str, Path]], list[str]]:
    def setup(a: dict[str, Path]) -> list[str]:
        a[role].write_bytes(content(a[role].read_bytes()))
        return _command(cmd, a, a[role])

    return setup


def _command(cmd: str, a: dict[str, Path], target: Path) -> list[str]:
    if cmd == "fit":
        return ["fit", str(target), "--out", str(a["base"] / "new-cal.h5")]
    if cmd == "inspect":
        return ["inspect", str(target)]
    if cmd == "export":
        fmt = "raw" if target.name.startswith("calibration") else "sofa"
        return ["export", str(target), "--format", fmt, "--out", str(a["base"] / "exported")]
    if cmd == "verify":
        return ["verify", str(a["calibration"]), "--out", str(a["out"]), "--reports", str(a["reports"]),
                "--results", str(a["results"])]
    if cmd == "report":
        return ["report", str(a["verification"]), "--reports", str(a["reports"]), "--results", str(a["results"])]
    if cmd == "run-resume":
        return ["run", str(a["proc"]), "--serial", SERIAL, "--out", str(a["out"]), "--reports", str(a["reports"]),
                "--results", str(a["results"]), "--resume"]
    raise AssertionError(cmd)


def _set(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


def _nan_ir(f: h5py.File) -> None:
    ir = f["directivity/ir"]
    ir[0, 0, 0, 10] = np.nan


def _replace(name: str, data: np.ndarray) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[name]
        f[name] = data

    return edit


def _delete(name: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[name]

    return edit


def _fir_nan(f: h5py.File) -> None:
    f["fir"][0, 0, 3] = np.nan


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


PROC = [
    ("level nan", _proc("check", "level_dbfs = -6.0", "level_dbfs = nan"), "sweep.level_dbfs"),
    ("level +inf", _proc("check", "level_dbfs = -6.0", "level_dbfs = inf"), "sweep.level_dbfs"),
    ("snr nan", _proc("check", "min_snr_db = 15.0", "min_snr_db = nan"), "sweep.min_snr_db"),
    ("snr -inf", _proc("check", "min_snr_db = 15.0", "min_snr_db = -inf"), "sweep.min_snr_db"),
    ("xyz nan", _proc("check", "xyz_m = [0.8, 0.0, 0.0]", "xyz_m = [0.8, nan, 0.0]"), "positions[0].xyz_m"),
    ("yaw inf", _proc("check", 'name = "centre"', 'name = "centre"\nyaw_deg = inf'), "positions[0].yaw_deg"),
    ("tolerance nan", _proc("check", "tolerance_db = 1.0", "tolerance_db = nan"), "targets.cancellation.tolerance_db"),
    ("curve nan", _proc("check", "[[500.0, 12.0]", "[[500.0, nan]"), "targets.cancellation.curve_hz_db"),
    ("holdout -inf", _proc("check", "holdout_median_min_db = 8.0", "holdout_median_min_db = -inf"),
     "targets.cancellation.holdout_median_min_db"),
    ("effort inf", _proc("check", "max_db = 15.0", "max_db = inf"), "targets.effort.max_db"),
    ("delay nan", _proc("check", "modeling_delay_ms = 8.0", "modeling_delay_ms = nan"), "fit.modeling_delay_ms"),
    ("cap nan", _proc("check", "effort_cap_db = 15.0", "effort_cap_db = nan"), "fit.effort_cap_db"),
    ("azimuth 400", _proc("check", "step_deg = 30.0", "azimuths_deg = [0.0, 400.0]"), "turntable.azimuths_deg[1]"),
    ("azimuth 180", _proc("check", "step_deg = 30.0", "azimuths_deg = [0.0, 180.0]"), "turntable.azimuths_deg[1]"),
    ("azimuth -181", _proc("check", "step_deg = 30.0", "azimuths_deg = [-181.0]"), "turntable.azimuths_deg[0]"),
    ("azimuth twice", _proc("check", "step_deg = 30.0", "azimuths_deg = [0.0, 30.0, 0.0]"), "azimuths_deg"),
    ("azimuth nan", _proc("check", "step_deg = 30.0", "azimuths_deg = [nan]"), "turntable.azimuths_deg[0]"),
    ("azimuths empty", _proc("check", "step_deg = 30.0", "azimuths_deg = []"), "azimuths_deg"),
    ("step nan", _proc("check", "step_deg = 30.0", "step_deg = nan"), "turntable.step_deg"),
    ("distance inf", _proc("check", "distance_m = 2.0", "distance_m = inf"), "arc.distance_m"),
    ("h2 nan", _proc("check", "h2 = 0.004", "h2 = nan"), "sim.drivers.left.h2"),
    ("sensitivity nan", _proc("check", "sensitivity_db_spl = 85.0", "sensitivity_db_spl = nan"),
     "sim.drivers.left.sensitivity_db_spl"),
    ("speed inf", _proc("check", "speed_deg_s = 30.0", "speed_deg_s = inf"), "turntable.speed_deg_s"),
    ("duration text", _proc("check", "duration_s = 0.5", 'duration_s = "fast"'), "sweep.duration_s"),
    ("sample rate", _proc("check", "sample_rate = 48000", "sample_rate = 12345"), "audio.sample_rate"),
    ("unknown key", _proc("check", "level_dbfs = -6.0", "level_dbfs = -6.0\ncolour = 1"), "sweep.colour"),
    ("driver name", _proc("check", 'name = "left"', 'name = "9left"'), "drivers[0].name"),
    ("channel 0", _proc("check", "outputs = { left = 1", "outputs = { left = 0"), "channels.outputs.left"),
    ("bad toml", _proc("check", "[arc]", "[arc"), "invalid TOML"),
    ("taps float", _proc("check", "taps = 2048", "taps = 2048.5"), "fit.taps"),
    ("empty file", _raw_proc(b""), "raw.toml"),
    ("binary file", _raw_proc(b"\xff\xfe\x00garbage"), "raw.toml"),
    ("procedure folder", _raw_proc(None), "raw.toml"),
    ("no procedure", _argv(lambda a: ["check", str(a["base"] / "missing.toml")]), "missing.toml"),
    ("measure level nan", _proc("measure", "level_dbfs = -6.0", "level_dbfs = nan"), "sweep.level_dbfs"),
    ("measure azimuth 400", _proc("measure", "step_deg = 30.0", "azimuths_deg = [400.0]"), "turntable.azimuths_deg"),
    ("run xyz inf", _proc("run", "xyz_m = [0.8, 0.0, 0.0]", "xyz_m = [inf, 0.0, 0.0]"), "positions[0].xyz_m"),
    ("run snr nan", _proc("run", "min_snr_db = 15.0", "min_snr_db = nan"), "sweep.min_snr_db"),
    ("run bad fault", _proc("run", "level_dbfs = -6.0", "level_dbfs = -6.0", "--sim-fault", "broken=left"),
     "--sim-fault"),
    ("measure empty fault", _proc("measure", "level_dbfs = -6.0", "level_dbfs = -6.0", "--sim-fault", "dead="),
     "--sim-fault"),
]

SERIALS = [
    ("measure serial empty", _serial("measure", ""), "--serial"),
    ("measure serial escape", _serial("measure", "../../escape"), "--serial"),
    ("measure serial 300", _serial("measure", "a" * 300), "--serial"),
    ("measure serial hidden", _serial("measure", ".hidden"), "--serial"),
    ("measure serial umlaut", _serial("measure", "ü1"), "--serial"),
    ("run serial escape", _serial("run", "../x"), "--serial"),
    ("run serial empty", _serial("run", ""), "--serial"),
    ("run serial slash", _serial("run", "a/b"), "--serial"),
    ("run serial space", _serial("run", "a b"), "--serial"),
    ("verify serial escape", _serial("verify", "../../escape"), "--serial"),
    ("verify serial empty", _serial("verify", ""), "--serial"),
    ("verify serial 65", _serial("verify", "x" * 65), "--serial"),
    ("verify serial dotdot", _serial("verify", ".."), "--serial"),
]


def _existing_file(a: dict[str, Path]) -> Path:
    path = a["base"] / "a-file"
    path.write_text("not a folder")
    return path


PATHS = [
    ("measure out is a file", _argv(lambda a: ["measure", str(a["proc"]), "--serial", "N1", "--out",
                                               str(_existing_file(a))]), "--out"),
    ("run out is a file", _argv(lambda a: ["run", str(a["proc"]), "--serial", "N1", "--out", str(_existing_file(a)),
                                           "--reports", str(a["reports"]), "--results", str(a["results"])]), "--out"),
    ("run out under a file", _argv(lambda a: ["run", str(a["proc"]), "--serial", "N1", "--out",
                                              str(_existing_file(a) / "sub"), "--reports", str(a["reports"]),
                                              "--results", str(a["results"])]), "--out"),
    ("verify out is a file", _argv(lambda a: ["verify", str(a["calibration"]), "--out", str(_existing_file(a)),
                                              "--reports", str(a["reports"]), "--results", str(a["results"])]),
     "--out"),
    ("fit out exists", _argv(lambda a: ["fit", str(a["characterize"]), "--out", str(a["calibration"])]), "--out"),
    ("fit out is a folder", _argv(lambda a: ["fit", str(a["characterize"]), "--out", str(a["unit"])]), "--out"),
    ("run reports is a file", _argv(lambda a: ["run", str(a["proc"]), "--serial", "N1", "--out", str(a["out"]),
                                               "--reports", str(_existing_file(a)), "--results", str(a["results"])]),
     "--reports"),
    ("run results is a folder", _argv(lambda a: ["run", str(a["proc"]), "--serial", "N1", "--out", str(a["out"]),
                                                 "--reports", str(a["reports"]), "--results", str(a["unit"])]),
     "--results"),
    ("verify results is a folder", _argv(lambda a: ["verify", str(a["calibration"]), "--out", str(a["out"]),
                                                    "--reports", str(a["reports"]), "--results", str(a["unit"])]),
     "--results"),
    ("report reports is a file", _argv(lambda a: ["report", str(a["verification"]), "--reports",
                                                  str(_existing_file(a)), "--results", str(a["results"])]),
     "--reports"),
    ("report results garbage", _bytes("results", lambda b: b"\x00\x01not,a\nresults", "report"), "results.csv"),
    ("run results garbage", _bytes("results", lambda b: b"serial\n", "run-resume"), "results.csv"),
    ("fit missing", _argv(lambda a: ["fit", str(a["base"] / "none.h5")]), "none.h5"),
    ("verify missing", _argv(lambda a: ["verify", str(a["base"] / "none.h5")]), "none.h5"),
    ("report missing", _argv(lambda a: ["report", str(a["base"] / "none.h5")]), "none.h5"),
    ("inspect missing", _argv(lambda a: ["inspect", str(a["base"] / "none.h5")]), "none.h5"),
    ("inspect folder", _argv(lambda a: ["inspect", str(a["unit"])]), str(SERIAL)),
    ("station missing", _argv(lambda a: ["measure", str(a["proc"]), "--serial", "N1", "--out", str(a["out"]),
                                         "--station", str(a["base"] / "st.toml")]), "st.toml"),
    ("run missing serial", _argv(lambda a: ["run", str(a["proc"])]), "--serial"),
    ("measure unknown option", _argv(lambda a: ["measure", str(a["proc"]), "--serial", "N1", "--colour", "red"]),
     "--colour"),
]

FILES = [
    ("fit NaN IR", _h5("characterize", _nan_ir, "fit"), "/directivity/ir"),
    ("inspect NaN IR", _h5("characterize", _nan_ir, "inspect"), "/directivity/ir"),
    ("report NaN IR (hash)", _h5("characterize", _nan_ir, "report"), "characterize_sha256"),
    ("fit version text", _h5("characterize", _set("version", "one"), "fit"), "version"),
    ("inspect version text", _h5("characterize", _set("version", "one"), "inspect"), "version"),
    ("fit version 99", _h5("characterize", _set("version", 99), "fit"), "version"),
    ("fit version 0", _h5("characterize", _set("version", 0), "fit"), "version"),
    ("fit format", _h5("characterize", _set("format", "other"), "fit"), "format"),
    ("fit stage", _h5("characterize", _set("stage", "bogus"), "fit"), "stage"),
    ("fit sample rate text", _h5("characterize", _set("sample_rate", "fast"), "fit"), "sample_rate"),
    ("fit complete text", _h5("characterize", _set("complete", "yes"), "fit"), "complete"),
    ("fit done missing", _h5("characterize", _delete("directivity/done"), "fit"), "/directivity/done"),
    ("fit done dtype", _h5("characterize", _replace("directivity/done", np.ones(12, np.float64)), "fit"),
     "/directivity/done"),
    ("fit done short", _h5("characterize", _replace("binaural/done", np.ones(2, bool)), "fit"), "/binaural/done"),
    ("fit azimuth shape", _h5("characterize", _replace("directivity/azimuth_deg", np.zeros(3)), "fit"),
     "/directivity/ir"),
    ("fit azimuth nan", _h5("characterize", _replace("directivity/azimuth_deg", np.full(12, np.nan)), "fit"),
     "/directivity/azimuth_deg"),
    ("fit sources numbers", _h5("characterize", _replace("sources", np.arange(2)), "fit"), "/sources"),
    ("fit ir text", _h5("characterize", _replace("binaural/ir", np.array(["x"], dtype=object)), "fit"),
     "/binaural/ir"),
    ("fit complete but missing", _h5("characterize", lambda f: f["binaural/done"].__setitem__(0, False), "fit"),
     "complete"),
    ("fit verify file", _argv(lambda a: ["fit", str(a["verification"]), "--out", str(a["base"] / "c.h5")]), "stage"),
    ("fit calibration file", _argv(lambda a: ["fit", str(a["calibration"]), "--out", str(a["base"] / "c.h5")]),
     "format"),
    ("fit zero bytes", _bytes("characterize", lambda b: b"", "fit"), "characterize-"),
    ("fit text file", _bytes("characterize", lambda b: b"hello", "fit"), "characterize-"),
    ("fit truncated", _bytes("characterize", _half, "fit"), "characterize-"),
    ("inspect truncated", _bytes("characterize", _half, "inspect"), "characterize-"),
    ("report truncated", _bytes("verification", _half, "report"), "verify-"),
    ("report on characterize", _argv(lambda a: ["report", str(a["characterize"]), "--reports", str(a["reports"]),
                                                "--results", str(a["results"])]), "stage"),
    ("report incomplete", _h5("verification", _set("complete", False), "report"), "complete"),
    ("report serial edited", _h5("verification", _set("serial", "T9"), "report"), "custody_seal"),
    ("inspect serial edited", _h5("verification", _set("serial", "T9"), "inspect"), "custody_seal"),
    ("report seal missing", _h5("verification", lambda f: f.attrs.__delitem__("custody_seal"), "report"),
     "custody_seal"),
    ("report link edited", _h5("verification", _set("calibration_path", "T1/other.h5"), "report"), "custody_seal"),
    ("report calibration edited", _h5("calibration", _set("software", "edited"), "report"), "calibration_sha256"),
    ("inspect calibration edited", _bytes("calibration", lambda b: b + b"\0", "report"), "calibration_sha256"),
    ("report calibration gone", _bytes("calibration", lambda b: b"", "report"), "calibration_sha256"),
    ("verify truncated calibration", _bytes("calibration", _half, "verify"), "calibration-"),
    ("verify fir nan", _h5("calibration", _fir_nan, "verify"), "fir"),
    ("inspect fir nan", _h5("calibration", _fir_nan, "inspect"), "fir"),
    ("verify calibration serial escape", _h5("calibration", _set("serial", "../x"), "verify"), "serial"),
    ("verify calibration sha text", _h5("calibration", _set("measurement_sha256", "nope"), "verify"),
     "measurement_sha256"),
    ("verify calibration rate text", _h5("calibration", _set("sample_rate", "x"), "verify"), "calibration-"),
    ("verify calibration no fir", _h5("calibration", _delete("fir"), "verify"), "fir"),
    ("verify calibration version", _h5("calibration", _set("version", 2.5), "verify"), "version"),
]

def _wav(a: dict[str, Path], data: np.ndarray, rate: int = 48000) -> Path:
    from scipy.io import wavfile

    path = a["base"] / "in.wav"
    wavfile.write(path, rate, data)
    return path


OTHER_COMMANDS = [
    ("export missing", _argv(lambda a: ["export", str(a["base"] / "none.h5"), "--format", "raw"]), "none.h5"),
    ("export wrong format for kind", _argv(lambda a: ["export", str(a["calibration"]), "--format", "sofa",
                                                      "--out", str(a["base"] / "x")]), "sofa"),
    ("export unknown format", _argv(lambda a: ["export", str(a["calibration"]), "--format", "mp3"]), "mp3"),
    ("export NaN IR", _h5("characterize", _nan_ir, "export"), "/directivity/ir"),
    ("export fir nan", _h5("calibration", _fir_nan, "export"), "fir"),
    ("export truncated calibration", _argv(lambda a: (a["calibration"].write_bytes(a["calibration"].read_bytes()[:500]),
                                                      ["export", str(a["calibration"]), "--format", "raw", "--out",
                                                       str(a["base"] / "x")])[1]), "calibration-"),
    ("render missing calibration", _argv(lambda a: ["render", str(a["base"] / "none.h5"), str(a["proc"]),
                                                    str(a["base"] / "o.wav")]), "none.h5"),
    ("render mono wav", _argv(lambda a: ["render", str(a["calibration"]), str(_wav(a, np.zeros(480, np.float32))),
                                         str(a["base"] / "o.wav")]), "in.wav"),
    ("render wrong rate", _argv(lambda a: ["render", str(a["calibration"]),
                                           str(_wav(a, np.zeros((480, 2), np.float32), 44100)),
                                           str(a["base"] / "o.wav")]), "in.wav"),
    ("render not a wav", _argv(lambda a: ["render", str(a["calibration"]), str(a["proc"]), str(a["base"] / "o.wav")]),
     "duo.toml"),
    ("calibrate-mic missing", _argv(lambda a: ["calibrate-mic", str(a["base"] / "none.wav")]), "none.wav"),
    ("calibrate-mic not a wav", _argv(lambda a: ["calibrate-mic", str(a["proc"])]), "duo.toml"),
    ("calibrate-mic spl range", _argv(lambda a: ["calibrate-mic", str(_wav(a, np.zeros(48000, np.float32))),
                                                 "--spl", "500"]), "--spl"),
    ("devices extra argument", _argv(lambda a: ["devices", "extra"]), "extra"),
    ("unknown command", _argv(lambda a: ["calibrate-everything"]), "calibrate-everything"),
]

CASES: list[Case] = PROC + SERIALS + PATHS + FILES + OTHER_COMMANDS


def test_the_table_has_at_least_80_distinct_cases() -> None:
    names = [name for name, _, _ in CASES]
    assert len(set(names)) == len(names) >= 80


def _snapshot(base: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in base.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize(("setup", "culprit"), [pytest.param(s, c, id=n) for n, s, c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(archive, setup, culprit, capsys, tmp_path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("CALIB_LOG_DIR", str(tmp_path / "logs"))
    argv = setup(archive)
    before = _snapshot(archive["base"])
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calib: error: "), err
    assert culprit in lines[0], (culprit, lines[0])
    assert "Traceback" not in out + err and "internal error" not in err
    after = _snapshot(archive["base"])
    changed = [str(p) for p, data in before.items() if after.get(p) != data]
    assert not changed, f"changed or removed: {changed}"
    assert not (tmp_path / "logs").exists(), "no internal error was logged"
    assert re.match(r"calib: error: ", lines[0])
