"""Plain parameter records of the virtual lab.

The procedure layer maps TOML tables onto these frozen dataclasses; the
physics (:mod:`calib.sim.driver`, :mod:`calib.sim.propagation`,
:mod:`calib.sim.room`, :mod:`calib.sim.lab`) and the simulated rig
(:mod:`calib.rig.sim`) read them. Geometry follows AES69: x forward (device
front), y left, z up, metres, device origin at the turntable centre.

Invalid values raise :class:`calib.errors.ProcedureError` (a ``ValueError``)
with the bad value quoted, because these records come from procedure files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from calib.errors import ProcedureError


def _vec3(value: object, what: str) -> tuple[float, float, float]:
    """Return ``value`` as a finite 3-tuple of floats or raise ProcedureError."""
    arr = np.asarray(value, dtype=float)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ProcedureError(f"{what} must be 3 finite numbers (x, y, z), got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _positive(value: float, what: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ProcedureError(f"{what} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class DriverModel:
    """One loudspeaker driver of the device.

    Parameters
    ----------
    name : str
        Driver name (unique within the device), e.g. ``"woofer_left"``.
    position_m : tuple of float
        Acoustic centre in the device frame, metres.
    axis : tuple of float
        On-axis direction; normalised to a unit vector on construction.
    radius_m : float
        Effective piston radius (sets the directivity, ``ka``).
    sensitivity_pa : float
        On-axis pressure amplitude at 1 m (Pa) for a full-scale sine in the
        pass band.
    fc_hz, q : float
        Thiele-Small closed-box high-pass: corner frequency and total Q.
    lowpass_hz : float
        Corner of a gentle 2nd-order Butterworth low-pass (voice-coil
        inductance, cone break-up, amplifier band limit).
    rear_attenuation_db : float
        Attenuation (>= 0 dB) of the rear hemisphere relative to the piston
        pattern, reached straight behind the axis (see
        :func:`calib.sim.driver.driver_directivity`).
    polarity : int
        +1 or -1 (wiring of the healthy unit).
    h2, h3 : float
        Static polynomial nonlinearity ``y = x + h2 x**2 + h3 x**3`` applied to
        the electrical signal before the linear response.
    """

    name: str
    position_m: tuple[float, float, float]
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    radius_m: float = 0.025
    sensitivity_pa: float = 1.0
    fc_hz: float = 80.0
    q: float = 0.707
    lowpass_hz: float = 20000.0
    rear_attenuation_db: float = 10.0
    polarity: int = 1
    h2: float = 0.0
    h3: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProcedureError(f"driver name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "position_m", _vec3(self.position_m, f"driver {self.name!r} position_m"))
        axis = np.asarray(_vec3(self.axis, f"driver {self.name!r} axis"))
        norm = float(np.linalg.norm(axis))
        if norm == 0.0:
            raise ProcedureError(f"driver {self.name!r} axis must not be the zero vector, got {self.axis!r}")
        object.__setattr__(self, "axis", tuple(float(v) for v in axis / norm))
        for what in ("radius_m", "sensitivity_pa", "fc_hz", "q", "lowpass_hz"):
            _positive(float(getattr(self, what)), f"driver {self.name!r} {what}")
        if not (math.isfinite(self.rear_attenuation_db) and self.rear_attenuation_db >= 0):
            raise ProcedureError(
                f"driver {self.name!r} rear_attenuation_db must be >= 0, got {self.rear_attenuation_db!r}"
            )
        if self.polarity not in (1, -1):
            raise ProcedureError(f"driver {self.name!r} polarity must be 1 or -1, got {self.polarity!r}")


@dataclass(frozen=True)
class DeviceModel:
    """The nominal (or one unit's) device: its drivers in output order."""

    drivers: tuple[DriverModel, ...]

    def __post_init__(self) -> None:
        drivers = tuple(self.drivers)
        if not drivers:
            raise ProcedureError("a device needs at least one driver, got none")
        names = [d.name for d in drivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ProcedureError(f"driver names must be unique, repeated: {dupes!r}")
        object.__setattr__(self, "drivers", drivers)

    @property
    def names(self) -> tuple[str, ...]:
        """Driver names in order (same as :func:`driver_names`)."""
        return driver_names(self)

    def driver(self, name: str) -> DriverModel:
        """Return the driver called ``name``; ProcedureError listing the valid names otherwise."""
        for d in self.drivers:
            if d.name == name:
                return d
        raise ProcedureError(f"unknown driver {name!r}; valid: {', '.join(self.names)}")


def driver_names(device: DeviceModel) -> tuple[str, ...]:
    """Names of the device's drivers, in output order."""
    return tuple(d.name for d in device.drivers)


@dataclass(frozen=True)
class UnitVariation:
    """Unit-to-unit production spread (standard deviations of normal laws).

    See :func:`calib.sim.variation.unit_from_serial` for how they are drawn.

    Parameters
    ----------
    sensitivity_db : float
        Std dev of each driver's sensitivity, dB.
    fc_pct, q_pct : float
        Std dev of fc and Q, percent of nominal (< 20 so values stay positive).
    position_mm : float
        Std dev of each coordinate of each driver position, millimetres.
    """

    sensitivity_db: float = 1.0
    fc_pct: float = 5.0
    q_pct: float = 5.0
    position_mm: float = 0.5

    def __post_init__(self) -> None:
        for what in ("sensitivity_db", "position_mm"):
            v = float(getattr(self, what))
            if not (math.isfinite(v) and v >= 0):
                raise ProcedureError(f"variation {what} must be >= 0, got {v!r}")
        for what in ("fc_pct", "q_pct"):
            v = float(getattr(self, what))
            if not (math.isfinite(v) and 0 <= v < 20):
                raise ProcedureError(f"variation {what} must be in [0, 20) percent, got {v!r}")


@dataclass(frozen=True)
class NoiseModel:
    """Capture noise.

    Parameters
    ----------
    background_spl_db : float or None
        Overall (unweighted) level of white, Gaussian, mutually uncorrelated
        acoustic noise at every microphone and ear, dB re 20 uPa. None: none.
    self_noise_dbfs : float or None
        RMS of white Gaussian electrical noise on every input (loopback
        included), dB relative to an RMS of 1.0 full scale. None: none.
    input_fs_per_pa : float
        Digital full scale per pascal at microphones and ears (1/20 makes
        about 117 dB SPL peak clip).
    """

    background_spl_db: float | None = 30.0
    self_noise_dbfs: float | None = -110.0
    input_fs_per_pa: float = 1.0 / 20.0

    def __post_init__(self) -> None:
        _positive(float(self.input_fs_per_pa), "noise input_fs_per_pa")


@dataclass(frozen=True)
class LatencyModel:
    """Interface latency and clock.

    Parameters
    ----------
    min_samples, max_samples : int
        Bounds (inclusive) of the uniform random integer latency drawn on
        every playrec call.
    clock_drift_ppm : float
        Input clock rate minus output clock rate, in ppm of the nominal rate;
        positive: the input clock runs fast. 0 disables resampling.
    """

    min_samples: int = 64
    max_samples: int = 512
    clock_drift_ppm: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= int(self.min_samples) <= int(self.max_samples)):
            raise ProcedureError(
                f"latency needs 0 <= min_samples <= max_samples, got {self.min_samples!r}, {self.max_samples!r}"
            )
        if not (math.isfinite(self.clock_drift_ppm) and abs(self.clock_drift_ppm) < 1000):
            raise ProcedureError(f"clock_drift_ppm must be within +-1000, got {self.clock_drift_ppm!r}")


@dataclass(frozen=True)
class RoomModel:
    """A shoebox room for the image-source method (Allen & Berkley 1979).

    Parameters
    ----------
    dimensions_m : tuple of float
        Room size along x, y, z; the room spans ``[0, L]`` on each axis.
    device_position_m : tuple of float
        Where the device origin (turntable centre) sits, room coordinates.
        The lab frame (microphones, dummy head) is the room frame shifted by
        this, axes parallel.
    reflection_coefficient : float
        Pressure reflection coefficient of every wall, in [0, 1).
    max_order : int
        Highest reflection order kept (total number of wall hits).
    """

    dimensions_m: tuple[float, float, float]
    device_position_m: tuple[float, float, float]
    reflection_coefficient: float = 0.5
    max_order: int = 2

    def __post_init__(self) -> None:
        dims = _vec3(self.dimensions_m, "room dimensions_m")
        if min(dims) <= 0:
            raise ProcedureError(f"room dimensions_m must be positive, got {self.dimensions_m!r}")
        pos = _vec3(self.device_position_m, "room device_position_m")
        if any(not (0 < p < d) for p, d in zip(pos, dims, strict=True)):
            raise ProcedureError(f"room device_position_m {self.device_position_m!r} is not inside the room {dims!r}")
        if not (0 <= self.reflection_coefficient < 1):
            raise ProcedureError(f"room reflection_coefficient must be in [0, 1), got {self.reflection_coefficient!r}")
        if not (0 <= int(self.max_order) <= 20):
            raise ProcedureError(f"room max_order must be in 0..20, got {self.max_order!r}")
        object.__setattr__(self, "dimensions_m", dims)
        object.__setattr__(self, "device_position_m", pos)


@dataclass(frozen=True)
class Faults:
    """Faults the simulated rig injects (tests of the measurement engine).

    Parameters
    ----------
    dead_drivers, reversed_drivers : tuple of str
        Driver names that radiate nothing / radiate with inverted polarity.
    dropout_calls : tuple of int
        0-based playrec call indices whose capture loses a block: every input
        is zero over ``dropout_samples`` consecutive samples.
    dropout_samples : int
        Length of such a lost block.
    clip_gain_db : float
        Extra input gain on the acoustic inputs (mics, ears), e.g. 40 dB, so
        captures clip until the output level is backed off.
    stall_at_deg : float or None
        The turntable sticks at this angle and never moves past it.
    """

    dead_drivers: tuple[str, ...] = ()
    reversed_drivers: tuple[str, ...] = ()
    dropout_calls: tuple[int, ...] = ()
    dropout_samples: int = 1024
    clip_gain_db: float = 0.0
    stall_at_deg: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dead_drivers", tuple(self.dead_drivers))
        object.__setattr__(self, "reversed_drivers", tuple(self.reversed_drivers))
        object.__setattr__(self, "dropout_calls", tuple(int(c) for c in self.dropout_calls))
        if int(self.dropout_samples) < 1:
            raise ProcedureError(f"faults dropout_samples must be >= 1, got {self.dropout_samples!r}")
        if not math.isfinite(self.clip_gain_db):
            raise ProcedureError(f"faults clip_gain_db must be finite, got {self.clip_gain_db!r}")


NO_FAULTS = Faults()
"""A healthy rig."""

__all__ = [
    "DeviceModel",
    "DriverModel",
    "Faults",
    "LatencyModel",
    "NO_FAULTS",
    "NoiseModel",
    "RoomModel",
    "UnitVariation",
    "driver_names",
]
