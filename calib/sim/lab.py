"""The virtual lab: a device on a turntable, microphones, a dummy head, a room.

Frames
------
The *lab frame* is fixed to the room: origin at the turntable centre, AES69
axes (x forward, y left, z up). At turntable angle 0 it coincides with the
device frame. Turning the table by ``alpha`` rotates the device (driver
positions and axes) by ``+alpha`` about z (counter-clockwise seen from above);
microphones and the dummy head stay put. A microphone at lab azimuth ``phi``
is therefore at azimuth ``phi - alpha`` relative to the device front.

- :class:`MicReceiver` positions are in the lab frame.
- :class:`EarReceiver` heads are given in the device frame at turntable 0
  (which is the lab frame). Binaural steps are measured at turntable 0; at any
  other angle the head stays where it is in the lab and the device turns in
  front of it.

Physics per driver ``s`` and receiver (all in the frequency domain, vectorized
over bins)::

    C(f) = p_s * pol_s * H_s(f) * sum_images beta^n * D_s(f, theta) * (1 m / r) e^{-jkr} [* S_ear(f)]

with ``p_s`` the sensitivity (Pa at 1 m), ``H_s`` :func:`calib.sim.driver.driver_response`,
``D_s`` :func:`calib.sim.driver.driver_directivity` towards the microphone
(or the head centre), the point source of :mod:`calib.sim.propagation`, and
for ears the rigid-sphere transfer relative to the free field at the head
centre (:func:`calib.sim.sphere.head_to_ear_transfer`, Duda & Martens 1998).
With a room the sum runs over the image sources of
:func:`calib.sim.room.image_sources` (axes mirrored); without, over the
driver alone. Units: pascal per full-scale input.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from calib.errors import ProcedureError
from calib.geometry import HeadPosition
from calib.sim.driver import driver_directivity, driver_response
from calib.sim.params import DeviceModel, RoomModel, driver_names
from calib.sim.propagation import point_source
from calib.sim.room import image_sources
from calib.sim.sphere import DEFAULT_HEAD_RADIUS_M, head_to_ear_transfer

EAR_NAMES = ("left", "right")
SPHERE_GRID_HZ = 50.0
"""Spacing of the coarse grid the sphere series is evaluated on (see ``VirtualLab._sphere_smooth``)."""


@dataclass(frozen=True)
class MicReceiver:
    """A pressure microphone at ``xyz_m`` in the lab frame (omnidirectional, flat)."""

    name: str
    xyz_m: tuple[float, float, float]

    def __post_init__(self) -> None:
        xyz = np.asarray(self.xyz_m, dtype=float)
        if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            raise ProcedureError(f"microphone {self.name!r} xyz_m must be 3 finite numbers, got {self.xyz_m!r}")
        object.__setattr__(self, "xyz_m", tuple(float(v) for v in xyz))


@dataclass(frozen=True)
class EarReceiver:
    """One ear (0 = left, 1 = right) of the dummy head placed at ``head``.

    ``head`` is in the device frame at turntable 0 (= lab frame). ``None``
    means "wherever the positioner put the head" and is resolved by the
    simulated rig; :class:`VirtualLab` itself needs a concrete head.
    """

    head: HeadPosition | None
    ear: int

    def __post_init__(self) -> None:
        if self.ear not in (0, 1):
            raise ProcedureError(f"ear must be 0 (left) or 1 (right), got {self.ear!r}")
        if self.head is not None:
            xyz = np.asarray(self.head.xyz_m, dtype=float)
            if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
                raise ProcedureError(f"head {self.head.name!r} xyz_m must be 3 finite numbers, got {self.head.xyz_m!r}")
            # A hashable, canonical head (tuples of floats) so receivers can key caches.
            head = HeadPosition(self.head.name, (float(xyz[0]), float(xyz[1]), float(xyz[2])), float(self.head.yaw_deg))
            object.__setattr__(self, "head", head)

    @property
    def name(self) -> str:
        """``"<position>/left"`` or ``"<position>/right"``."""
        where = "head" if self.head is None else self.head.name
        return f"{where}/{EAR_NAMES[self.ear]}"


Receiver = MicReceiver | EarReceiver


def mic_arc(distance_m: float, azimuths_deg: Sequence[float], height_m: float = 0.0,
            prefix: str = "mic") -> list[MicReceiver]:
    """Microphones on a horizontal arc around the turntable centre (lab frame).

    Names are ``f"{prefix}{azimuth:+g}"``, e.g. ``"mic+30"``.
    """
    az = np.deg2rad(np.asarray(azimuths_deg, dtype=float))
    return [
        MicReceiver(f"{prefix}{np.rad2deg(a):+g}", (distance_m * np.cos(a), distance_m * np.sin(a), height_m))
        for a in az
    ]


class _SharedIrs:
    """A process-wide LRU store of true IR sets, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[object, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, key: object) -> np.ndarray | None:
        ir = self._items.get(key)
        if ir is not None:
            self._items.move_to_end(key)
        return ir

    def clear(self) -> None:
        """Forget everything (benchmarks that time the physics)."""
        self._items.clear()
        self._bytes = 0

    def put(self, key: object, ir: np.ndarray) -> None:
        if key in self._items:
            return
        self._items[key] = ir
        self._bytes += ir.nbytes
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes


_SHARED_IRS = _SharedIrs(256 * 2**20)


def rotation_z(angle_deg: float) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` by ``angle_deg`` counter-clockwise about +z."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def angle_key(turntable_deg: float) -> float:
    """Cache key of an angle: modulo 360, rounded to 1e-9 degree."""
    return round(float(turntable_deg) % 360.0, 9) % 360.0


class VirtualLab:
    """Transfer functions and true impulse responses of a simulated device.

    Parameters
    ----------
    device : DeviceModel
        The unit (healthy: faults live in the rig, not here).
    sample_rate : int
        Hz.
    n_ir : int
        Length of the true impulse responses (e.g. 8192 at 48 kHz). Every
        arrival plus the slowest driver's 60 dB ring-down must fit.
    speed_of_sound : float
        m/s.
    room : RoomModel or None
        None: free field.
    head_radius_m, ear_azimuth_deg : float
        Dummy-head sphere radius and ear azimuth relative to its facing direction.
    cache_size : int
        Number of (turntable angle, receiver) IR sets kept (least recently used dropped).
    """

    def __init__(
        self,
        device: DeviceModel,
        sample_rate: int,
        n_ir: int = 8192,
        speed_of_sound: float = 343.0,
        room: RoomModel | None = None,
        head_radius_m: float = DEFAULT_HEAD_RADIUS_M,
        ear_azimuth_deg: float = 100.0,
        cache_size: int = 128,
    ) -> None:
        if int(sample_rate) <= 0 or int(n_ir) < 16:
            raise ProcedureError(f"need sample_rate > 0 and n_ir >= 16, got {sample_rate!r}, {n_ir!r}")
        if not speed_of_sound > 0:
            raise ProcedureError(f"speed_of_sound must be > 0, got {speed_of_sound!r}")
        self.device = device
        self.sample_rate = int(sample_rate)
        self.n_ir = int(n_ir)
        self.speed_of_sound = float(speed_of_sound)
        self.room = room
        self.head_radius_m = float(head_radius_m)
        self.ear_azimuth_deg = float(ear_azimuth_deg)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple[float, Receiver], np.ndarray] = OrderedDict()
        # Everything the true IRs depend on (the dataclasses are frozen, so hashable).
        self._physics = (device, self.sample_rate, self.n_ir, self.speed_of_sound, room, self.head_radius_m,
                         self.ear_azimuth_deg)
        d = device.drivers
        self._pos = np.array([x.position_m for x in d])  # [S, 3] device frame
        self._axis = np.array([x.axis for x in d])  # [S, 3]
        self._radius = np.array([x.radius_m for x in d])
        self._rear = np.array([x.rear_attenuation_db for x in d])
        self._gain = np.array([x.sensitivity_pa * x.polarity for x in d])
        self._fc = np.array([x.fc_hz for x in d])
        self._q = np.array([x.q for x in d])
        self._lp = np.array([x.lowpass_hz for x in d])

    @property
    def driver_names(self) -> tuple[str, ...]:
        """Driver names, the source order of every array returned."""
        return driver_names(self.device)

    @property
    def freqs_hz(self) -> np.ndarray:
        """The rfft grid of ``n_ir``: ``[n_ir // 2 + 1]``."""
        return np.fft.rfftfreq(self.n_ir, 1.0 / self.sample_rate)

    # ------------------------------------------------------------------ geometry
    def _sources(self, turntable_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lab-frame source positions [S, I, 3], axes [S, I, 3] and image gains [I]."""
        rot = rotation_z(turntable_deg)
        pos = self._pos @ rot.T
        axis = self._axis @ rot.T
        if self.room is None:
            return pos[:, None, :], axis[:, None, :], np.ones(1)
        origin = np.asarray(self.room.device_position_m)
        img = image_sources(pos + origin, self.room.dimensions_m, self.room.max_order, self.room.reflection_coefficient)
        return img.positions_m - origin, img.mirror_axes(axis), img.gain

    def _towards(self, freqs: np.ndarray, src: np.ndarray, axis: np.ndarray, gains: np.ndarray,
                 point: np.ndarray) -> np.ndarray:
        """Directivity x point source x image gain from every source towards ``point``: [S, I, F]."""
        if self.room is not None:
            room_xyz = point + np.asarray(self.room.device_position_m)
            if np.any(room_xyz <= 0) or np.any(room_xyz >= np.asarray(self.room.dimensions_m)):
                where = tuple(float(v) for v in point)
                raise ProcedureError(
                    f"a receiver at {where!r} m (lab frame) is outside the room {self.room.dimensions_m!r} "
                    f"with the device at {self.room.device_position_m!r}"
                )
        vec = point - src
        dist = np.linalg.norm(vec, axis=-1)
        if np.any(dist < 1e-3):
            where = tuple(float(v) for v in point)
            raise ProcedureError(f"a receiver at {where!r} m coincides with a driver (closer than 1 mm)")
        cos_a = np.einsum("sik,sik->si", vec, axis) / dist
        directivity = driver_directivity(freqs, self._radius[:, None], cos_a, self._rear[:, None], self.speed_of_sound)
        return gains[:, None] * directivity * point_source(freqs, dist, self.speed_of_sound)

    def transfer(self, freqs_hz: np.ndarray, receivers: Sequence[Receiver], turntable_deg: float = 0.0) -> np.ndarray:
        """Linear transfer functions of the healthy unit.

        Parameters
        ----------
        freqs_hz : array_like, shape (F,)
        receivers : sequence of MicReceiver or EarReceiver (with a head)
        turntable_deg : float
            Device rotation about +z.

        Returns
        -------
        ndarray, shape (F, R, S), complex128
            Pa per full-scale input, ``e^{+j omega t}`` convention.
        """
        freqs = np.asarray(freqs_hz, dtype=float)
        if freqs.ndim != 1:
            raise ProcedureError(f"freqs_hz must be 1-D, got shape {freqs.shape}")
        src, axis, gains = self._sources(turntable_deg)
        out = np.empty((len(receivers), len(self._pos), freqs.size), dtype=complex)
        ears: dict[HeadPosition, np.ndarray] = {}
        for r, rec in enumerate(receivers):
            if isinstance(rec, MicReceiver):
                out[r] = self._towards(freqs, src, axis, gains, np.asarray(rec.xyz_m)).sum(axis=1)
            elif isinstance(rec, EarReceiver):
                if rec.head is None:
                    raise ProcedureError(f"ear receiver {rec.name!r} has no head position; place the head first")
                if rec.head not in ears:
                    ears[rec.head] = self._ears(freqs, src, axis, gains, rec.head)
                out[r] = ears[rec.head][..., rec.ear]
            else:
                raise ProcedureError(f"unknown receiver {rec!r}; valid: MicReceiver, EarReceiver")
        out *= (self._gain[:, None] * driver_response(freqs, self._fc, self._q, self._lp))[None]
        return np.moveaxis(out, -1, 0)

    def _ears(self, freqs: np.ndarray, src: np.ndarray, axis: np.ndarray, gains: np.ndarray,
              head: HeadPosition) -> np.ndarray:
        """Both ears of one head: [S, F, 2] (free field to the centre x sphere)."""
        centre = np.asarray(head.xyz_m)
        free = self._towards(freqs, src, axis, gains, centre)  # [S, I, F]
        try:
            sphere = self._sphere_smooth(freqs, src, centre, head.yaw_deg)  # [S, I, F, 2]
        except ValueError as exc:
            raise ProcedureError(f"head {head.name!r} at {head.xyz_m!r}: {exc}") from exc
        return np.einsum("sif,sife->sfe", free, sphere)

    def _sphere_smooth(self, freqs: np.ndarray, src: np.ndarray, centre: np.ndarray, yaw_deg: float) -> np.ndarray:
        """Sphere transfer ``[S, I, F, 2]``: the series on a coarse grid, cubic-spline interpolated.

        Relative to the free field at the head centre, the sphere transfer is
        smooth in frequency: no ear hears anything later than the wave that
        creeps half-way round, ``(1 + pi / 2) a / c`` (0.66 ms for a 8.75 cm
        head) after the centre, so it varies on a scale of ``c / ((1 + pi/2) a)``
        (1.5 kHz). Sampled every :data:`SPHERE_GRID_HZ` (at least 30 points per
        such period) a cubic spline reproduces it within -90 dB (tested), and
        the series, which costs ~ka terms per element, runs on 1/8 of the bins
        at 8192 points and 48 kHz; that is what makes rooms (one series per
        image source) affordable. Blocks of ~128 coarse bins let low-frequency
        blocks stop early.
        """
        step = 1
        if freqs.size > 8:
            df = np.diff(freqs)
            if np.allclose(df, df[0], rtol=1e-9) and df[0] > 0:  # a uniform grid (the rfft grid)
                step = max(1, int(SPHERE_GRID_HZ // df[0]))
        idx = np.unique(np.r_[np.arange(0, freqs.size, step), freqs.size - 1])
        coarse = freqs[idx]
        blocks = np.array_split(coarse, max(1, coarse.size // 128))
        values = np.concatenate(
            [head_to_ear_transfer(fb, src, centre, yaw_deg, self.head_radius_m, self.speed_of_sound,
                                  ear_azimuth_deg=self.ear_azimuth_deg) for fb in blocks],
            axis=-2,
        )  # [S, I, Fc, 2]
        if idx.size == freqs.size:
            return values
        spline = CubicSpline(coarse, values, axis=-2)
        return spline(freqs)

    # ------------------------------------------------------------------ impulse responses
    def true_irs(self, receivers: Sequence[Receiver], turntable_deg: float = 0.0) -> np.ndarray:
        """Return the system the simulated rig convolves with (ground truth for tests).

        ``irfft`` of :meth:`transfer` on the rfft grid of ``n_ir`` (the
        imaginary part at Nyquist is dropped, as irfft does). Time origin: the
        moment the signal leaves the output, so propagation delay is included.
        Cached per (turntable angle modulo 360, receiver), and shared with
        every other lab of the same unit in the same room in this process
        (``calib run`` verifies the unit it measured: the truth is the same).

        Returns
        -------
        ndarray, shape (R, S, n_ir), float64
            A read-only array.

        Raises
        ------
        ProcedureError
            If the latest arrival plus the slowest driver's 60 dB ring-down
            does not fit into ``n_ir`` (the IR would wrap around).
        """
        key = angle_key(turntable_deg)
        for rec in dict.fromkeys(receivers):
            shared = _SHARED_IRS.get((self._physics, key, rec))
            if (key, rec) not in self._cache and shared is not None:
                self._cache[(key, rec)] = shared
        missing = [rec for rec in dict.fromkeys(receivers) if (key, rec) not in self._cache]
        if missing:
            self._check_length(missing, turntable_deg)
            irs = np.fft.irfft(np.moveaxis(self.transfer(self.freqs_hz, missing, turntable_deg), 0, -1), n=self.n_ir)
            for rec, ir in zip(missing, irs, strict=True):
                ir.flags.writeable = False
                self._cache[(key, rec)] = ir
                _SHARED_IRS.put((self._physics, key, rec), ir)
        out = np.stack([self._cache[(key, rec)] for rec in receivers])
        for rec in receivers:
            self._cache.move_to_end((key, rec))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        out.flags.writeable = False
        return out

    def _check_length(self, receivers: Sequence[Receiver], turntable_deg: float) -> None:
        src, _, _ = self._sources(turntable_deg)
        points = []
        for r in receivers:
            if isinstance(r, MicReceiver):
                points.append(np.asarray(r.xyz_m))
            elif r.head is not None:
                points.append(np.asarray(r.head.xyz_m))
        if not points:
            return
        dist = np.linalg.norm(np.asarray(points)[:, None, None, :] - src[None], axis=-1)
        latest_s = (float(dist.max()) + self.head_radius_m) / self.speed_of_sound
        # Envelope of a 2nd-order high-pass decays as exp(-omega_c t / (2Q)): 60 dB in 6.91 * 2Q / omega_c.
        ring_s = float(np.max(6.91 * 2.0 * self._q / (2.0 * np.pi * self._fc)))
        needed = int(np.ceil((latest_s + ring_s) * self.sample_rate))
        if needed > self.n_ir:
            raise ProcedureError(
                f"n_ir={self.n_ir} samples is too short: the latest arrival ({latest_s * 1e3:.1f} ms) plus the "
                f"driver ring-down ({ring_s * 1e3:.1f} ms) needs {needed}; raise n_ir or lower the room max_order"
            )


__all__ = ["EAR_NAMES", "EarReceiver", "MicReceiver", "Receiver", "VirtualLab", "angle_key", "mic_arc", "rotation_z"]
