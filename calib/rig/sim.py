"""The simulated rig: the virtual lab behind the rig interfaces.

:class:`SimAudioInterface` plays through the true impulse responses of a
:class:`calib.sim.lab.VirtualLab` (FFT convolution) and records them the way
a real interface would: clipped outputs, driver nonlinearity, background and
self noise, an unknown latency that changes on every call, optional clock
drift, clipped inputs, and injected faults. :class:`SimTurntable` and
:class:`SimPositioner` move the device and the dummy head in a shared
:class:`LabState`. Nothing sleeps: simulated time is only counted.

Ears follow the positioner: an :class:`~calib.sim.lab.EarReceiver` whose head
is ``None`` (see :data:`PLACED_EARS`) records at the head position last
placed. The head stands in the lab, not on the turntable: binaural steps are
meant to be measured at turntable 0; at another angle the device is rotated
in front of the head (physically what would happen).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from calib.errors import DeviceNotFoundError, RigError, TurntableError
from calib.geometry import HeadPosition
from calib.rig.base import AudioInterface, Positioner, Rig, Turntable
from calib.signals.level import spl_to_pa
from calib.sim.driver import nonlinearity_band_limited
from calib.sim.lab import EarReceiver, MicReceiver, Receiver, VirtualLab, angle_key
from calib.sim.params import NO_FAULTS, DeviceModel, Faults, LatencyModel, NoiseModel, RoomModel

LOOPBACK = "loopback"
PLACED_EARS: tuple[EarReceiver, EarReceiver] = (EarReceiver(None, 0), EarReceiver(None, 1))
"""Left and right ear of the head wherever the positioner placed it."""

_DRIFT_TAPS = 32  # windowed-sinc interpolator length for clock drift
_DRIFT_BLOCK = 8192  # samples per interpolation block (bounds memory)


@dataclass
class LabState:
    """What the turntable and positioner have done to the lab (shared, mutable)."""

    turntable_deg: float = 0.0
    head: HeadPosition | None = None


class SimTurntable(Turntable):
    """A turntable that moves at ``speed_deg_s`` in simulated time.

    Angles are absolute (no wrap): moving from 350 to 10 degrees travels 340.
    A stall fault (``faults.stall_at_deg``) is a barrier: the table turns
    freely on the home (0) side of it, but a move to a target beyond it (as
    seen from 0) ends at the stall angle and raises :class:`TurntableError`
    after the (simulated) timeout. A move that needs longer than the timeout
    at ``speed_deg_s`` stops where the timeout leaves it and raises too.
    Every move that turns the table also waits ``settle_s`` (simulated).
    """

    def __init__(self, state: LabState, faults: Faults = NO_FAULTS, speed_deg_s: float = 10.0,
                 settle_s: float = 0.0) -> None:
        if not speed_deg_s > 0:
            raise RigError(f"turntable speed_deg_s must be > 0, got {speed_deg_s!r}")
        if not settle_s >= 0:
            raise RigError(f"turntable settle_s must be >= 0, got {settle_s!r}")
        self.settle_s = float(settle_s)
        self.state = state
        self.faults = faults
        self.speed_deg_s = float(speed_deg_s)
        self.elapsed_s = 0.0
        """Simulated time spent moving and settling, seconds."""

    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        """Turn the simulated table at ``speed_deg_s``, honouring a stall fault; return the angle reached."""
        target = float(angle_deg)
        if not np.isfinite(target):
            raise TurntableError(f"turntable target must be a finite angle in degrees, got {angle_deg!r}")
        start = self.state.turntable_deg
        stall = self.faults.stall_at_deg
        # Beyond the stall as seen from home (0): the table turns freely up to it, never past it.
        if stall is not None and ((stall >= 0 and target > stall) or (stall <= 0 and target < stall)):
            self.state.turntable_deg = float(stall)
            self.elapsed_s += timeout_s
            raise TurntableError(
                f"turntable stalled at {stall:g} deg on the way from {start:g} to {target:g} deg "
                f"(no arrival within {timeout_s:g} s)"
            )
        travel_s = abs(target - start) / self.speed_deg_s
        if travel_s > timeout_s:
            self.state.turntable_deg = start + np.sign(target - start) * self.speed_deg_s * timeout_s
            self.elapsed_s += timeout_s
            raise TurntableError(
                f"turntable did not reach {target:g} deg within {timeout_s:g} s (needs {travel_s:.1f} s at "
                f"{self.speed_deg_s:g} deg/s); it stopped at {self.state.turntable_deg:g} deg"
            )
        self.elapsed_s += travel_s + (self.settle_s if target != start else 0.0)
        self.state.turntable_deg = target
        return self.angle_deg()

    def angle_deg(self) -> float:
        """Return the simulated table angle in degrees."""
        return float(self.state.turntable_deg)


class SimPositioner(Positioner):
    """Places the dummy head at once (records the placements)."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.placed: list[HeadPosition] = []

    def place(self, position: HeadPosition) -> None:
        """Place the head at once and record the placement."""
        self.state.head = position
        self.placed.append(position)


class SimAudioInterface(AudioInterface):
    """A full-duplex interface wired to the virtual lab.

    Parameters
    ----------
    lab : VirtualLab
        Or any object with the same ``sample_rate``, ``n_ir``,
        ``driver_names``, ``device.drivers`` (``name``, ``h2``, ``h3``) and
        ``true_irs(receivers, turntable_deg) -> [R, S, n_ir]`` (a replay rig
        serves measured IRs this way).
    state : LabState
        Turntable angle and head position at the time of each call.
    sample_rate : int
        Must equal ``lab.sample_rate``.
    output_map : list of str or None
        Driver name per output channel; None: not connected to a driver
        (e.g. the loopback output).
    loopback : (int, int) or None
        ``(output, input)`` 0-based: that input records that output
        electrically. ``input_map[input]`` must be ``"loopback"``.
    input_map : list of Receiver, "loopback" or None
        What each input records; None: an unconnected input (self noise only).
    noise, latency, faults : NoiseModel, LatencyModel, Faults
    seed : int
        Seeds the one random stream (latency, noise, dropout position) that
        advances on every call: calls differ, runs repeat.

    Attributes
    ----------
    calls : int
        Number of playrec calls so far (the next call's 0-based index).
    last_latency : int or None
        Latency of the last call, samples.
    last_dropout : (int, int) or None
        Sample range zeroed by a dropout in the last call.

    Notes
    -----
    ``playrec`` chain: outputs clipped to +-1; per driver the static
    nonlinearity, then dead/reversed faults; FFT convolution with
    ``lab.true_irs`` (Pa); white background noise (Pa); times
    ``input_fs_per_pa`` and the ``clip_gain_db`` fault; loopback = the clipped
    output; self noise on every input; one latency for all inputs; clock
    drift (``capture[n] = y(n / (1 + ppm 1e-6))``, windowed-sinc
    interpolation); inputs clipped to +-1; dropout.
    """

    def __init__(
        self,
        lab: VirtualLab,
        state: LabState,
        sample_rate: int,
        output_map: Sequence[str | None],
        loopback: tuple[int, int] | None,
        input_map: Sequence[Receiver | str | None],
        noise: NoiseModel = NoiseModel(),
        latency: LatencyModel = LatencyModel(),
        faults: Faults = NO_FAULTS,
        seed: int = 0,
    ) -> None:
        if int(sample_rate) != lab.sample_rate:
            raise RigError(f"sample_rate {sample_rate!r} differs from the lab's {lab.sample_rate}")
        names = lab.driver_names
        valid = ", ".join(names)
        for name in output_map:
            if name is not None and name not in names:
                raise DeviceNotFoundError(f"output_map names unknown driver {name!r}; valid: {valid}, or None")
        for name in (*faults.dead_drivers, *faults.reversed_drivers):
            if name not in names:
                raise DeviceNotFoundError(f"fault names unknown driver {name!r}; valid: {valid}")
        for i, rec in enumerate(input_map):
            if not (rec is None or rec == LOOPBACK or isinstance(rec, MicReceiver | EarReceiver)):
                raise RigError(f"input_map[{i}] is {rec!r}; valid: MicReceiver, EarReceiver, 'loopback' or None")
        lb_inputs = [i for i, rec in enumerate(input_map) if rec == LOOPBACK]
        if loopback is None:
            if lb_inputs:
                raise RigError(f"input_map marks input {lb_inputs[0]} as 'loopback' but loopback is None")
        else:
            out_ch, in_ch = (int(v) for v in loopback)
            if not (0 <= out_ch < len(output_map) and 0 <= in_ch < len(input_map)):
                raise RigError(
                    f"loopback {loopback!r} out of range: {len(output_map)} outputs, {len(input_map)} inputs"
                )
            if lb_inputs != [in_ch]:
                raise RigError(f"loopback input {in_ch} must be the only input_map entry 'loopback', got {lb_inputs!r}")
            loopback = (out_ch, in_ch)

        self.lab = lab
        self.state = state
        self.sample_rate = int(sample_rate)
        self.output_map = list(output_map)
        self.input_map = list(input_map)
        self.loopback = loopback
        self.n_outputs = len(self.output_map)
        self.n_inputs = len(self.input_map)
        self.noise = noise
        self.latency = latency
        self.faults = faults
        self.calls = 0
        self.last_latency: int | None = None
        self.last_dropout: tuple[int, int] | None = None
        self._seed = int(seed) & (2**64 - 1)
        self._state_key: tuple | None = None
        self._state_calls = 0
        self._acoustic = [i for i, rec in enumerate(self.input_map) if isinstance(rec, MicReceiver | EarReceiver)]
        # Per output channel: driver index (or -1), and the driver's h2, h3 and fault factor.
        drivers = {d.name: (k, d) for k, d in enumerate(lab.device.drivers)}
        self._out_driver = np.array([drivers[n][0] if n is not None else -1 for n in self.output_map], dtype=int)
        self._factor = np.array(
            [0.0 if d.name in faults.dead_drivers else (-1.0 if d.name in faults.reversed_drivers else 1.0)
             for d in lab.device.drivers]
        )
        self._h2 = np.array([d.h2 for d in lab.device.drivers])
        self._h3 = np.array([d.h3 for d in lab.device.drivers])
        self._spectra_key: tuple | None = None
        self._spectra = np.empty((0, 0, 0), dtype=complex)
        self._spectra_irs = np.empty((0, 0, 0))
        self._spectra_done = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------ helpers
    def _receivers(self) -> list[Receiver]:
        """Acoustic receivers with placed ears resolved to the current head."""
        out: list[Receiver] = []
        for i in self._acoustic:
            rec = self.input_map[i]
            assert isinstance(rec, MicReceiver | EarReceiver)  # _acoustic indexes receivers only
            if isinstance(rec, EarReceiver) and rec.head is None:
                if self.state.head is None:
                    continue  # no dummy head placed yet: that ear input records only noise
                rec = EarReceiver(self.state.head, rec.ear)
            out.append(rec)
        return out

    def _live_inputs(self) -> list[int]:
        """Acoustic input channels that hear something now (ears only once a head is placed)."""
        return [
            i
            for i in self._acoustic
            if not (
                isinstance(rec := self.input_map[i], EarReceiver)
                and rec.head is None
                and self.state.head is None
            )
        ]

    def start_run(self, name: str) -> None:
        """Draw this run's noise and latency from a random stream of its own.

        Without it, every run of a unit (seeded by its serial) draws the same
        latency and noise at each turntable angle and head position: a
        verification would repeat the characterize measurement's noise, and
        its latencies step for step. ``name`` (e.g. ``"verify"``) is mixed
        into the seed; a resumed run with the same name draws the same stream.
        """
        digest = hashlib.sha256(f"{self._seed}/{name}".encode()).digest()
        self._seed = int.from_bytes(digest[:8], "little")
        self._state_key, self._state_calls = None, 0

    def _call_rng(self) -> np.random.Generator:
        """Random stream of this call, derived from the lab state and a per-state call counter.

        The k-th call at a given turntable angle and head position always draws
        the same noise and latency, whatever was played before: a measurement
        interrupted and resumed gives the same file as an uninterrupted one.
        Retries at the same state still differ (the counter).
        """
        head = self.state.head
        key = (angle_key(self.state.turntable_deg), None if head is None else (head.name, head.xyz_m, head.yaw_deg))
        if key != self._state_key:
            self._state_key, self._state_calls = key, 0
        digest = hashlib.sha256(repr(key).encode()).digest()
        words = [int.from_bytes(digest[i : i + 8], "little") for i in (0, 8)]
        rng = np.random.default_rng([self._seed, *words, self._state_calls])
        self._state_calls += 1
        return rng

    def _ir_spectra(self, receivers: list[Receiver], n_fft: int, active: np.ndarray) -> np.ndarray:
        """Rfft of the true IRs of the ``active`` drivers: [Ra, len(active), n_fft // 2 + 1].

        Kept for the last (angle, receivers), filled per driver on demand
        (a sequential sweep at a new angle transforms one driver's IRs, not all).
        """
        key = (angle_key(self.state.turntable_deg), tuple(receivers), n_fft)
        if key != self._spectra_key:
            irs = self.lab.true_irs(receivers, self.state.turntable_deg)
            self._spectra_irs = irs
            self._spectra = np.empty((irs.shape[0], irs.shape[1], n_fft // 2 + 1), dtype=complex)
            self._spectra_done = np.zeros(irs.shape[1], dtype=bool)
            self._spectra_key = key
        todo = active[~self._spectra_done[active]]
        if todo.size:
            self._spectra[:, todo] = scipy.fft.rfft(self._spectra_irs[:, todo], n=n_fft, axis=-1, workers=-1)
            self._spectra_done[todo] = True
        return self._spectra[:, active]

    def _acoustic_capture(self, x: np.ndarray) -> np.ndarray:
        """Pressure at every acoustic input, Pa: [Ra, N]."""
        n = x.shape[-1]
        n_drv = len(self.lab.driver_names)
        feeds = np.zeros((n_drv, n))
        # The oversampled nonlinearity only where a driver plays: silent outputs (sequential sweeps)
        # are skipped and the silence before and after all sweeps is cropped. Both stay exactly zero
        # (no constant term), and the resampling filters are shift-invariant, so the crop is exact.
        used, lo, hi = _where_drivers_play(x, self._out_driver)
        d_idx = self._out_driver[used]
        if used.size:
            nl = nonlinearity_band_limited(x[used, lo:hi], self._h2[d_idx, None], self._h3[d_idx, None])
            for row, driver in zip(nl, d_idx, strict=True):  # outputs wired to one driver add up
                feeds[driver, lo:hi] += row * self._factor[driver]
        active = np.flatnonzero(np.any(feeds != 0.0, axis=-1))  # skip silent drivers (sequential sweeps)
        receivers = self._receivers()
        if active.size == 0:
            return np.zeros((len(receivers), n))
        # Overlap-add with blocks of 4 n_ir: memory and the cached IR spectra do not grow with N.
        block = 4 * self.lab.n_ir
        n_fft = scipy.fft.next_fast_len(block + self.lab.n_ir - 1, real=True)  # <= 2 * block
        n_blocks = -(-n // block)
        padded = np.zeros((active.size, n_blocks * block))
        padded[:, :n] = feeds[active]
        feed_spec = scipy.fft.rfft(padded.reshape(active.size, n_blocks, block), n=n_fft, axis=-1, workers=-1)
        spectra = self._ir_spectra(receivers, n_fft, active)
        y = scipy.fft.irfft(np.einsum("rsk,sbk->rbk", spectra, feed_spec), n=n_fft, axis=-1, workers=-1)
        tail = np.zeros((len(receivers), n_blocks, block))
        tail[..., : n_fft - block] = y[..., block:]
        out = np.zeros((len(receivers), (n_blocks + 1) * block))
        out[:, :-block] += y[..., :block].reshape(len(receivers), -1)
        out[:, block:] += tail.reshape(len(receivers), -1)
        return out[:, :n]

    def _drift(self, y: np.ndarray) -> np.ndarray:
        """Resample for an input clock (1 + eps) times faster: ``out[n] = y(n / (1 + eps))``.

        Band-limited interpolation with a Hann-windowed sinc of 32 taps
        (Smith, "Digital Audio Resampling", CCRMA), zero outside the block.
        """
        eps = self.latency.clock_drift_ppm * 1e-6
        n = y.shape[-1]
        half = _DRIFT_TAPS // 2
        k = np.arange(-half + 1, half + 1)
        padded = np.concatenate([np.zeros((y.shape[0], half)), y, np.zeros((y.shape[0], half + 1))], axis=-1)
        out = np.empty_like(y)
        for start in range(0, n, _DRIFT_BLOCK):
            t = np.arange(start, min(start + _DRIFT_BLOCK, n)) / (1.0 + eps)
            base = np.floor(t).astype(int)
            frac = t - base
            offs = k[None, :] - frac[:, None]  # tap time minus wanted time, samples
            weights = np.sinc(offs) * (0.5 + 0.5 * np.cos(np.pi * offs / (half + 1)))
            idx = np.clip(base[:, None] + k[None, :] + half, 0, padded.shape[-1] - 1)
            out[:, start:start + t.size] = np.einsum("cnk,nk->cn", padded[:, idx], weights)
        return out

    # ------------------------------------------------------------------ interface
    def playrec(self, signal: np.ndarray) -> np.ndarray:
        """Play ``signal`` [outputs, N] through the virtual lab and return the recording [inputs, N]."""
        x = np.asarray(signal, dtype=float)
        if x.ndim != 2 or x.shape[0] != self.n_outputs:
            raise RigError(f"signal must have shape ({self.n_outputs}, N), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise RigError("signal contains NaN or infinite samples")
        x = np.clip(x, -1.0, 1.0)  # the DAC cannot exceed full scale
        n = x.shape[-1]
        rng = self._call_rng()
        lat = int(rng.integers(self.latency.min_samples, self.latency.max_samples + 1))

        captured = np.zeros((self.n_inputs, n))
        live = self._live_inputs()
        if live:
            pa = self._acoustic_capture(x)
            if self.noise.background_spl_db is not None:
                pa += float(spl_to_pa(self.noise.background_spl_db)) * rng.standard_normal(pa.shape)
            gain = self.noise.input_fs_per_pa * 10.0 ** (self.faults.clip_gain_db / 20.0)
            captured[live] = pa * gain
        if self.loopback is not None:
            captured[self.loopback[1]] = x[self.loopback[0]]
        if self.noise.self_noise_dbfs is not None:
            captured += 10.0 ** (self.noise.self_noise_dbfs / 20.0) * rng.standard_normal(captured.shape)

        delayed = np.zeros_like(captured)
        if lat < n:
            delayed[:, lat:] = captured[:, : n - lat]
        if self.latency.clock_drift_ppm != 0.0:
            delayed = self._drift(delayed)
        out = np.clip(delayed, -1.0, 1.0)  # the ADC saturates: clipping stays detectable

        self.last_dropout = None
        if self.calls in self.faults.dropout_calls:
            length = min(self.faults.dropout_samples, n)
            start = int(rng.integers(0, n - length + 1))
            out[:, start:start + length] = 0.0
            self.last_dropout = (start, start + length)
        self.calls += 1
        self.last_latency = lat
        return out


#: Input samples either side of a crop of the nonlinearity: beyond the half length of
#: resample_poly's default anti-alias filter for 2x (10 * 2 taps at the 2x rate), so that
#: the samples cropped away are zero before and after the nonlinearity.
_NONLINEARITY_MARGIN = 32


def _where_drivers_play(x: np.ndarray, out_driver: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Return the live output channels and the sample range they cover.

    Output channels of ``x`` [C, n] that feed a driver and are not silent, and the samples
    [lo, hi) covering all their non-zero samples plus the filter margin (0, 0 if none).
    """
    used = np.flatnonzero((out_driver >= 0) & np.any(x != 0.0, axis=-1))
    if used.size == 0:
        return used, 0, 0
    nz = np.flatnonzero(np.any(x[used] != 0.0, axis=0))
    lo = max(int(nz[0]) - _NONLINEARITY_MARGIN, 0)
    hi = min(int(nz[-1]) + 1 + _NONLINEARITY_MARGIN, x.shape[-1])
    return used, lo, hi


def make_sim_rig(
    device: DeviceModel,
    receivers: Sequence[Receiver] = (),
    *,
    sample_rate: int = 48000,
    n_ir: int = 8192,
    room: RoomModel | None = None,
    noise: NoiseModel = NoiseModel(),
    latency: LatencyModel = LatencyModel(),
    faults: Faults = NO_FAULTS,
    seed: int = 0,
    speed_of_sound: float = 343.0,
    loopback: bool = True,
    turntable_speed_deg_s: float = 10.0,
) -> Rig:
    """Return a complete simulated station.

    Channel layout (0-based): outputs ``0..S-1`` feed the drivers in device
    order, output ``S`` (if ``loopback``) is the reference output, wired to
    the last input. Inputs are ``receivers`` in order, then the loopback.
    Use :data:`PLACED_EARS` as receivers to record the dummy head wherever
    the positioner places it.

    Returns
    -------
    Rig
        ``name="sim"``, ``simulated=True``; ``info`` lists the channel maps.
    """
    lab = VirtualLab(device, sample_rate, n_ir=n_ir, speed_of_sound=speed_of_sound, room=room)
    state = LabState()
    output_map: list[str | None] = list(lab.driver_names)
    input_map: list[Receiver | str] = list(receivers)
    lb = None
    if loopback:
        output_map.append(None)
        input_map.append(LOOPBACK)
        lb = (len(output_map) - 1, len(input_map) - 1)
    audio = SimAudioInterface(lab, state, sample_rate, output_map, lb, input_map, noise, latency, faults, seed)
    info = {
        "outputs": ",".join(LOOPBACK if o is None else o for o in output_map),
        "inputs": ",".join(r if isinstance(r, str) else r.name for r in input_map),
        "loopback": "none" if lb is None else f"{lb[0]}->{lb[1]}",
        "room": "free field" if room is None else repr(room),
    }
    return Rig(
        name="sim",
        audio=audio,
        turntable=SimTurntable(state, faults, turntable_speed_deg_s),
        positioner=SimPositioner(state),
        simulated=True,
        info=info,
    )


__all__ = [
    "LOOPBACK",
    "PLACED_EARS",
    "LabState",
    "SimAudioInterface",
    "SimPositioner",
    "SimTurntable",
    "make_sim_rig",
]
