"""Station files: validation, applying a station to a procedure, building the station's hardware."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from calib.errors import ProcedureError, RigError
from calib.procedure import load_procedure
from calib.procedure.station_file import Station, apply_station, input_channel_names, load_station, parse_station
from calib.rig import station_rig as rig_station
from calib.rig.sim import SimPositioner, SimTurntable
from calib.rig.turntables import Lt360Turntable, ManualPositioner, ManualTurntable, UnverifiedProtocolWarning

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "stations" / "example-lab.toml"
DUO = ROOT / "procedures" / "duo2.toml"
AURORA = ROOT / "procedures" / "aurora5.toml"

CHANNELS = """
[channels]
outputs = { left = 5, right = 6 }
mics = { arc_0 = 2 }
ears = { left = 3, right = 4 }
loopback = { output = 1, input = 1 }
"""


def _write(tmp_path: Path, text: str, name: str = "bench.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_station_applies_to_duo2():
    station = load_station(EXAMPLE)
    proc = load_procedure(DUO)
    run = apply_station(proc, station)
    assert run.channels.outputs == {"left": 1, "right": 2}
    assert (run.channels.ears.left, run.channels.ears.right) == (3, 4)
    assert run.audio.device == "Fireface" and run.audio.sample_rate == 48000
    # Provenance stays the product's; the original is untouched.
    assert run.sha256 == proc.sha256 and run.source_path == proc.source_path
    assert proc.channels.ears.left == 2
    assert input_channel_names(run) == {"arc_0": 0, "ears.left": 2, "ears.right": 3}
    assert station.turntable.driver_options() == {
        "host": "192.168.10.50", "forward_clockwise": True, "port": 6668, "tolerance_deg": 0.5, "timeout_s": 0.5,
    }
    # -26 dBFS (AES17) at 94 dB SPL: 10^(-26/20) / (sqrt(2) * 20 uPa * 10^(94/20)) FS/Pa.
    expected = 10 ** (-26 / 20) / (math.sqrt(2) * 20e-6 * 10 ** (94 / 20))
    np.testing.assert_allclose(station.mics[0].fs_per_pa, expected, rtol=1e-12)
    np.testing.assert_allclose(expected, 0.035355, rtol=1e-4)


def test_station_channel_map_overrides_and_is_checked(tmp_path):
    proc = load_procedure(DUO)
    run = apply_station(proc, parse_station(CHANNELS, source="b.toml"))
    assert run.channels.outputs == {"left": 5, "right": 6} and run.channels.loopback.input == 1
    assert run.audio.device is None  # the procedure's (none)
    empty = apply_station(proc, Station())
    assert empty.channels == proc.channels


BAD = [
    ("unknown turntable driver", '[turntable]\ndriver = "et300"\n',
     r"""^{f}: turntable\.driver: expected one of 'et250', 'lt360', 'manual' or 'sim', got "et300"$"""),
    ("unknown key", '[turntable]\ndriver = "manual"\nspeed = 3.0\n',
     r"^{f}: turntable\.speed: unknown key; expected one of: driver, host, port, serial_port, "),
    ("unknown section", '[audo]\ndevice = "x"\n',
     r"^{f}: audo: unknown key; expected one of: station, audio, channels, turntable, positioner, air, "
     r"dummy_head, mics, room, results$"),
    ("air outside Cramer's range", '[air]\ntemperature_c = 35.0\n',
     r"^{f}: air\.temperature_c: expected a number <= 30(\.0)?, got 35\.0$"),
    ("dummy head too small", '[dummy_head]\near_radius_m = 0.01\n',
     r"^{f}: dummy_head\.ear_radius_m: expected a number > 0\.03, got 0\.01$"),
    ("air without temperature", '[air]\nrelative_humidity_pct = 40.0\n',
     r"^{f}: air\.temperature_c: required field is missing$"),
    ("air pressure out of range", '[air]\ntemperature_c = 20.0\npressure_kpa = 110.0\n',
     r"^{f}: air\.pressure_kpa: expected a number <= 102(\.0)?, got 110\.0$"),
    ("et250 without host", '[turntable]\ndriver = "et250"\n',
     r'^{f}: turntable\.host: required for driver "et250", got none$'),
    ("serial key on a UDP table", '[turntable]\ndriver = "et250"\nhost = "h"\nbaudrate = 9600\n',
     r'^{f}: turntable\.baudrate: not a key of driver "et250"; '
     r"expected one of: driver, host, forward_clockwise, port, "),
    ("et250 without its direction", '[turntable]\ndriver = "et250"\nhost = "h"\n',
     r'^{f}: turntable\.forward_clockwise: required for driver "et250", got none$'),
    ("wrong type", '[turntable]\ndriver = "et250"\nhost = "h"\nport = "5025"\n',
     r'^{f}: turntable\.port: expected an integer, got "5025"$'),
    ("both sensitivities", '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.05\nsensitivity_dbfs_at_94db = -26.0\n',
     r"^{f}: mics\[0\]: expected exactly one of sensitivity_fs_per_pa or sensitivity_dbfs_at_94db, got both$"),
    ("no sensitivity", '[[mics]]\nname = "arc_0"\n',
     r"^{f}: mics\[0\]: expected exactly one of .*, got neither$"),
    ("sensitivity <= 0", '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.0\n',
     r"^{f}: mics\[0\]\.sensitivity_fs_per_pa: expected a number > 0(\.0)?, got 0\.0$"),
    ("duplicate mic", '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.05\n'
     '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.05\n',
     r'^{f}: mics\[1\]\.name: expected a unique name, got "arc_0" twice$'),
    ("missing calibration file",
     '[[mics]]\nname = "arc_0"\nsensitivity_fs_per_pa = 0.05\ncalibration_file = "no.txt"\n',
     r'^{f}: mics\[0\]\.calibration_file: expected an existing file, got "no.txt" \(.*no\.txt\)$'),
    ("unsupported rate", "[audio]\nsample_rate = 47000\n",
     r"^{f}: audio\.sample_rate: expected one of 44100, 48000, 88200, 96000 Hz, got 47000$"),
    ("invalid TOML", "[audio\n", r"^{f}: invalid TOML: "),
]


@pytest.mark.parametrize(("text", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_station_errors_are_one_line_naming_the_file(tmp_path, text, pattern):
    path = _write(tmp_path, text)
    with pytest.raises(ProcedureError, match=pattern.replace("{f}", _re(path))) as info:
        load_station(path)
    assert "\n" not in str(info.value)


APPLY_BAD = [
    ("channel map names an unknown driver", CHANNELS.replace("left = 5,", "lefty = 5,"),
     r'^{f}: channels\.outputs\.lefty: expected a driver name \(one of left, right\), got "lefty"$'),
    ("channel used twice", CHANNELS.replace("right = 6", "right = 5"),
     r"^{f}: channels\.outputs\.right: expected an unused output channel, got 5 \(already channels\.outputs\.left\)$"),
    ("mic not in the procedure", '[[mics]]\nname = "arc_30"\nsensitivity_fs_per_pa = 0.05\n',
     r'^{f}: mics\[0\]\.name: expected a microphone name \(one of arc_0, ears\.left, ears\.right\), got "arc_30"$'),
    ("rate differs from the procedure", "[audio]\nsample_rate = 96000\n",
     r"^{f}: audio\.sample_rate: expected the procedure's 48000 Hz \(.*duo2\.toml\), got 96000$"),
]


@pytest.mark.parametrize(("text", "pattern"), [b[1:] for b in APPLY_BAD], ids=[b[0] for b in APPLY_BAD])
def test_apply_station_errors_name_the_station_file(tmp_path, text, pattern):
    path = _write(tmp_path, text)
    station = load_station(path)
    with pytest.raises(ProcedureError, match=pattern.replace("{f}", _re(path))):
        apply_station(load_procedure(DUO), station)


def test_missing_station_file(tmp_path):
    with pytest.raises(ProcedureError, match=r"nothere\.toml: no such station file$"):
        load_station(tmp_path / "nothere.toml")


def test_calibration_file_is_relative_to_the_station_file(tmp_path):
    (tmp_path / "mics").mkdir()
    (tmp_path / "mics" / "a.txt").write_text("20 0\n20000 0\n")
    station = load_station(_write(
        tmp_path, '[[mics]]\nname = "ears.left"\nsensitivity_fs_per_pa = 0.05\ncalibration_file = "mics/a.txt"\n'
    ))
    assert station.calibration_path(station.mics[0]) == tmp_path / "mics" / "a.txt"


# ------------------------------------------------------------ station hardware
def test_open_turntable_and_positioner_per_driver(tmp_path):
    proc = load_procedure(DUO)
    # et250: tests/rig/test_et250.py (it needs a table that answers its start-up check)
    text = '[turntable]\ndriver = "lt360"\nserial_port = "loop://"\nclockwise_positive = true\ntimeout_s = 2.0\n'
    # The LT360's command strings are unverified: the station file and opening the driver both say so.
    with pytest.warns(UnverifiedProtocolWarning, match=r'^bench\.toml: turntable\.driver: "lt360": the LT360 driver is '
                                                       r"UNVERIFIED: LinearX's RS-232 command strings"):
        lt_station = parse_station(text, source="bench.toml")
    with pytest.warns(UnverifiedProtocolWarning, match="UNVERIFIED"):
        lt = rig_station.open_turntable(lt_station, proc)
    try:
        assert isinstance(lt, Lt360Turntable) and lt.port == "loop://" and lt.timeout_s == 2.0
        assert lt._to_table(30.0) == -30.0  # clockwise-counting table
    finally:
        lt.close()
    sim = rig_station.open_turntable(parse_station('[turntable]\ndriver = "sim"\n'), proc)
    assert isinstance(sim, SimTurntable) and sim.move_to(-40.0) == -40.0 and sim.angle_deg() == -40.0
    assert isinstance(rig_station.open_turntable(Station(), proc), ManualTurntable)
    assert isinstance(rig_station.open_positioner(Station()), ManualPositioner)
    assert isinstance(rig_station.open_positioner(parse_station('[positioner]\nkind = "sim"\n')), SimPositioner)
    with pytest.raises(RigError, match=r"cannot open LT360 serial port '/dev/calib-no-such-tty'"), \
            pytest.warns(UnverifiedProtocolWarning):
        rig_station.open_turntable(
            parse_station('[turntable]\ndriver = "lt360"\nserial_port = "/dev/calib-no-such-tty"\n'), proc
        )


def test_open_portaudio_rig_wiring(monkeypatch):
    """Channel lists 1..n, device and latency from the station; the turntable is closed if audio fails."""
    import calib.rig.portaudio as pa

    calls = {}

    def fake(device, sample_rate, outs, ins, turntable, positioner, *, blocksize, latency):
        calls.update(device=device, rate=sample_rate, outs=outs, ins=ins, table=turntable, pos=positioner,
                     blocksize=blocksize, latency=latency)
        if device == "broken":
            raise RigError("no audio device matches 'broken'")
        return pa.Rig("portaudio", None, turntable, positioner, simulated=False, info={})  # type: ignore[arg-type]

    monkeypatch.setattr(pa, "make_portaudio_rig", fake)
    proc = load_procedure(AURORA)
    text = '[audio]\ndevice = "{}"\nlatency = 0.05\n[turntable]\ndriver = "sim"\n[positioner]\nkind = "sim"\n'
    rig = rig_station.open_portaudio_rig(proc, parse_station(text.format("Babyface")))
    assert calls["outs"] == list(range(1, 9)) and calls["ins"] == list(range(1, 9))  # loopback on 8
    assert (calls["device"], calls["rate"], calls["latency"], calls["blocksize"]) == ("Babyface", 48000, 0.05, 0)
    assert rig.info == {"station": "station", "turntable": "sim", "positioner": "sim"}
    assert rig.attrs == {} and rig.air == "default (no [air] in <station>)" and rig.speed_of_sound_m_s == 343.0
    rig = rig_station.open_portaudio_rig(proc, parse_station(
        text.format("Babyface") + "[dummy_head]\near_radius_m = 0.075\n[air]\ntemperature_c = 20.0\n"))
    assert rig.attrs == {"ear_radius_m": 0.075, "ear_azimuth_deg": 90.0}
    assert rig.speed_of_sound_m_s == pytest.approx(343.36, abs=0.01)  # Cramer, dry air at 20 degC
    closed = []
    monkeypatch.setattr(SimTurntable, "close", lambda self: closed.append(self))
    with pytest.raises(RigError, match="no audio device matches 'broken'"):
        rig_station.open_portaudio_rig(proc, parse_station(text.format("broken")))
    assert closed == [calls["table"]]


def _re(path: Path) -> str:
    import re

    return re.escape(str(path))


def test_station_room_is_validated_and_read(tmp_path):
    from calib.procedure.station_file import load_station

    path = tmp_path / "bench.toml"
    path.write_text('[room]\ndimensions_m = [7.0, 6.0, 3.2]\ndevice_position_m = [2.5, 3.0, 1.2]\n')
    assert load_station(path).room.device_position_m == (2.5, 3.0, 1.2)
    path.write_text('[room]\ndimensions_m = [7.0, 6.0, 3.2]\ndevice_position_m = [2.5, 3.0, 3.5]\n')
    with pytest.raises(ProcedureError,
                       match=r"bench.toml: room: .*device_position_m \[2.5, 3.0, 3.5\] must lie inside"):
        load_station(path)
