"""The PortAudio rig, for real: a JACK dummy server and a JACK client as the device.

Set-up (fixtures in tests/rig/conftest.py): ``jackd --no-realtime -d dummy
-r 48000 -p 1024 -C 4 -P 4`` under its own server name; PortAudio's JACK host
API then shows one device, ``system`` (the client owning the ``system:*``
ports), with 4 inputs and 4 outputs at the server's rate; any other rate
is refused ("Invalid sample rate").

How PortAudio's JACK host API maps channels (checked here with jack_lsp and
JACK-Client, libportaudio2 19.6.0): a stream on device ``system`` with n
output and m input channels registers ports ``PortAudio:out_<k>`` and
``PortAudio:in_<k>`` on one JACK client named ``PortAudio``; the numbers
keep counting up across streams (a second stream gets ``out_3..``), so the
newest stream's ports are the highest numbered. Device channel c is the
stream's c-th port, and on start PortAudio auto-connects it to
``system:playback_c`` / ``system:capture_c``. The ``system`` ports of the
dummy backend are sinks/sources only (nothing can read what is played to
``system:playback_c``), so the test removes those links and routes the
stream's own ports: driver outputs -> ``dut:driver_s``, ``dut:mic_m`` ->
mic inputs, and one output straight into one input (loopback). This works
because :class:`PortAudioInterface` keeps one stream (one set of ports) for
its lifetime.

Latency: both paths form a cycle through the JACK graph (PortAudio -> dut ->
PortAudio, and PortAudio -> PortAudio), and JACK delays a cycle by exactly
one period (1024 samples here), so the loopback and the mic paths have the
same latency; loopback-referenced deconvolution then returns the plant with
no time shift, which the measurement test asserts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import DeviceNotFoundError, RigError
from calib.geometry import HeadPosition
from calib.rig import portaudio
from calib.rig.base import Positioner, Rig, Turntable
from calib.rig.portaudio import PortAudioInterface, format_devices, list_devices, make_portaudio_rig

# Fixtures jack_server (a JackServer), plant_dut (a PlantDut) and jack_route
# come from tests/rig/conftest.py; this module sets the server and the plant.
SAMPLE_RATE = 48000
PERIOD = 1024  # JACK frames per cycle: 21 ms, so a loaded 2-core CI box rarely xruns (256 often did)
N_PORTS = 4  # dummy backend capture and playback ports
JackServer = PlantDut = Any  # conftest classes, for annotations only

jack = pytest.mark.jack

# Channel map of the routed interface (1-based device channels), deliberately
# not 1, 2, 3 so a wrong mapping shows up as a wrong plant.
OUTPUTS = [2, 4, 1]  # driver_1, driver_2, loopback out
INPUTS = [3, 1, 4]  # mic_1, mic_2, loopback in
BAND_HZ = (100.0, 16000.0)
MAX_ERROR_DB = -40.0


def _plant(n_taps: int = 128) -> np.ndarray:
    """2 mics x 2 drivers: direct sound at a delay plus a damped resonance, each pair different.

    h[n] = g (delta[n - d] + a e^{-(n - d)/tau} cos(2 pi f0 (n - d)/fs)),  n >= d
    """
    n = np.arange(n_taps)
    params = {  # (mic, driver): (delay, gain, a, tau, f0_hz)
        (0, 0): (12, 0.9, 0.5, 6.0, 1200.0),
        (0, 1): (31, -0.5, 0.3, 15.0, 5000.0),
        (1, 0): (27, 0.4, 0.6, 9.0, 300.0),
        (1, 1): (9, 0.8, -0.4, 20.0, 9000.0),
    }
    plant = np.zeros((2, 2, n_taps))
    for (m, s), (d, g, a, tau, f0) in params.items():
        k = (n - d).astype(float)
        shape = a * np.exp(-k / tau) * np.cos(2 * np.pi * f0 * k / SAMPLE_RATE)
        plant[m, s] = g * np.where(n >= d, (n == d) + shape, 0.0)
    return plant


PLANT = _plant()


@pytest.fixture(scope="module")
def jack_config() -> dict[str, int]:
    return {"sample_rate": SAMPLE_RATE, "period": PERIOD, "ports": N_PORTS}


@pytest.fixture(scope="module")
def dut_plant() -> np.ndarray:
    return PLANT


def _sweep(duration_s: float = 0.5, f1_hz: float = 50.0, f2_hz: float = 20000.0) -> np.ndarray:
    """Exponential sine sweep at -6 dBFS with 10 ms sin^2 fades (Farina 2000)."""
    t = np.arange(int(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    rate = np.log(f2_hz / f1_hz)
    x = np.sin(2 * np.pi * f1_hz * duration_s / rate * np.expm1(t * rate / duration_s))
    n_fade = int(0.01 * SAMPLE_RATE)
    fade = np.sin(np.linspace(0.0, np.pi / 2, n_fade)) ** 2
    x[:n_fade] *= fade
    x[-n_fade:] *= fade[::-1]
    return 0.5 * x


SWEEP = _sweep()
N_TOTAL = SWEEP.size + SAMPLE_RATE // 4  # 250 ms for latency and the plant's tail


def _drive(iface: PortAudioInterface, driver: int) -> np.ndarray:
    """Sweep one driver (and the loopback); return the recording [mic_1, mic_2, loopback]."""
    sig = np.zeros((3, N_TOTAL))
    sig[driver, : SWEEP.size] = SWEEP
    sig[2, : SWEEP.size] = SWEEP
    return iface.playrec(sig)


def _plant_error_db(rec: np.ndarray, driver: int) -> np.ndarray:
    """In-band error of loopback-referenced IRs vs the plant, per mic, in dB.

    H_m = Y_m / Y_loop (spectral division) over ``BAND_HZ``;
    error = sum |H_m - P_m|^2 / sum |P_m|^2 with P the plant's DFT, no time shift.
    """
    spec = np.fft.rfft(rec, axis=-1)
    freqs_hz = np.fft.rfftfreq(N_TOTAL, 1 / SAMPLE_RATE)
    band = (freqs_hz >= BAND_HZ[0]) & (freqs_hz <= BAND_HZ[1])
    measured = spec[:2, band] / spec[2, band]
    expected = np.fft.rfft(PLANT[:, driver], n=N_TOTAL, axis=-1)[:, band]
    err = np.sum(np.abs(measured - expected) ** 2, axis=-1) / np.sum(np.abs(expected) ** 2, axis=-1)
    return 10 * np.log10(err)


@pytest.fixture(scope="module")
def routed(jack_server: JackServer, jack_route: Callable[..., None]) -> Iterator[PortAudioInterface]:
    """One interface for the module, its stream routed through the stand-in device."""
    iface = PortAudioInterface("system", SAMPLE_RATE, OUTPUTS, INPUTS)
    jack_route(max(OUTPUTS), max(INPUTS), drivers=OUTPUTS[:2], mics=INPUTS[:2], loopback=(OUTPUTS[2], INPUTS[2]))
    yield iface
    iface.close()


def _playrec_retrying(iface: PortAudioInterface, driver: int, attempts: int = 5) -> np.ndarray:
    """What the measurement engine does: retry a step that hit an xrun."""
    for attempt in range(attempts):
        try:
            return _drive(iface, driver)
        except RigError as exc:
            if "xrun" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --- the measurement, through the real stream --------------------------------


@jack
def test_list_devices_shows_the_jack_server(jack_server: JackServer) -> None:
    devices = [d for d in list_devices() if d["hostapi"] == "JACK Audio Connection Kit"]
    assert [d["name"] for d in devices] == ["system"]
    dev = devices[0]
    assert (dev["max_input_channels"], dev["max_output_channels"]) == (jack_server.n_capture, jack_server.n_playback)
    assert dev["default_samplerate"] == SAMPLE_RATE
    assert "system" in format_devices(devices)


@jack
def test_sweep_through_jack_recovers_the_plant(routed: PortAudioInterface) -> None:
    assert (routed.n_outputs, routed.n_inputs, routed.sample_rate) == (3, 3, SAMPLE_RATE)
    for driver in range(2):  # one driver at a time
        rec = _playrec_retrying(routed, driver)
        assert rec.shape == (3, N_TOTAL) and rec.dtype == np.float64
        # the loopback carries the sweep, delayed by the interface latency
        lag = int(np.argmax(np.correlate(rec[2], SWEEP, mode="valid")))
        assert_allclose(rec[2, lag : lag + SWEEP.size], SWEEP, atol=1e-6)
        error_db = _plant_error_db(rec, driver)
        assert np.all(error_db <= MAX_ERROR_DB), f"driver {driver + 1}: error {error_db} dB"


@jack
def test_xrun_raises_and_the_retry_measures_correctly(routed: PortAudioInterface, plant_dut: PlantDut) -> None:
    plant_dut.stall_s = 3 * PERIOD / SAMPLE_RATE  # the dut overruns one cycle by far
    match = r"^xrun during playrec on device 'system': \d+ block\(s\) flagged \(.*(overflow|underflow).*\); retry"
    with pytest.raises(RigError, match=match):
        _drive(routed, 0)
    rec = _playrec_retrying(routed, 0)
    assert np.all(_plant_error_db(rec, 0) <= MAX_ERROR_DB)


@jack
def test_frozen_server_is_a_stall_not_a_hang(routed: PortAudioInterface, jack_server: JackServer) -> None:
    margin = routed.stall_margin_s
    routed.stall_margin_s = 0.3
    os.kill(jack_server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(RigError, match=r"stream on device 'system' stalled: \d+ of 4800 samples"):
            routed.playrec(np.zeros((3, 4800)))
    finally:
        os.kill(jack_server.process.pid, signal.SIGCONT)
        routed.stall_margin_s = margin
    rec = _playrec_retrying(routed, 1)  # the server runs again: so does the rig
    assert np.all(_plant_error_db(rec, 1) <= MAX_ERROR_DB)


# --- configuration errors, against the real device ----------------------------


@jack
def test_unknown_device_lists_the_available_ones(jack_server: JackServer) -> None:
    with pytest.raises(DeviceNotFoundError, match=r"no audio device matches 'Fireface UFX'; available: .*'system'"):
        PortAudioInterface("Fireface UFX", SAMPLE_RATE, [1], [1])
    with pytest.raises(DeviceNotFoundError, match=r"no audio device with index 99"):
        PortAudioInterface(99, SAMPLE_RATE, [1], [1])


@jack
def test_device_name_is_a_case_insensitive_substring(jack_server: JackServer) -> None:
    for query in ("SYSTEM", "jack audio", "syst", None, 0):
        iface = PortAudioInterface(query, SAMPLE_RATE, [1], [1])
        try:
            assert iface.device["name"] == "system"
        finally:
            iface.close()


def test_ambiguous_device_name_lists_the_matches() -> None:
    devices = [
        {"index": 3, "name": "USB Audio CODEC", "hostapi": "ALSA"},
        {"index": 7, "name": "USB Audio CODEC #2", "hostapi": "ALSA"},
        {"index": 9, "name": "usb audio codec", "hostapi": "JACK Audio Connection Kit"},
    ]
    with pytest.raises(DeviceNotFoundError, match=r"'usb audio' is ambiguous, matches: \[3\] .*; \[7\] .*; \[9\] "):
        portaudio._match_device("usb audio", devices)
    with pytest.raises(DeviceNotFoundError, match=r"'USB Audio CODEC' is ambiguous, matches: \[3\] .*; \[9\] "):
        portaudio._match_device("USB Audio CODEC", devices)  # two exact names
    assert portaudio._match_device("usb audio codec #2", devices)["index"] == 7
    assert portaudio._match_device("USB Audio CODEC [alsa]", devices)["index"] == 3  # host API disambiguates
    assert portaudio._match_device(9, devices)["index"] == 9


@jack
def test_unsupported_sample_rate(jack_server: JackServer) -> None:
    with pytest.raises(RigError, match=r"sample rate 44100 Hz .* not supported by device 'system'.*48000 Hz"):
        PortAudioInterface("system", 44100, [1], [1])


@jack
@pytest.mark.parametrize(
    ("outputs", "inputs", "match"),
    [
        ([1, N_PORTS + 1], [1], rf"output channel\(s\) \[{N_PORTS + 1}\] out of range .* \(valid: 1..{N_PORTS}\)"),
        ([1], [N_PORTS + 2], rf"input channel\(s\) \[{N_PORTS + 2}\] out of range"),
        ([0], [1], r"output channel\(s\) \[0\] out of range"),
        ([1, 1], [1], r"output channels \[1, 1\] repeat a channel"),
        ([], [1], r"no output channels given"),
    ],
)
def test_bad_channels(jack_server: JackServer, outputs: list[int], inputs: list[int], match: str) -> None:
    with pytest.raises(RigError, match=match):
        PortAudioInterface("system", SAMPLE_RATE, outputs, inputs)


@jack
def test_bad_signal_and_closed_interface(jack_server: JackServer) -> None:
    iface = PortAudioInterface("system", SAMPLE_RATE, [1, 2], [1])
    with pytest.raises(ValueError, match=r"signal must have shape \(2, N>0\), got \(1, 10\)"):
        iface.playrec(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        iface.playrec(np.full((2, 10), np.nan))
    iface.close()
    iface.close()  # idempotent
    with pytest.raises(RigError, match="closed"):
        iface.playrec(np.zeros((2, 10)))


class _Table(Turntable):
    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        return angle_deg

    def angle_deg(self) -> float:
        return 0.0


class _Head(Positioner):
    def place(self, position: HeadPosition) -> None:
        pass


@jack
def test_make_portaudio_rig(jack_server: JackServer) -> None:
    table, head = _Table(), _Head()
    with make_portaudio_rig("system", SAMPLE_RATE, [1, 2], [2], table, head) as rig:
        assert isinstance(rig, Rig)
        assert (rig.name, rig.simulated, rig.turntable, rig.positioner) == ("portaudio", False, table, head)
        assert rig.info == {
            "device": "system",
            "hostapi": "JACK Audio Connection Kit",
            "output_channels": "1,2",
            "input_channels": "2",
        }
        assert (rig.audio.n_outputs, rig.audio.n_inputs) == (2, 1)
    with pytest.raises(RigError, match="closed"):
        rig.audio.playrec(np.zeros((2, 10)))


# --- without PortAudio -------------------------------------------------------


def test_import_does_not_load_sounddevice() -> None:
    code = "import sys, calib, calib.rig.portaudio; print('sounddevice' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_missing_portaudio_is_a_rig_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class _NoPortAudio:
        """Behaves like sounddevice's import where libportaudio2 is absent."""

        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "sounddevice":
                raise OSError("PortAudio library not found")

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    match = r"^PortAudio is not available \(install libportaudio2\): PortAudio library not found$"
    with pytest.raises(RigError, match=match):
        list_devices()
    with pytest.raises(RigError, match=match):
        PortAudioInterface("system", SAMPLE_RATE, [1], [1])
    with pytest.raises(RigError, match=match):
        portaudio.reinitialize_portaudio()


def test_format_devices_table() -> None:
    devices = [
        {"index": 0, "name": "system", "hostapi": "JACK Audio Connection Kit", "max_input_channels": 4,
         "max_output_channels": 4, "default_samplerate": 48000.0, "default_input": True, "default_output": True},
        {"index": 12, "name": "Fireface UFX (23)", "hostapi": "ALSA", "max_input_channels": 30,
         "max_output_channels": 30, "default_samplerate": 44100.0, "default_input": False, "default_output": False},
    ]  # fmt: skip
    assert format_devices(devices) == (
        "   index name              host API                  in out rate_hz\n"
        "><     0 system            JACK Audio Connection Kit  4   4   48000\n"
        "      12 Fireface UFX (23) ALSA                      30  30   44100"
    )
    assert format_devices([]) == "no audio devices found"
