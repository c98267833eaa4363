"""The PortAudio rig: a real full-duplex audio interface via python-sounddevice.

``sounddevice`` is imported lazily, inside the functions that need it, so
``import calib.rig.portaudio`` (and ``import calib``) works on machines
without the PortAudio library; using the rig there raises :class:`RigError`.

One persistent stream
---------------------
:class:`PortAudioInterface` opens and starts **one** duplex stream when it is
constructed and keeps it running until :meth:`~PortAudioInterface.close`;
the stream callback outputs silence while idle and plays/records a block
when :meth:`~PortAudioInterface.playrec` hands one over. Reasons:

- With the JACK host API every stream registers new client ports
  (``PortAudio:out_0, out_1, ...``; the numbers keep counting up across
  streams) and auto-connects them to the ``system`` ports. A persistent
  stream keeps the ports, and therefore any routing made once (qjackctl, a
  patchbay, a test fixture), for the whole session.
- No open/close cost and no start-up priming per measurement step.

Xruns
-----
Any ``input_overflow``, ``output_underflow`` or ``priming_output`` flag
reported by a callback that carried part of a :meth:`playrec` block makes
that call raise ``RigError("xrun ...")`` (conservatively, including the
block's first callback), so the measurement engine can retry the step.
Nothing recorded across a gap is returned.

PortAudio (re)initialization
----------------------------
PortAudio enumerates devices and host APIs once, in ``Pa_Initialize`` (which
sounddevice calls at import). A JACK server started after the import is
invisible until PortAudio is re-initialized: :func:`reinitialize_portaudio`
calls ``sd._terminate(); sd._initialize()`` (the sequence recommended by the
sounddevice maintainer, python-sounddevice issue #125). Terminate PortAudio
(:func:`terminate_portaudio`) *before* stopping a JACK server it is
connected to. Both first close every open :class:`PortAudioInterface`:
``Pa_Terminate`` would otherwise close their streams underneath them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calib.errors import CaptureGlitchError, DeviceNotFoundError, RigError
from calib.rig.base import AudioInterface, Positioner, Rig, Turntable

__all__ = [
    "PortAudioInterface",
    "format_devices",
    "list_devices",
    "make_portaudio_rig",
    "reinitialize_portaudio",
    "terminate_portaudio",
]

# PortAudio callback flags that mean the block is not continuous.
_XRUN_FLAGS = ("input overflow", "output underflow", "priming output")

# Interfaces with an open stream; closed before PortAudio is terminated.
_OPEN_INTERFACES: weakref.WeakSet[PortAudioInterface] = weakref.WeakSet()


def _sd() -> Any:
    """Import sounddevice, turning a missing PortAudio into a RigError."""
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        raise RigError(f"PortAudio is not available (install libportaudio2): {exc}") from exc
    return sounddevice


def _close_open_interfaces() -> None:
    for interface in list(_OPEN_INTERFACES):
        interface.close()


def reinitialize_portaudio() -> None:
    """Re-scan host APIs and devices (e.g. after a JACK server came up).

    Closes every open :class:`PortAudioInterface`, terminates PortAudio as
    often as it was initialized (``Pa_Initialize`` is reference counted) and
    initializes it once.
    """
    sd = _sd()
    _close_open_interfaces()
    while sd._initialized > 0:
        sd._terminate()
    sd._initialize()


def terminate_portaudio() -> None:
    """Close every open interface and terminate PortAudio completely.

    Call this before stopping a JACK server that PortAudio is connected to.
    Call :func:`reinitialize_portaudio` to use PortAudio again afterwards.
    """
    sd = _sd()
    _close_open_interfaces()
    while sd._initialized > 0:
        sd._terminate()


def list_devices() -> list[dict[str, Any]]:
    """Describe every audio device PortAudio knows.

    Returns
    -------
    list of dict
        One dict per device with keys ``index``, ``name``, ``hostapi`` (host
        API name), ``max_input_channels``, ``max_output_channels``,
        ``default_samplerate`` (Hz), ``default_input`` and ``default_output``
        (bool: the host's default device for that direction).

    Raises
    ------
    RigError
        If PortAudio is not available.
    """
    sd = _sd()
    hostapis = sd.query_hostapis()
    default_in, default_out = (_default_index(sd, kind) for kind in ("input", "output"))
    return [
        {
            "index": int(dev["index"]),
            "name": str(dev["name"]),
            "hostapi": str(hostapis[dev["hostapi"]]["name"]),
            "max_input_channels": int(dev["max_input_channels"]),
            "max_output_channels": int(dev["max_output_channels"]),
            "default_samplerate": float(dev["default_samplerate"]),
            "default_input": int(dev["index"]) == default_in,
            "default_output": int(dev["index"]) == default_out,
        }
        for dev in sd.query_devices()
    ]


def _default_index(sd: Any, kind: str) -> int:
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except sd.PortAudioError:  # no default device for this direction
        return -1


def format_devices(devices: Sequence[dict[str, Any]]) -> str:
    """Format :func:`list_devices` output as a table for ``calib devices``.

    Pure function: no PortAudio needed. ``>`` marks the default input, ``<``
    the default output device.
    """
    if not devices:
        return "no audio devices found"
    rows = [("", "index", "name", "host API", "in", "out", "rate_hz")]
    for dev in devices:
        mark = (">" if dev.get("default_input") else " ") + ("<" if dev.get("default_output") else " ")
        rows.append(
            (
                mark,
                str(dev["index"]),
                dev["name"],
                dev["hostapi"],
                str(dev["max_input_channels"]),
                str(dev["max_output_channels"]),
                f"{dev['default_samplerate']:g}",
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    right = {1, 4, 5, 6}  # numeric columns
    lines = [
        " ".join(
            cell.rjust(w) if col in right else cell.ljust(w)
            for col, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _describe(devices: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"[{d['index']}] {d['name']!r} ({d['hostapi']})" for d in devices) or "none"


def _select_device(device: str | int | None) -> dict[str, Any]:
    """Resolve a device index, name substring (case-insensitive) or None (default)."""
    return _match_device(device, list_devices())


def _match_device(device: str | int | None, devices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pick ``device`` from :func:`list_devices` output (see :func:`_select_device`)."""
    if device is None:
        default = [d for d in devices if d["default_output"]] or [d for d in devices if d["default_input"]]
        if not default:
            raise DeviceNotFoundError(f"no default audio device; available: {_describe(devices)}")
        return default[0]
    if isinstance(device, int | np.integer) and not isinstance(device, bool):
        found = [d for d in devices if d["index"] == int(device)]
        if not found:
            raise DeviceNotFoundError(f"no audio device with index {device}; available: {_describe(devices)}")
        return found[0]
    if not isinstance(device, str):
        raise DeviceNotFoundError(f"audio device must be a name, an index or None, not {device!r}")
    query = device.strip().lower()
    exact = [d for d in devices if d["name"].lower() == query]
    found = exact or [d for d in devices if query in f"{d['name']} [{d['hostapi']}]".lower()]
    if not found:
        raise DeviceNotFoundError(f"no audio device matches {device!r}; available: {_describe(devices)}")
    if len(found) > 1:
        raise DeviceNotFoundError(f"audio device {device!r} is ambiguous, matches: {_describe(found)}")
    return found[0]


def _check_channels(channels: Sequence[int], available: int, kind: str, dev: dict[str, Any]) -> np.ndarray:
    """Validate 1-based channel numbers; return 0-based indices."""
    chans = [int(c) for c in channels]
    if not chans:
        raise RigError(f"no {kind} channels given for device {dev['name']!r}")
    bad = [c for c in chans if c < 1 or c > available]
    if bad:
        raise RigError(
            f"{kind} channel(s) {bad} out of range for device {dev['name']!r}, "
            f"which has {available} {kind} channel(s) (valid: 1..{available})"
        )
    if len(set(chans)) != len(chans):
        raise RigError(f"{kind} channels {chans} repeat a channel")
    return np.asarray(chans, dtype=np.intp) - 1


@dataclass
class _Job:
    """One playrec block shared between the caller and the stream callback."""

    out: np.ndarray  # (N, device output channels) float32
    rec: np.ndarray  # (N, n_inputs) float32
    pos: int = 0
    flags: list[tuple[bool, bool, bool]] = field(default_factory=list)  # per flagged block, see _XRUN_FLAGS
    done: threading.Event = field(default_factory=threading.Event)


class PortAudioInterface(AudioInterface):
    """A full-duplex PortAudio device driven by one persistent stream.

    Parameters
    ----------
    device : str, int or None
        Case-insensitive substring of the device name (or of
        ``"name [host API]"``), a device index, or None for the default
        device. One device serves both directions (sample-synchronous).
    sample_rate : int
        Sample rate in Hz; checked against the device.
    output_channels : list of int
        1-based device output channel for each row of the ``playrec`` signal.
    input_channels : list of int
        1-based device input channel for each returned row. Which of them is
        the loopback is known by the caller, not here.
    blocksize : int
        Stream block size in frames; 0 lets the host choose (JACK: its
        period).
    latency : str or float
        PortAudio suggested latency (``"high"``, ``"low"`` or seconds);
        measurements favour robustness, hence ``"high"``.
    stall_margin_s : float
        Time a :meth:`playrec` may take beyond its duration plus the stream
        latency before the stream is declared stalled (device or server
        lost or frozen).

    Raises
    ------
    DeviceNotFoundError
        If no (or more than one) device matches ``device``.
    RigError
        If PortAudio is missing, a channel is out of the device's range or
        repeated, the sample rate is not supported, or the stream fails to
        open.
    """

    def __init__(
        self,
        device: str | int | None,
        sample_rate: int,
        output_channels: Sequence[int],
        input_channels: Sequence[int],
        *,
        blocksize: int = 0,
        latency: str | float = "high",
        stall_margin_s: float = 2.0,
    ) -> None:
        sd = _sd()
        self.stall_margin_s = float(stall_margin_s)
        self._stream: Any = None
        self._job: _Job | None = None
        dev = _select_device(device)
        self.device = dev
        self._out_idx = _check_channels(output_channels, dev["max_output_channels"], "output", dev)
        self._in_idx = _check_channels(input_channels, dev["max_input_channels"], "input", dev)
        self.sample_rate = int(sample_rate)
        self.n_outputs = len(self._out_idx)
        self.n_inputs = len(self._in_idx)
        # Open channels 1..max on the device; rows are mapped in the callback.
        self._n_dev_out = int(self._out_idx.max()) + 1
        self._n_dev_in = int(self._in_idx.max()) + 1
        for check, n in ((sd.check_output_settings, self._n_dev_out), (sd.check_input_settings, self._n_dev_in)):
            try:
                check(device=dev["index"], channels=n, dtype="float32", samplerate=self.sample_rate)
            except sd.PortAudioError as exc:
                raise RigError(
                    f"sample rate {self.sample_rate} Hz with {n} channel(s) not supported by "
                    f"device {dev['name']!r} ({dev['hostapi']}, default rate "
                    f"{dev['default_samplerate']:g} Hz): {exc}"
                ) from exc
        try:
            self._stream = sd.Stream(
                device=dev["index"],
                samplerate=self.sample_rate,
                channels=(self._n_dev_in, self._n_dev_out),
                dtype="float32",
                blocksize=blocksize,
                latency=latency,
                callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise RigError(f"cannot open a stream on device {dev['name']!r}: {exc}") from exc
        _OPEN_INTERFACES.add(self)

    def _callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        """Stream callback (PortAudio thread): play and record the current job, if any."""
        job = self._job
        if job is None:
            outdata.fill(0.0)
            return
        flags = (status.input_overflow, status.output_underflow, status.priming_output)
        if any(flags):
            job.flags.append(flags)
        n = min(frames, job.out.shape[0] - job.pos)
        outdata[:n] = job.out[job.pos : job.pos + n]
        outdata[n:] = 0.0
        job.rec[job.pos : job.pos + n] = indata[:n, self._in_idx]
        job.pos += n
        if job.pos >= job.out.shape[0]:
            self._job = None
            job.done.set()

    @property
    def latency_s(self) -> tuple[float, float]:
        """The stream's (input, output) latency in seconds, as PortAudio reports it."""
        if self._stream is None:
            raise RigError(f"the stream on device {self.device['name']!r} is closed")
        lat = self._stream.latency
        return float(lat[0]), float(lat[1])

    def playrec(self, signal: np.ndarray) -> np.ndarray:
        """Play ``signal`` on the output channels while recording the input channels.

        Parameters
        ----------
        signal : ndarray, shape (n_outputs, N)
            Row i goes to device channel ``output_channels[i]``.

        Returns
        -------
        ndarray, shape (n_inputs, N), float64
            Row j was recorded on device channel ``input_channels[j]``.

        Raises
        ------
        ValueError
            If ``signal`` has the wrong shape or non-finite samples.
        RigError
            On an xrun during the block ("xrun ..."), a closed or stopped
            stream, or a stream that stalls (device or server lost).
        """
        x = np.asarray(signal, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_outputs or x.shape[1] == 0:
            raise ValueError(f"signal must have shape ({self.n_outputs}, N>0), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("signal contains NaN or infinite samples")
        stream = self._stream
        if stream is None:
            raise RigError(f"the stream on device {self.device['name']!r} is closed")
        if not stream.active:
            raise RigError(f"the stream on device {self.device['name']!r} stopped (device or server lost?)")
        n_samples = x.shape[1]
        out = np.zeros((n_samples, self._n_dev_out), dtype=np.float32)
        out[:, self._out_idx] = x.T
        job = _Job(out=out, rec=np.zeros((n_samples, self.n_inputs), dtype=np.float32))
        self._job = job
        timeout_s = n_samples / self.sample_rate + sum(self.latency_s) + self.stall_margin_s
        if not job.done.wait(timeout_s):
            self._job = None
            raise CaptureGlitchError(
                f"stream on device {self.device['name']!r} stalled: {job.pos} of {n_samples} "
                f"samples after {timeout_s:.1f} s"
            )
        if job.flags:
            seen = np.any(job.flags, axis=0)
            kinds = [name for name, on in zip(_XRUN_FLAGS, seen, strict=True) if on]
            raise CaptureGlitchError(
                f"xrun during playrec on device {self.device['name']!r}: {len(job.flags)} "
                f"block(s) flagged ({', '.join(kinds)}); retry the step"
            )
        return job.rec.T.astype(np.float64)

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        stream, self._stream = self._stream, None
        self._job = None
        _OPEN_INTERFACES.discard(self)
        if stream is not None:
            try:
                stream.abort()
            finally:
                stream.close()


def make_portaudio_rig(
    device: str | int | None,
    sample_rate: int,
    output_channels: Sequence[int],
    input_channels: Sequence[int],
    turntable: Turntable,
    positioner: Positioner,
    *,
    blocksize: int = 0,
    latency: str | float = "high",
) -> Rig:
    """Build the ``"portaudio"`` rig: a :class:`PortAudioInterface` plus the given hardware.

    Parameters are those of :class:`PortAudioInterface` (channels 1-based);
    ``turntable`` and ``positioner`` are used as given. The rig's ``info``
    records the device, host API and channel maps for the measurement file.
    """
    audio = PortAudioInterface(
        device, sample_rate, output_channels, input_channels, blocksize=blocksize, latency=latency
    )
    info = {
        "device": audio.device["name"],
        "hostapi": audio.device["hostapi"],
        "output_channels": ",".join(str(c) for c in output_channels),
        "input_channels": ",".join(str(c) for c in input_channels),
    }
    return Rig(name="portaudio", audio=audio, turntable=turntable, positioner=positioner, simulated=False, info=info)
