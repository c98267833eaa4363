"""End to end on the real station path: ``calib run`` of a procedure without ``[sim]``, ``--rig portaudio``.

The bench (all on this machine):

- a JACK dummy server (tests/rig/conftest.py) and PortAudio's JACK host API:
  the station's audio device ``system``;
- a stand-in device under test, a JACK client that convolves the driver
  outputs with a plant (arc microphone, left ear, right ear) that depends on
  the turntable angle: point sources at the procedure's ``[[drivers]]``
  positions, a cardioid-ish driver pattern, a crude head shadow, the speed
  of sound of the station's ``[air]``;
- a fake Outline ET250-3D on 127.0.0.1 (tests/rig/et250_fake.py) that turns
  that plant; it holds every placement of a new PortAudio stream until the
  test has routed that stream through the stand-in.

The run ends in a verdict, a PDF report and a results row; its
characterize IRs must equal the stand-in's plant within -40 dB at every
azimuth and at the ears. A plumbing test: three azimuths, one head
position, 0.5 s sweeps (50 Hz-20 kHz: the in-band error of the deconvolution stays near -46 dB).
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sofar
from conftest import PlantDut, route
from et250_fake import FakeEt250

from calib.cli.main import main
from calib.procedure import load_procedure
from calib.procedure.air import speed_of_sound_m_s
from calib.store.measurement import read_measurement
from calib.store.sofa import export_sofa

PROCEDURE = Path(__file__).resolve().parent / "data" / "jack-duo.toml"
SAMPLE_RATE = 48000
N_TAPS = 512
BAND_HZ = (200.0, 16000.0)
MAX_ERROR_DB = -40.0
AIR = (23.0, 40.0)  # degC, % RH in the station file
EAR_OFFSET_M = 0.0875

pytestmark = pytest.mark.jack


@pytest.fixture(scope="module")
def jack_config() -> dict[str, int]:
    return {"sample_rate": SAMPLE_RATE, "period": 1024, "ports": 4}


def _rotation_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _path(src: np.ndarray, axis: np.ndarray, rcv: np.ndarray, normal: np.ndarray | None, c: float) -> np.ndarray:
    """FIR from a driver to a receiver: a windowed-sinc fractional delay r/c, gain ~1/r, a damped resonance."""
    vec = rcv - src
    r = float(np.linalg.norm(vec))
    gain = 0.25 / r * (0.6 + 0.4 * float(axis @ vec) / r)  # driver pattern
    if normal is not None:  # ear on a head: the far side is shadowed
        gain *= 0.6 - 0.4 * float(normal @ vec) / r
    n = np.arange(N_TAPS, dtype=float)
    d = r / c * SAMPLE_RATE
    k = n - d
    direct = np.sinc(k) * np.where(
        np.abs(k) < 32, 0.42 + 0.5 * np.cos(np.pi * k / 32) + 0.08 * np.cos(2 * np.pi * k / 32), 0
    )
    ring = np.where(k >= 0, 0.3 * np.exp(-np.maximum(k, 0) / 12.0) * np.cos(2 * np.pi * 2500.0 * k / SAMPLE_RATE), 0)
    return gain * (direct + ring)


def plant_at(proc: Any, table_deg: float, c: float) -> np.ndarray:
    """[3, S, T]: arc mic, left ear, right ear from each driver with the device turned ``table_deg`` (CCW)."""
    to_device = _rotation_z(-table_deg)  # lab frame -> device frame
    head = np.asarray(proc.positions[0].xyz_m)
    # The head faces the device (yaw 180): its left ear is on the device frame's -y side.
    receivers = [
        (np.array([proc.arc.distance_m, 0.0, 0.0]), None),
        (head + [0.0, -EAR_OFFSET_M, 0.0], np.array([0.0, 1.0, 0.0])),
        (head + [0.0, EAR_OFFSET_M, 0.0], np.array([0.0, -1.0, 0.0])),
    ]
    out = np.zeros((3, len(proc.drivers), N_TAPS))
    for m, (pos, towards_head) in enumerate(receivers):
        rcv = to_device @ pos
        normal = None if towards_head is None else to_device @ -towards_head  # the ear's outward normal
        for s, drv in enumerate(proc.drivers):
            out[m, s] = _path(np.asarray(drv.position_m), np.asarray(drv.axis_vector()), rcv, normal, c)
    return out


class TurntablePlant(PlantDut):
    """The stand-in device: its plant follows the fake table's angle (looked up per JACK cycle).

    When a PortAudio stream registers its ports, the fake table is held
    ("moving") until :class:`Router` has routed that stream: the run's first
    placement (a turntable move, or a status read at 0 deg) waits for the
    routing, so no sweep plays into unconnected ports.
    """

    def __init__(self, client: Any, plants: dict[int, np.ndarray], table: FakeEt250, hold: threading.Event) -> None:
        self.plants = {k: np.asarray(v, dtype=np.float32) for k, v in plants.items()}
        self.table = table
        self.hold = hold
        self.new_stream = threading.Event()
        self.routed_out = -1  # highest PortAudio out_<n> routed so far
        client.set_port_registration_callback(self._on_port)  # before the client is activated
        super().__init__(client, plants[0])

    def _on_port(self, port: Any, register: bool) -> None:
        # JACK's notification thread: no server calls here, only flags for the router thread.
        m = re.match(r"^PortAudio[^:]*:out_(\d+)$", port.name)
        if register and m and int(m.group(1)) > self.routed_out:  # a port of a stream not routed yet
            self.hold.clear()
            self.new_stream.set()

    def _process(self, frames: int) -> None:
        plant = self.plants.get(round(self.table.angle_ccw_deg() * 10))
        if plant is not None:  # between grid angles (moving): keep the last plant
            self.plant = plant
        super()._process(frames)


class Router(threading.Thread):
    """Routes every new PortAudio stream of the run through the stand-in, then releases the table."""

    def __init__(self, dut: TurntablePlant) -> None:
        super().__init__(daemon=True, name="jack-router")
        self.dut = dut
        self.stop = threading.Event()
        self.routed = 0
        self.error: BaseException | None = None

    def _ports(self, kind: str) -> list[int]:
        """Numbers of the PortAudio ``out``/``in`` ports that exist now (a closed stream's are gone)."""
        pattern = re.compile(rf"^PortAudio[^:]*:{kind}_(\d+)$")
        return [int(m.group(1)) for p in self.dut.client.get_ports(is_audio=True) if (m := pattern.match(p.name))]

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.dut.new_stream.wait(0.05):
                    continue
                self.dut.new_stream.clear()
                while len(self._ports("out")) < 3 or len(self._ports("in")) < 4:  # the whole stream registered
                    if self.stop.wait(0.002):
                        return
                self.stop.wait(0.05)  # PortAudio auto-connects on start; route after that
                route(self.dut, 3, 4, drivers=[1, 2], mics=[1, 2, 3], loopback=(3, 4))
                self.dut.routed_out = max(self._ports("out"))
                self.dut.new_stream.clear()  # late notifications of the same stream
                self.routed += 1
                self.dut.hold.set()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.fixture(scope="module")
def bench(jack_server: Any) -> Iterator[tuple[FakeEt250, TurntablePlant, Router, float]]:
    import jack

    proc = load_procedure(PROCEDURE)
    c = speed_of_sound_m_s(*AIR)
    hold = threading.Event()
    hold.set()  # until a PortAudio stream appears
    table = FakeEt250(forward_clockwise=True, speed_deg_s=180.0, hold=hold)
    angles = {0.0} | {-float(az) for az in proc.turntable.grid_deg()}
    plants = {round(a * 10): plant_at(proc, a, c) for a in angles}
    dut = TurntablePlant(jack.Client("dut", no_start_server=True, servername=jack_server.name), plants, table, hold)
    router = Router(dut)
    router.start()
    try:
        yield table, dut, router, c
    finally:
        router.stop.set()
        router.join(timeout=5)
        dut.close()
        table.close()


def _station(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "jack-bench.toml"
    path.write_text(f"""
[station]
name = "jack-bench"

[audio]
device = "system"
sample_rate = 48000

[turntable]
driver = "et250"
host = "127.0.0.1"
port = {port}
forward_clockwise = true
tolerance_deg = 0.25
timeout_s = 0.2
poll_s = 0.01

[positioner]
kind = "sim"

[dummy_head]
ear_radius_m = {EAR_OFFSET_M}
ear_azimuth_deg = 90.0

[air]
temperature_c = {AIR[0]}
relative_humidity_pct = {AIR[1]}
""")
    return path


def _band_error_db(measured: np.ndarray, plant: np.ndarray) -> float:
    """Sum |H - P|^2 / sum |P|^2 over BAND_HZ, in dB (no time shift: loopback-referenced)."""
    n = measured.shape[-1]
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    h = np.fft.rfft(measured, n)[band]
    p = np.fft.rfft(plant, n)[band]
    return float(10 * np.log10(np.sum(np.abs(h - p) ** 2) / np.sum(np.abs(p) ** 2)))


def test_calib_run_on_the_station_path(bench: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table, dut, router, c = bench
    station = _station(tmp_path, table.port)
    out_dir, reports, results = tmp_path / "measurements", tmp_path / "reports", tmp_path / "results.csv"
    code = main(["run", str(PROCEDURE), "--serial", "BENCH-1", "--rig", "portaudio", "--station", str(station),
                 "--out", str(out_dir), "--reports", str(reports), "--results", str(results)])
    out, err = capsys.readouterr()
    assert router.error is None, router.error
    assert code in (0, 1), f"exit {code}: {err[-2000:]}"  # a verdict (PASS 0 / FAIL 1), not an error (2)
    assert re.search(r"^BENCH-1: (PASS|FAIL) \(\d+ checks, \d+ failed\)$", out, re.M), out
    assert router.routed >= 2  # one stream per rig: characterize, verify
    assert (reports / "BENCH-1.pdf").stat().st_size > 0
    with results.open() as f:
        rows = [row for row in csv.DictReader(f)]
    assert len(rows) == 1 and "BENCH-1" in rows[0].values()

    # The characterize IRs are the stand-in's plant at every azimuth and at the ears.
    (path,) = sorted((out_dir / "BENCH-1").glob("characterize-*.h5"))
    meas = read_measurement(path)
    assert meas.rig == "portaudio" and not meas.simulated
    assert meas.attrs["speed_of_sound_m_s"] == pytest.approx(c, abs=1e-9)
    assert meas.attrs["speed_of_sound_source"] == "station [air]: 23 degC, 40 % RH, 101.325 kPa (Cramer 1993)"
    proc = load_procedure(PROCEDURE)
    errors = {}
    for a, az in enumerate(meas.azimuth_deg):
        plant = dut.plants[round(-az * 10)]
        for s in range(len(proc.drivers)):
            errors[f"az {az:g}, driver {s}"] = _band_error_db(meas.directivity_ir[a, 0, s], plant[0, s])
    for e in range(2):
        for s in range(len(proc.drivers)):
            errors[f"ear {e}, driver {s}"] = _band_error_db(meas.binaural_ir[0, e, s], dut.plants[0][1 + e, s])
    assert max(errors.values()) <= MAX_ERROR_DB, {k: round(v, 1) for k, v in errors.items()}
    # SOFA: emitters at the product's drivers, ears where the station's [dummy_head] has them.
    sofa = sofar.read_sofa(str(export_sofa(path, tmp_path / "bench.sofa", group="binaural")), verbose=False)
    sofa.verify()
    np.testing.assert_allclose(sofa.EmitterPosition, [d.position_m for d in proc.drivers], rtol=0, atol=0)
    np.testing.assert_allclose(sofa.ReceiverPosition, [[90.0, 0.0, EAR_OFFSET_M], [270.0, 0.0, EAR_OFFSET_M]])
    assert sofa.GLOBAL_calibSpeedOfSound.startswith(f"{c:.2f} m/s (station [air]")
    # The turntable really turned the plant: the arc IRs at +90 and -90 deg differ by far more.
    assert _band_error_db(meas.directivity_ir[0, 0, 0], dut.plants[round(-meas.azimuth_deg[2] * 10)][0, 0]) > -20
