"""The replay rig: acoustics from an existing measurement file (``--rig replay:<file.h5>``).

A :class:`ReplayLab` serves the impulse responses of a complete
``characterize`` measurement as the lab's true IRs, and
:func:`open_replay_rig` wraps it in the simulated interface, turntable and
positioner (:mod:`calib.rig.sim`), with the procedure's ``[sim]`` noise,
latency and fault models. Re-measuring through it reproduces the file's IRs
within noise: fit and verify can be re-run on archived units, and tests can
use plants that this code did not generate (write them with
:func:`calib.store.measurement.create_measurement` and
:func:`~calib.store.measurement.write_step`).

What is replayed
----------------
- A microphone at lab azimuth ``phi`` with the device turned by ``alpha`` is
  at ``phi - alpha`` relative to the device front (:mod:`calib.sim.lab`). The
  procedure's arc microphones stand at lab azimuth 0, so the engine's
  turntable angle ``-az`` selects the file's azimuth ``az``. The angle must
  match a file azimuth within :data:`AZIMUTH_TOL_DEG` (modulo 360): no
  interpolation between measured angles.
- An ear of the dummy head at a named position plays the file's binaural IR
  of that position (name equal, head centre within :data:`POSITION_TOL_M`,
  yaw within :data:`YAW_TOL_DEG`), at turntable 0 only: the file holds no
  binaural IRs at other angles.
- Units: the simulated interface multiplies the lab's pressure (Pa per full
  scale) by ``input_fs_per_pa`` (``[sim.noise]``). A file whose IRs are in
  FS/FS (what its capture recorded) is therefore served divided by
  ``input_fs_per_pa``, so the replayed capture is the file's FS/FS IR again;
  a file calibrated to Pa/FS (attribute ``ir_unit_<group>``) is served as is.
- Drivers are linear (``h2 = h3 = 0``): the file holds the linear IRs only,
  so replayed THD is only what the deconvolution leaves. The file's own
  measurement noise is part of the replayed plant; the rig adds the
  procedure's background and self noise on top.
- Fidelity: a re-measurement gives back the file's IRs in the sweep band up
  to the noise of both measurements (about -49 dB normalized error for the
  weakest aurora5 driver/receiver pair in a 15 dB SPL room; -85 dB for a
  loud hand-made plant). Energy *outside* the sweep band is removed by the
  deconvolution, and the ringing of that removal, cut at the IR length,
  leaks into the band edges: a hand-made plant should be band-limited like
  a measured one (a white 4096-tap plant comes back only within -37 dB,
  -16 dB at 50..200 Hz).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.errors import FileFormatError, RigError
from calib.geometry import HeadPosition
from calib.procedure.layout import head_position
from calib.procedure.spec import Procedure, SimFaults
from calib.rig.base import Rig
from calib.sim.lab import EarReceiver, MicReceiver, Receiver
from calib.store.measurement import Measurement, read_measurement

log = logging.getLogger(__name__)

AZIMUTH_TOL_DEG = 1e-6
"""A turntable angle selects a file azimuth within this, degrees (modulo 360)."""
POSITION_TOL_M = 1e-3
"""A head centre matches a file position within this distance, metres."""
YAW_TOL_DEG = 0.1
"""A head yaw matches a file position within this, degrees (modulo 360)."""

_UNITS = ("FS/FS", "Pa/FS")


@dataclass(frozen=True)
class ReplayDriver:
    """A replayed driver: a name and no nonlinearity (the file holds linear IRs)."""

    name: str
    h2: float = 0.0
    h3: float = 0.0


@dataclass(frozen=True)
class ReplayDevice:
    """The replayed unit's drivers, in the file's source order."""

    drivers: tuple[ReplayDriver, ...]


def _wrap_deg(angle_deg: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to [-180, 180) degrees."""
    return (np.asarray(angle_deg, dtype=float) + 180.0) % 360.0 - 180.0


def describe_grid(azimuth_deg: np.ndarray) -> str:
    """Return a short text for an azimuth grid: ``"0..355 step 5"`` if uniform on [0, 360), else the values."""
    az = np.asarray(azimuth_deg, dtype=float)
    if az.size >= 3:
        ordered = np.sort(az % 360.0)
        steps = np.diff(ordered)
        if np.allclose(steps, steps[0], rtol=0, atol=AZIMUTH_TOL_DEG):
            return f"{ordered[0]:g}..{ordered[-1]:g} step {steps[0]:g}"
    return ", ".join(f"{v:g}" for v in az)


def _head_text(xyz_m: Sequence[float], yaw_deg: float) -> str:
    return f"[{', '.join(f'{v:g}' for v in xyz_m)}] m yaw {yaw_deg:g} deg"


class ReplayLab:
    """A lab whose true IRs are those of a measurement file.

    Serves :class:`~calib.rig.sim.SimAudioInterface` like
    :class:`~calib.sim.lab.VirtualLab`: ``sample_rate``, ``n_ir``,
    ``driver_names``, ``device.drivers`` and :meth:`true_irs`.

    Parameters
    ----------
    measurement : Measurement
        A complete ``characterize`` measurement (see :func:`load_replay_measurement`).
    input_fs_per_pa : float
        The simulated interface's input gain (``[sim.noise] input_fs_per_pa``);
        FS/FS IRs are divided by it so the interface's gain restores them.
    """

    def __init__(self, measurement: Measurement, input_fs_per_pa: float) -> None:
        if not (np.isfinite(input_fs_per_pa) and input_fs_per_pa > 0):
            raise RigError(f"input_fs_per_pa must be a finite number > 0, got {input_fs_per_pa!r}")
        self.measurement = measurement
        self.sample_rate = int(measurement.sample_rate)
        self.n_ir = measurement.ir_length
        self.device = ReplayDevice(tuple(ReplayDriver(name) for name in measurement.sources))
        self._name = str(measurement.path)
        self._azimuth_deg = _wrap_deg(measurement.azimuth_deg)
        self._mic_index = {name: i for i, name in enumerate(measurement.receivers)}
        self._positions = {p.name: (i, p) for i, p in enumerate(measurement.positions)}
        # Pressure per full scale, as the lab serves it (see the module notes on units).
        self._dir = np.asarray(measurement.directivity_ir) * self._scale("directivity", input_fs_per_pa)
        self._bin = np.asarray(measurement.binaural_ir) * self._scale("binaural", input_fs_per_pa)

    def _scale(self, group: str, input_fs_per_pa: float) -> float:
        attrs = self.measurement.attrs
        unit = attrs.get(f"ir_unit_{group}", attrs.get("ir_unit", "FS/FS"))
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        if unit not in _UNITS:
            raise FileFormatError(f"{self._name}: ir_unit_{group}: expected one of {', '.join(_UNITS)}, got {unit!r}")
        return 1.0 / input_fs_per_pa if unit == "FS/FS" else 1.0

    @property
    def driver_names(self) -> tuple[str, ...]:
        """Driver names in the file's source order (the source order of :meth:`true_irs`)."""
        return tuple(d.name for d in self.device.drivers)

    def azimuth_index(self, azimuth_deg: float) -> int:
        """Index of the file azimuth equal to ``azimuth_deg`` (modulo 360, within :data:`AZIMUTH_TOL_DEG`)."""
        diff = np.abs(_wrap_deg(self._azimuth_deg - float(azimuth_deg)))
        hits = np.flatnonzero(diff <= AZIMUTH_TOL_DEG)
        if hits.size == 0:
            raise RigError(
                f"replay file {self._name} has no azimuth {float(_wrap_deg(azimuth_deg)):g} deg "
                f"(grid {describe_grid(self.measurement.azimuth_deg)})"
            )
        return int(hits[0])

    def mic_index(self, name: str) -> int:
        """Index of the file's microphone called ``name``."""
        if name not in self._mic_index:
            raise RigError(
                f"replay file {self._name} has no microphone {name!r} "
                f"(microphones: {', '.join(self.measurement.receivers) or 'none'})"
            )
        return self._mic_index[name]

    def position_index(self, head: HeadPosition) -> int:
        """Index of the file position matching ``head`` by name, centre and yaw."""
        if head.name not in self._positions:
            names = ", ".join(self._positions) or "none"
            raise RigError(f"replay file {self._name} has no position {head.name!r} (positions: {names})")
        index, pos = self._positions[head.name]
        dist_m = float(np.linalg.norm(np.asarray(head.xyz_m, float) - np.asarray(pos.xyz_m, float)))
        yaw_err = abs(float(_wrap_deg(float(head.yaw_deg) - float(pos.yaw_deg))))
        if dist_m > POSITION_TOL_M or yaw_err > YAW_TOL_DEG:
            raise RigError(
                f"replay file {self._name} has position {head.name!r} at {_head_text(pos.xyz_m, pos.yaw_deg)}, "
                f"asked for {_head_text(head.xyz_m, head.yaw_deg)} (tolerance {POSITION_TOL_M * 1e3:g} mm, "
                f"{YAW_TOL_DEG:g} deg)"
            )
        return index

    def true_irs(self, receivers: Sequence[Receiver], turntable_deg: float = 0.0) -> np.ndarray:
        """Return the file's IRs for ``receivers`` with the device turned by ``turntable_deg``.

        Microphones: the file's directivity IR at azimuth
        ``atan2(y, x) - turntable_deg`` (the arc microphones stand at lab
        azimuth 0, so ``-turntable_deg``), microphone by name. Ears: the
        file's binaural IR of the head's position, at turntable 0 only.

        Returns
        -------
        ndarray, shape (R, S, n_ir), float64
            Pa per full-scale input (see the module notes on units).

        Raises
        ------
        RigError
            No file azimuth, microphone or position matches, an ear at a
            turntable angle other than 0, or an ear without a head.
        """
        out = np.empty((len(receivers), len(self.device.drivers), self.n_ir))
        for r, rec in enumerate(receivers):
            if isinstance(rec, MicReceiver):
                lab_az = float(np.rad2deg(np.arctan2(rec.xyz_m[1], rec.xyz_m[0])))
                out[r] = self._dir[self.azimuth_index(lab_az - float(turntable_deg)), self.mic_index(rec.name)]
            elif isinstance(rec, EarReceiver):
                if rec.head is None:
                    raise RigError(f"ear receiver {rec.name!r} has no head position; place the head first")
                if abs(float(_wrap_deg(turntable_deg))) > AZIMUTH_TOL_DEG:
                    raise RigError(
                        f"replay file {self._name} holds binaural IRs at turntable 0 deg only, "
                        f"got {float(turntable_deg):g} deg"
                    )
                out[r] = self._bin[self.position_index(rec.head), rec.ear]
            else:
                raise RigError(f"unknown receiver {rec!r}; valid: MicReceiver, EarReceiver")
        return out


def load_replay_measurement(path: str | Path) -> Measurement:
    """Read a measurement file and check that it can be replayed.

    Raises
    ------
    FileFormatError
        Not a calib measurement, not stage ``characterize``, incomplete, or
        holding non-finite IRs.
    """
    meas = read_measurement(path)
    if meas.stage != "characterize":
        raise FileFormatError(
            f"{meas.path}: stage: expected 'characterize' (driver IRs) for a replay, got {meas.stage!r}"
        )
    if not meas.complete:
        missing = int((~meas.directivity_done).sum() + (~meas.binaural_done).sum())
        raise FileFormatError(
            f"{meas.path}: incomplete measurement ({missing} steps missing); finish it with --resume before replaying"
        )
    for group, ir in (("directivity", meas.directivity_ir), ("binaural", meas.binaural_ir)):
        if not np.all(np.isfinite(ir)):
            raise FileFormatError(f"{meas.path}: /{group}/ir holds NaN or infinite samples")
    return meas


def check_replay_grid(lab: ReplayLab, proc: Procedure) -> None:
    """Check that the file holds everything ``proc`` will ask for.

    Sample rate, drivers, microphones, azimuths and head positions (by name,
    centre and yaw) of the procedure must all be in the file.

    Raises
    ------
    RigError
        One line naming the first mismatch.
    """
    name = str(lab.measurement.path)
    if proc.audio.sample_rate != lab.sample_rate:
        raise RigError(
            f"replay file {name} has sample_rate {lab.sample_rate} Hz, the procedure's is {proc.audio.sample_rate} Hz"
        )
    file_drivers = list(lab.driver_names)
    if not set(proc.driver_names) <= set(file_drivers):
        raise RigError(
            f"replay file {name} drivers [{', '.join(file_drivers)}] differ from the procedure's "
            f"[{', '.join(proc.driver_names)}]"
        )
    for mic in proc.mic_names:
        lab.mic_index(mic)
    for az in proc.turntable.grid_deg():
        lab.azimuth_index(float(az))
    for p in proc.positions:
        lab.position_index(head_position(p))


def open_replay_rig(path: str | Path, proc: Procedure, serial: str, faults: SimFaults | None = None) -> Rig:
    """Return the replay rig ``replay:<path>`` for ``proc`` and unit ``serial``.

    Parameters
    ----------
    path : path
        A complete ``characterize`` measurement file.
    proc : Procedure
        Channels, grid and ``[sim]`` noise/latency/fault models (required);
        ``[sim.room]`` and the ``[sim.drivers]`` physics are not used: the
        file's IRs are the acoustics.
    serial : str
        The unit being measured (seeds the noise and latency streams); it may
        differ from the file's serial (recorded in ``rig.info``).
    faults : SimFaults, optional
        Overrides ``[sim.faults]``.

    Returns
    -------
    Rig
        ``name="replay:<path>"``, ``simulated=True``; its speed of sound is
        the one the replayed file recorded.

    Raises
    ------
    FileFormatError
        ``path`` is not a complete characterize measurement.
    RigError
        The file lacks a driver, microphone, azimuth or position of ``proc``,
        or has another sample rate.
    ProcedureError
        ``proc`` has no ``[sim]`` section.
    """
    from calib.rig.virtual_lab import assemble_sim_rig, sim_models

    noise, latency, fault_model, _room = sim_models(proc, faults)
    lab = ReplayLab(load_replay_measurement(path), noise.input_fs_per_pa)
    check_replay_grid(lab, proc)
    if lab.measurement.serial != serial:
        log.info("replaying %s (unit %s) as unit %s", path, lab.measurement.serial, serial)
    rig = assemble_sim_rig(f"replay:{path}", lab, proc, serial, noise, latency, fault_model)
    rig.info.update({"replay_file": str(path), "replay_serial": lab.measurement.serial})
    # The replayed acoustics happened in the archived file's air, not in [sim] speed_of_sound.
    from calib.procedure.air import SPEED_OF_SOUND_SOURCE_ATTR, recorded_speed_of_sound

    attrs = lab.measurement.attrs
    rig.speed_of_sound_m_s = recorded_speed_of_sound(attrs)
    rig.air = (
        f"replayed from {Path(path).name}: {attrs.get(SPEED_OF_SOUND_SOURCE_ATTR, 'not recorded (calib default)')}"
    )
    return rig


__all__ = [
    "AZIMUTH_TOL_DEG",
    "POSITION_TOL_M",
    "YAW_TOL_DEG",
    "ReplayDevice",
    "ReplayDriver",
    "ReplayLab",
    "check_replay_grid",
    "describe_grid",
    "load_replay_measurement",
    "open_replay_rig",
]
