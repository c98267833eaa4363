"""JACK fixtures: a dummy-backend JACK server and a stand-in device under test.

``jack_server`` starts ``jackd --no-realtime -d dummy`` under a unique server
name (so a JACK server the user runs is left alone), points PortAudio and
JACK-Client at it through ``JACK_DEFAULT_SERVER``, waits until it answers and
re-initializes PortAudio (which only sees JACK if it is initialized after the
server is up). Teardown terminates PortAudio *before* stopping jackd, then
kills jackd if it does not exit, and re-initializes PortAudio without JACK.

Missing jackd, libportaudio2, libjack or JACK-Client skips these tests
locally and fails them when ``CI`` is set: CI must exercise the real stream.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

START_TIMEOUT_S = 10.0


def require(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (CI) when a JACK test prerequisite is missing."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the JACK tests must run; see .ci/install-audio.sh)")
    pytest.skip(reason)


@dataclass
class JackServer:
    """A running dummy-backend JACK server."""

    name: str
    sample_rate: int
    period: int
    n_capture: int
    n_playback: int
    process: subprocess.Popen[bytes]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop jackd: SIGCONT (a test may have frozen it), then SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def jack_config() -> dict[str, int]:
    """Server settings; a test module may override: sample_rate, period (frames), ports (-C and -P)."""
    return {"sample_rate": 48000, "period": 1024, "ports": 4}


@pytest.fixture(scope="module")
def jack_server(jack_config: dict[str, int]) -> Iterator[JackServer]:
    """Start a dummy JACK server for the module, with PortAudio attached to it."""
    from calib.errors import RigError
    from calib.rig import portaudio

    require(shutil.which("jackd") is not None, "jackd not installed (apt-get install jackd2)")
    try:
        portaudio._sd()
    except RigError as exc:
        require(False, str(exc))
    try:
        import jack
    except (ImportError, OSError) as exc:
        require(False, f"JACK-Client not usable: {exc}")

    name = f"calib-test-{os.getpid()}"
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name  # read by libjack in PortAudio and JACK-Client
    os.environ["JACK_NO_START_SERVER"] = "1"
    log = tempfile.TemporaryFile()
    rate, period, ports = (int(jack_config[key]) for key in ("sample_rate", "period", "ports"))
    cmd = ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate),
           "-p", str(period), "-C", str(ports), "-P", str(ports)]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in pytest must not kill it before teardown
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"jackd exited with {proc.returncode}: {log.read().decode(errors='replace')[-2000:]}")
            try:
                probe = jack.Client("calib-probe", no_start_server=True, servername=name)
            except jack.JackOpenError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jackd did not answer within {START_TIMEOUT_S} s")
                time.sleep(0.05)
                continue
            assert (probe.samplerate, probe.blocksize) == (rate, period), "jackd ignored -r/-p"
            probe.close()
            break
        portaudio.reinitialize_portaudio()
        yield JackServer(name, rate, period, ports, ports, proc)
    finally:
        try:
            portaudio.terminate_portaudio()  # before jackd goes away
        finally:
            _stop(proc)
            log.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            portaudio.reinitialize_portaudio()  # usable again, without JACK


class PlantDut:
    """A JACK client standing in for the device under test.

    Inputs ``driver_1..S`` (fed by the interface outputs), outputs
    ``mic_1..M`` (into the interface inputs). Each JACK cycle computes

        mic_m[n] = sum_s (plant[m, s] * driver_s)[n]

    as a direct FIR convolution carrying the last ``T - 1`` input samples
    across cycles, so the streamed output equals the linear convolution of
    the whole input.

    Parameters
    ----------
    client : jack.Client
        An unactivated client; it is activated here.
    plant : ndarray, shape (M, S, T)
        FIR of driver s to mic m.
    """

    def __init__(self, client: Any, plant: np.ndarray) -> None:
        self.client = client
        self.plant = np.asarray(plant, dtype=np.float32)
        n_mics, n_drivers, n_taps = self.plant.shape
        self.drivers = [client.inports.register(f"driver_{s + 1}") for s in range(n_drivers)]
        self.mics = [client.outports.register(f"mic_{m + 1}") for m in range(n_mics)]
        self._history = np.zeros((n_drivers, n_taps - 1), dtype=np.float32)
        self.stall_s = 0.0  # > 0: sleep once, in the first cycle with driver signal (forces an xrun)
        client.set_process_callback(self._process)
        client.activate()

    def _process(self, frames: int) -> None:
        x = np.stack([port.get_array() for port in self.drivers])
        ext = np.concatenate([self._history, x], axis=1)
        self._history = ext[:, frames:].copy()
        for m, port in enumerate(self.mics):
            port.get_array()[:] = sum(
                np.convolve(ext[s], self.plant[m, s], mode="valid") for s in range(len(self.drivers))
            )
        if self.stall_s > 0 and np.any(x):
            stall_s, self.stall_s = self.stall_s, 0.0
            time.sleep(stall_s)  # longer than a period: the server reports an xrun to every client

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _portaudio_ports(client: Any, direction: str, count: int) -> list[Any]:
    """The ``count`` newest PortAudio ports (``out`` or ``in``), in channel order.

    PortAudio's JACK port numbers keep counting up across streams, so the
    ports of the newest stream are the highest numbered ones.
    """
    pattern = re.compile(rf"^PortAudio[^:]*:{direction}_(\d+)$")
    ports = [(int(m.group(1)), p) for p in client.get_ports(is_audio=True) if (m := pattern.match(p.name))]
    ports.sort(key=lambda item: item[0])
    if len(ports) < count:
        raise AssertionError(f"expected {count} PortAudio {direction} ports, found {[p.name for _, p in ports]}")
    return [p for _, p in ports[-count:]]


def route(
    dut: PlantDut,
    n_device_outputs: int,
    n_device_inputs: int,
    drivers: Sequence[int],
    mics: Sequence[int],
    loopback: tuple[int, int],
) -> None:
    """Wire the newest PortAudio stream through ``dut`` instead of the system ports.

    Parameters
    ----------
    n_device_outputs, n_device_inputs : int
        Channels the stream opened (device channels 1..n).
    drivers : list of int
        1-based device output channel feeding ``driver_1``, ``driver_2``...
    mics : list of int
        1-based device input channel fed by ``mic_1``, ``mic_2``...
    loopback : (int, int)
        1-based (output, input) channels wired straight to each other.
    """
    client = dut.client
    outs = _portaudio_ports(client, "out", n_device_outputs)
    ins = _portaudio_ports(client, "in", n_device_inputs)
    for port in outs:  # drop PortAudio's automatic system:playback_k links
        for other in client.get_all_connections(port):
            client.disconnect(port, other)
    for port in ins:  # and its system:capture_k links
        for other in client.get_all_connections(port):
            client.disconnect(other, port)
    for s, chan in enumerate(drivers):
        client.connect(outs[chan - 1], dut.drivers[s])
    for m, chan in enumerate(mics):
        client.connect(dut.mics[m], ins[chan - 1])
    client.connect(outs[loopback[0] - 1], ins[loopback[1] - 1])


@pytest.fixture(scope="module")
def plant_dut(jack_server: JackServer, dut_plant: np.ndarray) -> Iterator[PlantDut]:
    """The stand-in device under test; the test module defines ``dut_plant`` (M, S, T)."""
    import jack

    dut = PlantDut(jack.Client("dut", no_start_server=True, servername=jack_server.name), dut_plant)
    try:
        yield dut
    finally:
        dut.close()


@pytest.fixture(scope="module")
def jack_route(plant_dut: PlantDut) -> Callable[..., None]:
    """:func:`route` bound to the module's ``plant_dut``."""
    return functools.partial(route, plant_dut)
