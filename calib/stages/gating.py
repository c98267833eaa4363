"""Reflection-free time per step, and the gates the fit and the verification apply.

Two sources of truth, the earlier of which wins:

- the **geometry**, where the room is known (the virtual lab's ``[sim.room]``
  or a station's ``[room]``): direct and first-reflection paths from every
  driver to every receiver of every step (:func:`calib.sim.room.reflection_paths_m`);
- the **IRs themselves** (:func:`calib.signals.gate.detect_arrivals`): what
  the geometry does not know (a turntable, a stand, a floor grid) shows up as
  an early detected arrival.

Both are stored in the measurement file (``/reflections``) when it is
written and shown by ``calib inspect`` and the report. A gate is one window
per step and receiver (each arc microphone; both ears of a head position
together), common to every driver: every driver combination the filters make
at that receiver is then gated the same way, so filtering and gating commute
for the measured drivers. Its end is the step's earliest reflection minus
:data:`GUARD_S`; the lowest frequency a receiver's gates support is
``1 / T`` with ``T`` the shortest time, over its steps, from the direct sound
to the middle of the fade.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from calib.errors import ProcedureError
from calib.geometry import HeadPosition
from calib.procedure.air import DEFAULT_SPEED_OF_SOUND_M_S, recorded_speed_of_sound
from calib.procedure.spec import GateSection, Procedure, RoomGeometry
from calib.signals.gate import Arrivals, detect_arrivals, gate_window, lowest_supported_hz
from calib.sim.lab import rotation_z
from calib.sim.room import reflection_paths_m
from calib.sim.sphere import DEFAULT_HEAD_RADIUS_M, ear_directions
from calib.store.measurement import GROUPS

GUARD_S = 50e-6
"""The gate closes this long before the first reflection's onset."""


@dataclass(frozen=True)
class Gate:
    """The time windows of one receiver (or both ears), one per step.

    Attributes
    ----------
    end_s : ndarray [steps]
        Where each step's window reaches zero, seconds from the output instant; inf: ungated.
    fade_s : float
        Half-Hann fade length before ``end_s``.
    reflection_free_s : float
        The shortest time from a step's direct sound to its ``end_s`` (inf: no reflection found).
    lowest_hz : float
        ``1 / T`` (:func:`calib.signals.gate.lowest_supported_hz`); 0 when ungated.
    basis : str
        ``"detected"``, ``"geometry"`` (which gave the shortest gate) or ``"none"``.
    """

    end_s: np.ndarray
    fade_s: float
    reflection_free_s: float
    lowest_hz: float
    basis: str

    @property
    def gated(self) -> bool:
        """True when a window cuts anything."""
        return bool(np.any(np.isfinite(self.end_s)))

    def windows(self, n: int, sample_rate: float) -> np.ndarray:
        """Return the windows ``[steps, n]`` (ones where ungated)."""
        ends = np.broadcast_to(np.asarray(self.end_s, float), np.shape(self.end_s) or (1,))
        return np.stack([np.ones(n) if not np.isfinite(e) else gate_window(n, sample_rate, float(e), self.fade_s)
                         for e in ends])

    def describe(self) -> str:
        """One line, e.g. ``3.21 ms reflection-free (geometry), lowest 321 Hz``."""
        if not self.gated:
            return "no reflection in the IR (ungated)"
        return f"{self.reflection_free_s * 1e3:.2f} ms reflection-free ({self.basis}), lowest {self.lowest_hz:.0f} Hz"


@dataclass(frozen=True)
class Gates:
    """Gates of a measurement: one per arc microphone, one for both ears."""

    directivity: tuple[Gate, ...]
    binaural: Gate

    def of(self, group: str, receiver: int = 0) -> Gate:
        """Return the gate of ``receiver`` in ``group`` (binaural: both ears share one)."""
        return self.binaural if group == "binaural" else self.directivity[receiver]


UNGATED = Gate(np.array([np.inf]), 0.0, np.inf, 0.0, "none")


# ---------------------------------------------------------------- geometry
def room_of(proc: Procedure, station=None) -> RoomGeometry | None:
    """Return the room a measurement of ``proc`` happens in: the station's ``[room]``, else ``[sim.room]``."""
    if station is not None and getattr(station, "room", None) is not None:
        return station.room
    if proc.sim is not None and proc.sim.room is not None:
        return proc.sim.room
    return None


def room_for_rig(proc: Procedure, rig_spec: str, station=None) -> RoomGeometry | None:
    """Return the room a rig measures in.

    The virtual lab's ``[sim.room]``, a PortAudio station's ``[room]``; a replay: unknown.
    """
    if rig_spec == "sim":
        return proc.sim.room if proc.sim is not None else None
    if rig_spec == "portaudio":
        return getattr(station, "room", None)
    return None


def check_room_supports_targets(proc: Procedure, room: RoomGeometry | None, where: str,
                                station=None) -> Gates | None:
    """Return the geometric gates, raising ProcedureError when they cannot support the target bands."""
    gates = predicted_gates(proc, room, station)
    if gates is not None:
        problem = supported_band_error(proc, gates, where)
        if problem is not None:
            raise ProcedureError(problem)
    return gates


def speed_of_sound(proc: Procedure, station=None) -> float:
    """m/s before measuring: the station's air, else the virtual lab's, else the default."""
    if station is not None:
        return float(station.speed_of_sound()[0])
    return float(proc.sim.speed_of_sound) if proc.sim is not None else DEFAULT_SPEED_OF_SOUND_M_S


def driver_positions_m(proc: Procedure) -> np.ndarray:
    """Driver acoustic centres ``[S, 3]`` in the device frame (the product geometry)."""
    return np.array([d.position_m for d in proc.drivers], dtype=float).reshape(-1, 3)


def mic_positions_m(proc: Procedure) -> np.ndarray:
    """Arc microphones ``[Rm, 3]`` in the lab frame (azimuth 0, at their elevations)."""
    el = np.deg2rad([m.elevation_deg for m in proc.mics])
    d = proc.arc.distance_m
    return np.stack([d * np.cos(el), np.zeros_like(el), d * np.sin(el)], axis=-1)


def ear_positions_m(xyz_m: tuple[float, float, float], yaw_deg: float,
                    radius_m: float = DEFAULT_HEAD_RADIUS_M) -> np.ndarray:
    """Left and right ear ``[2, 3]`` of a rigid-sphere head (lab frame)."""
    return np.asarray(xyz_m, dtype=float) + radius_m * ear_directions(yaw_deg)


def geometric_arrivals(proc: Procedure, room: RoomGeometry, azimuths_deg: np.ndarray,
                       positions: list, c: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Direct and first-reflection times from the image-source geometry.

    Returns
    -------
    dict
        ``group -> (direct_s, reflection_s)``, each ``[steps, receivers, S]``
        (directivity: azimuths x mics; binaural: positions x ears).

    Raises
    ------
    ProcedureError
        A receiver or driver outside the room.
    """
    origin = np.asarray(room.device_position_m, dtype=float)
    dims = np.asarray(room.dimensions_m, dtype=float)
    drivers = driver_positions_m(proc)
    mics = mic_positions_m(proc) + origin
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        rows = [reflection_paths_m(drivers @ rotation_z(-float(az)).T + origin, mics, dims) for az in azimuths_deg]
        out["directivity"] = (np.array([r[0] for r in rows]) / c, np.array([r[1] for r in rows]) / c)
        rows = [reflection_paths_m(drivers + origin, ear_positions_m(p.xyz_m, p.yaw_deg) + origin, dims)
                for p in positions]
        out["binaural"] = (np.array([r[0] for r in rows]).reshape(len(positions), 2, -1) / c,
                           np.array([r[1] for r in rows]).reshape(len(positions), 2, -1) / c)
    except ValueError as exc:
        raise ProcedureError(f"{proc.source_path or '<procedure>'}: room: {exc}") from None
    return out


# ---------------------------------------------------------------- detection and storage
#: Samples of IR handled at once where a whole group is scanned (32 MB of float64; the envelope's
#: complex temporaries a few times that): memory stays bounded by a block, not by the file.
BLOCK_SAMPLES = 1 << 22


def step_blocks(ir) -> Iterator[slice]:
    """Return slices of whole steps of ``ir``, at most :data:`BLOCK_SAMPLES` samples each (one step at least).

    ``ir`` is ``[steps, ...]``: an array, or an h5py or lazy dataset that a slice reads from the file.
    """
    per_step = int(np.prod(ir.shape[1:], dtype=np.int64))
    size = max(1, BLOCK_SAMPLES // max(per_step, 1))
    return (slice(i, i + size) for i in range(0, ir.shape[0], size))


def detect_group(ir, sample_rate: int, group: str, settings: GateSection) -> Arrivals:
    """Arrivals of every IR of a group (``[steps, receivers, S, N]``) with the procedure's rules.

    ``ir`` may be an array or a dataset in a file (h5py or lazy): it is read a block of steps at a time.
    """
    min_delay_ms = settings.ear_min_delay_ms if group == "binaural" else settings.mic_min_delay_ms
    parts = [detect_arrivals(np.asarray(ir[block], float), sample_rate, highpass_hz=settings.highpass_hz,
                             min_delay_s=min_delay_ms * 1e-3, threshold_db=settings.threshold_db)
             for block in step_blocks(ir)]
    return Arrivals(*(np.concatenate([getattr(a, f) for a in parts]) if parts else np.zeros(ir.shape[:-1])
                      for f in ("direct_s", "reflection_s", "reflection_db")))


def annotate_reflections(path: str | Path, proc: Procedure, room: RoomGeometry | None) -> None:
    """Write ``/reflections`` into a fully measured file (detected, and geometric where the room is known).

    Layout: ``/reflections/<group>/{direct_s, first_s, first_level_db}`` (detected)
    and, with a room, ``geometric_direct_s`` and ``geometric_first_s``, each
    ``[steps, receivers, S]``; attributes ``room_dimensions_m`` and
    ``room_device_position_m``. Rewrites the group if it exists (a resumed run).
    """
    with h5py.File(path, "r+") as f:
        fs = int(f.attrs["sample_rate"])
        if "reflections" in f:
            del f["reflections"]
        top = f.create_group("reflections")
        geo = None
        if room is not None:
            top.attrs["room_dimensions_m"] = np.asarray(room.dimensions_m, float)
            top.attrs["room_device_position_m"] = np.asarray(room.device_position_m, float)
            positions = [HeadPosition(n, tuple(xyz), float(y)) for n, xyz, y in zip(
                f["binaural/positions/name"].asstr()[()], f["binaural/positions/xyz_m"][()],
                f["binaural/positions/yaw_deg"][()], strict=True)]
            geo = geometric_arrivals(proc, room, f["directivity/azimuth_deg"][()], positions,
                                     recorded_speed_of_sound(f.attrs))
        for group in GROUPS:
            arrivals = detect_group(f[f"{group}/ir"], fs, group, proc.gate)
            g = top.create_group(group)
            g.create_dataset("direct_s", data=arrivals.direct_s)
            g.create_dataset("first_s", data=arrivals.reflection_s)
            g.create_dataset("first_level_db", data=arrivals.reflection_db)
            if geo is not None:
                g.create_dataset("geometric_direct_s", data=geo[group][0])
                g.create_dataset("geometric_first_s", data=geo[group][1])
        f.flush()


def reflections_of(meas, proc: Procedure) -> dict[str, dict[str, np.ndarray]]:
    """Return the stored ``/reflections`` of a measurement, or the detection computed now (older files)."""
    if meas.reflections:
        return meas.reflections
    out = {}
    for group, ir in (("directivity", meas.directivity_ir), ("binaural", meas.binaural_ir)):
        a = detect_group(ir, meas.sample_rate, group, proc.gate)
        out[group] = {"direct_s": a.direct_s, "first_s": a.reflection_s, "first_level_db": a.reflection_db}
    return out


# ---------------------------------------------------------------- gates
def receiver_gate(direct_s: np.ndarray, first_s: np.ndarray, geometric_first_s: np.ndarray | None,
                  peak_level: np.ndarray, fade_s: float) -> Gate:
    """Return the gates of one receiver from its arrivals at every step and driver (``[steps, S]`` each).

    Per step, the window closes :data:`GUARD_S` before the earliest
    reflection, detected or geometric, of any driver; the step's direct sound
    is that of its loudest driver (``peak_level``, any unit: a driver facing
    away may hear a wall louder than itself).
    """
    steps = direct_s.shape[0]
    detected = np.where(np.isfinite(first_s), first_s, np.inf)
    geometric = np.full_like(detected, np.inf) if geometric_first_s is None else np.nan_to_num(
        geometric_first_s, nan=np.inf)
    earliest = np.minimum(detected, geometric).min(axis=-1)  # [steps]
    if not np.any(np.isfinite(earliest)):
        return Gate(np.full(steps, np.inf), fade_s, np.inf, 0.0, "none")
    loudest = np.argmax(np.nan_to_num(peak_level, nan=-np.inf), axis=-1)
    direct = np.take_along_axis(direct_s, loudest[:, None], axis=-1)[:, 0]
    end = earliest - GUARD_S
    free = end - direct
    worst = int(np.nanargmin(np.where(np.isfinite(free), free, np.inf)))
    basis = "detected" if detected[worst].min() <= geometric[worst].min() else "geometry"
    return Gate(end, fade_s, float(free[worst]), lowest_supported_hz(float(free[worst]), fade_s), basis)


def measurement_gates(meas, proc: Procedure) -> Gates:
    """Return the gates of a characterize or verify measurement (ungated with ``[gate] mode = "off"``)."""
    if proc.gate.mode == "off":
        return Gates(tuple(UNGATED for _ in meas.receivers), UNGATED)  # windows broadcast over steps
    refl = reflections_of(meas, proc)
    fade = proc.gate.fade_ms * 1e-3

    def gate(group: str, ir: np.ndarray, sel: slice | int) -> Gate:
        r = refl[group]
        geo = r.get("geometric_first_s")
        level = _peak_levels(ir)  # [steps, receivers, S]
        if isinstance(sel, int):
            pick = (slice(None), sel)
            return receiver_gate(r["direct_s"][pick], r["first_s"][pick], None if geo is None else geo[pick],
                                 level[pick], fade)
        # both ears: fold the ear axis into the drivers
        def fold(x: np.ndarray) -> np.ndarray:
            return np.reshape(x, (x.shape[0], -1))

        return receiver_gate(fold(r["direct_s"]), fold(r["first_s"]), None if geo is None else fold(geo),
                             fold(level), fade)

    mics = tuple(gate("directivity", meas.directivity_ir, m) for m in range(len(meas.receivers)))
    return Gates(mics, gate("binaural", meas.binaural_ir, slice(None)))


def gated_binaural(meas, gates: Gates) -> np.ndarray:
    """Return the ear IRs ``[P, 2, S, N]`` with each head position's gate applied.

    Return the ear IRs ``[P, 2, S, N]`` with each head position's gate applied (arc microphones:
    :func:`calib.stages.fit.arc_spectra` gates one microphone at a time).
    """
    windows = gates.binaural.windows(meas.ir_length, meas.sample_rate)  # [P or 1, N]
    return np.asarray(meas.binaural_ir, float) * windows[:, None, None, :]


def _peak_levels(ir) -> np.ndarray:
    """``max |ir|`` over samples, a block of steps at a time (lazy datasets stay in the file)."""
    return np.concatenate([np.max(np.abs(np.asarray(ir[block])), axis=-1) for block in step_blocks(ir)])


def predicted_gates(proc: Procedure, room: RoomGeometry | None, station=None) -> Gates | None:
    """Return the gates the room geometry alone implies (before measuring); None without a room or with gating off."""
    if room is None or proc.gate.mode == "off":
        return None
    from calib.procedure.layout import head_position

    positions = [head_position(p) for p in proc.positions]
    geo = geometric_arrivals(proc, room, proc.turntable.grid_deg(), positions, speed_of_sound(proc, station))
    fade = proc.gate.fade_ms * 1e-3

    def gate(direct: np.ndarray, first: np.ndarray) -> Gate:
        return receiver_gate(direct, np.full_like(first, np.nan), first, -direct, fade)  # the nearest driver is loudest

    d, r = geo["directivity"]
    mics = tuple(gate(d[:, m], r[:, m]) for m in range(d.shape[1]))
    d, r = geo["binaural"]
    return Gates(mics, gate(d.reshape(d.shape[0], -1), r.reshape(r.shape[0], -1)))


def supported_band_error(proc: Procedure, gates: Gates, where: str) -> str | None:
    """Why the gates cannot support the product's target bands (None if they can).

    The cancellation target needs the ears' gate down to the lower edge of its
    lowest third-octave band, the beam target the horizontal microphone's.
    """
    from calib.metrics.bands import third_octave_bands
    from calib.stages.product_metrics import horizontal_mic_index

    needs = [("binaural", 0, "targets.cancellation", proc.targets.cancellation.band_hz())]
    if proc.targets.beam is not None:
        needs.append(("directivity", horizontal_mic_index(proc), "targets.beam", proc.targets.beam.band_hz))
    for group, receiver, field, band in needs:
        gate = gates.of(group, receiver)
        lowest_edge = float(third_octave_bands(*band).lower_hz[0])
        if gate.lowest_hz > lowest_edge:
            what = "ears" if group == "binaural" else f"microphone {proc.mic_names[receiver]}"
            return (
                f"{where}: {field}: the band starts at {band[0]:g} Hz (band edge {lowest_edge:.0f} Hz), but the "
                f"{what} get {gate.reflection_free_s * 1e3:.2f} ms before the first reflection, which supports "
                f"{gate.lowest_hz:.0f} Hz and up; raise the band, or measure further from the room's surfaces"
            )
    return None
