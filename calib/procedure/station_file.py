"""Station files: what one lab bench is, apart from the product procedure.

A procedure describes a *product* (drivers, grid, sweep, targets); a station
file describes a *bench*: which audio interface, how it is wired, which
turntable and how the microphones are calibrated. The same procedure runs on
every bench; :func:`apply_station` returns the procedure as this bench runs
it (its channel map, its audio device).

Example (``stations/example-lab.toml`` is a complete one)::

    [station]
    name = "lab-a"

    [audio]
    device = "Fireface"          # case-insensitive substring of the device name
    sample_rate = 48000          # optional: checked against the procedure

    [channels]                   # same schema as the procedure's [channels]
    outputs = { left = 1, right = 2 }
    mics = { arc_0 = 1 }
    ears = { left = 2, right = 3 }
    loopback = { output = 8, input = 8 }

    [turntable]
    driver = "et250"             # et250 | lt360 (unverified protocol) | manual | sim
    host = "192.168.1.50"
    forward_clockwise = true     # checked at start-up by a 0.5 deg move

    [positioner]
    kind = "manual"              # manual | sim

    [dummy_head]                 # optional: ear microphones, for the SOFA receivers
    ear_radius_m = 0.075
    ear_azimuth_deg = 90.0

    [air]                        # the speed of sound (Cramer 1993) recorded in every measurement
    temperature_c = 21.5
    relative_humidity_pct = 45.0 # optional: dry air if not given
    pressure_kpa = 101.3         # optional: 101.325

    [[mics]]
    name = "arc_0"               # a procedure mic, or ears.left / ears.right
    sensitivity_dbfs_at_94db = -26.0
    calibration_file = "mics/arc_0.txt"   # REW text, relative to this file

Errors are one :class:`~calib.errors.ProcedureError` line naming the station
file: ``<file>: <field.path>: expected ..., got ...``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, PrivateAttr, Strict

from calib.errors import ProcedureError, UnverifiedProtocolWarning
from calib.procedure import air
from calib.procedure.consistency import check_consistency
from calib.procedure.load import read_toml_text, validate_toml
from calib.procedure.spec import SUPPORTED_SAMPLE_RATES, ChannelsSection, Procedure, RoomGeometry
from calib.signals.level import spl_to_pa

Str = Annotated[str, Strict(), Field(min_length=1)]
Positive = Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)]

#: Shown wherever a user meets the LT360 driver (``calib devices``, station files, opening it).
LT360_UNVERIFIED = (
    "the LT360 driver is UNVERIFIED: LinearX's RS-232 command strings were not available to calib, "
    "so the ones it sends (GOTO CW|CCW <deg>, GET POSITION, GET MOVING) are a guess; try a short move "
    "by hand first and see calib/rig/turntables/lt360.py"
)

#: The ``[turntable] driver`` values, one line each for ``calib devices`` and the docs.
TURNTABLE_DRIVERS = {
    "et250": "Outline ET250-3D over UDP (port 6668): the vendor's protocol, start-up direction check",
    "lt360": "LinearX LT360 over RS-232 - " + LT360_UNVERIFIED,
    "manual": "an operator turns the table when prompted",
    "sim": "a table that records the commanded angle (benches without one, tests)",
}
POSITIONER_KINDS = ("manual", "sim")
#: Station mic names for the dummy head's ear microphones (procedure mic names cannot contain '.').
EAR_NAMES = ("ears.left", "ears.right")
#: What a station ``[[mics]] name`` may be: a procedure mic name or one of :data:`EAR_NAMES`.
MIC_NAME_PATTERN = r"^([A-Za-z][A-Za-z0-9_]*|ears\.left|ears\.right)$"

# Turntable keys each driver accepts (besides ``driver``).
_TURNTABLE_KEYS = {
    "et250": ("host", "forward_clockwise", "port", "tolerance_deg", "timeout_s", "poll_s", "retries",
              "range_start_deg"),
    "lt360": ("serial_port", "baudrate", "tolerance_deg", "timeout_s", "poll_s", "clockwise_positive",
              "range_start_deg"),
    "manual": (),
    "sim": (),
}
_REQUIRED_KEYS = {"et250": ("host", "forward_clockwise"), "lt360": ("serial_port",)}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationInfo(_Section):
    """``[station]``: a name for records and reports."""

    name: Str = "station"
    description: str = ""


class StationAudio(_Section):
    """``[audio]``: the interface of this bench."""

    device: Str | None = None
    sample_rate: Annotated[int, Strict()] | None = None
    blocksize: Annotated[int, Strict(), Field(ge=0)] = 0
    latency: Literal["high", "low"] | Positive = "high"


class StationTurntable(_Section):
    """``[turntable]``: the table driver and its connection.

    ``et250``: ``host`` and ``forward_clockwise`` (required: whether the
    table's forward rotation is clockwise seen from above; checked at
    start-up), ``port`` (UDP, default 6668); ``lt360`` (protocol
    unverified, see :mod:`calib.rig.turntables.lt360`): ``serial_port``
    (required: a device path or pyserial URL), ``baudrate``,
    ``clockwise_positive``. Both: ``tolerance_deg``, ``timeout_s`` (per
    reply), ``poll_s``, ``range_start_deg``; ``et250`` also ``retries``.
    Unset keys take the driver's defaults.
    """

    driver: Literal["et250", "lt360", "manual", "sim"] = "manual"
    host: Str | None = None
    port: Annotated[int, Strict(), Field(ge=1, le=65535)] | None = None
    serial_port: Str | None = None
    baudrate: Annotated[int, Strict(), Field(gt=0)] | None = None
    tolerance_deg: Positive | None = None
    timeout_s: Positive | None = None
    poll_s: Positive | None = None
    retries: Annotated[int, Strict(), Field(ge=0, le=20)] | None = None
    clockwise_positive: Annotated[bool, Strict()] | None = None
    forward_clockwise: Annotated[bool, Strict()] | None = None
    range_start_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=-360, le=0)] | None = None

    def driver_options(self) -> dict[str, object]:
        """Return the keys set for this driver, as keyword arguments of its constructor."""
        return {k: getattr(self, k) for k in _TURNTABLE_KEYS[self.driver] if getattr(self, k) is not None}


class StationPositioner(_Section):
    """``[positioner]``: who places the dummy head."""

    kind: Literal["manual", "sim"] = "manual"


class StationAir(_Section):
    """``[air]``: the air of the measurement room, for the speed of sound.

    ``temperature_c`` (required), ``relative_humidity_pct`` (dry air if not
    given) and ``pressure_kpa`` (101.325 if not given) within the range of
    validity of Cramer's formula (:mod:`calib.procedure.air`).
    """

    temperature_c: Annotated[
        float, Strict(), AllowInfNan(False), Field(ge=air.TEMPERATURE_RANGE_C[0], le=air.TEMPERATURE_RANGE_C[1])
    ]
    relative_humidity_pct: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=100)] | None = None
    pressure_kpa: Annotated[
        float, Strict(), AllowInfNan(False), Field(ge=air.PRESSURE_RANGE_KPA[0], le=air.PRESSURE_RANGE_KPA[1])
    ] = air.STANDARD_PRESSURE_KPA

    @property
    def speed_of_sound_m_s(self) -> float:
        """Speed of sound in this air, m/s (Cramer 1993)."""
        return air.speed_of_sound_m_s(self.temperature_c, self.relative_humidity_pct or 0.0, self.pressure_kpa)

    def describe(self) -> str:
        """One line for the measurement file: the air and the formula."""
        humidity = "dry air" if self.relative_humidity_pct is None else f"{self.relative_humidity_pct:g} % RH"
        return f"station [air]: {self.temperature_c:g} degC, {humidity}, {self.pressure_kpa:g} kPa (Cramer 1993)"


class StationDummyHead(_Section):
    """``[dummy_head]``: where this bench's dummy head has its ear microphones.

    ``ear_radius_m``: distance of each ear microphone from the head centre;
    ``ear_azimuth_deg``: the left ear's azimuth from the head's facing
    direction (the right ear's is its negative). Recorded in every
    measurement file; the SOFA export writes the binaural receivers there.
    Without it SOFA uses the virtual lab's rigid sphere (8.75 cm, 100 deg).
    """

    ear_radius_m: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0.03, le=0.15)]
    ear_azimuth_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=45, le=135)] = 90.0

    def file_attrs(self) -> dict[str, object]:
        """Measurement-file attributes."""
        return {"ear_radius_m": self.ear_radius_m, "ear_azimuth_deg": self.ear_azimuth_deg}


class StationResults(_Section):
    """``[results]``: the results database this station records into (``calib fleet`` reads it)."""

    url: Str | None = None  # e.g. postgresql+psycopg://calib@db-host/line1; default: SQLite in measurements/


class StationMic(_Section):
    """``[[mics]]``: the calibration of one input microphone.

    Exactly one of ``sensitivity_fs_per_pa`` (RMS full scale per RMS pascal)
    or ``sensitivity_dbfs_at_94db`` (the AES17 level a 94 dB SPL calibrator
    reads); ``calib calibrate-mic`` prints either. ``calibration_file`` is a
    REW-style response file, relative to the station file.
    """

    name: Annotated[str, Strict(), Field(pattern=MIC_NAME_PATTERN)]
    sensitivity_fs_per_pa: Positive | None = None
    sensitivity_dbfs_at_94db: Annotated[float, Strict(), AllowInfNan(False), Field(le=0)] | None = None
    calibration_file: Str | None = None

    @property
    def fs_per_pa(self) -> float:
        """Sensitivity in FS/Pa: ``10^(L/20) / (sqrt(2) · p(94 dB))`` from the dBFS form (AES17)."""
        if self.sensitivity_fs_per_pa is not None:
            return float(self.sensitivity_fs_per_pa)
        assert self.sensitivity_dbfs_at_94db is not None  # checked by _problems
        return 10.0 ** (self.sensitivity_dbfs_at_94db / 20.0) / (math.sqrt(2.0) * spl_to_pa(94.0))


class Station(_Section):
    """A whole validated station file."""

    station: StationInfo = StationInfo()
    audio: StationAudio = StationAudio()
    channels: ChannelsSection | None = None
    turntable: StationTurntable = StationTurntable()
    positioner: StationPositioner = StationPositioner()
    air: StationAir | None = None
    dummy_head: StationDummyHead | None = None
    mics: list[StationMic] = []
    room: RoomGeometry | None = None  # where the bench stands: sets the IR gates before anything is measured
    results: StationResults = StationResults()

    _source_path: str = PrivateAttr(default="")
    _source_text: str = PrivateAttr(default="")

    @property
    def source_path(self) -> str:
        """The file this station was read from ("<station>" if built in code)."""
        return self._source_path or "<station>"

    @property
    def source_text(self) -> str:
        """The exact TOML text (worth storing with every measurement)."""
        return self._source_text

    def speed_of_sound(self) -> tuple[float, str]:
        """Speed of sound (m/s) of this station's air and where it comes from (the default without ``[air]``)."""
        if self.air is None:
            return air.DEFAULT_SPEED_OF_SOUND_M_S, f"default (no [air] in {self.source_path})"
        return self.air.speed_of_sound_m_s, self.air.describe()

    def calibration_path(self, mic: StationMic) -> Path | None:
        """``mic.calibration_file`` resolved against the station file's folder."""
        if mic.calibration_file is None:
            return None
        path = Path(mic.calibration_file).expanduser()
        base = Path(self._source_path).parent if self._source_path else Path.cwd()
        return path if path.is_absolute() else base / path


def load_station(path: str | Path) -> Station:
    """Read, parse and validate a station file.

    Raises
    ------
    ProcedureError
        One line ``<file>: <field.path>: expected ..., got ...``.
    """
    path = Path(path)
    return parse_station(read_toml_text(path, "station"), source=str(path))


def as_station(station: str | Path | Station | None) -> Station | None:
    """Return ``station`` loaded if it is a station file's path; a loaded station or None as it is."""
    return station if station is None or isinstance(station, Station) else load_station(station)


def parse_station(text: str, source: str = "<station>") -> Station:
    """Parse and validate station TOML ``text``; ``source`` names it in errors and anchors relative paths."""
    station = validate_toml(text, source, Station)
    station._source_path = source
    station._source_text = text
    for problem in _problems(station):
        raise ProcedureError(f"{source}: {problem}")
    if station.turntable.driver == "lt360":
        warnings.warn(
            UnverifiedProtocolWarning(f'{source}: turntable.driver: "lt360": {LT360_UNVERIFIED}'), stacklevel=2
        )
    return station


def _problems(station: Station) -> Iterator[str]:
    """Yield checks across keys of one station file (no procedure needed)."""
    rate = station.audio.sample_rate
    if rate is not None and rate not in SUPPORTED_SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
        yield f"audio.sample_rate: expected one of {rates} Hz, got {rate}"
    table = station.turntable
    allowed = _TURNTABLE_KEYS[table.driver]
    for key in StationTurntable.model_fields:
        if key != "driver" and getattr(table, key) is not None and key not in allowed:
            valid = ", ".join(("driver",) + allowed)
            yield (
                f"turntable.{key}: not a key of driver {json.dumps(table.driver)}; expected one of: {valid}"
            )
    for key in _REQUIRED_KEYS.get(table.driver, ()):
        if getattr(table, key) is None:
            yield f"turntable.{key}: required for driver {json.dumps(table.driver)}, got none"
    seen: set[str] = set()
    for i, mic in enumerate(station.mics):
        if mic.name in seen:
            yield f"mics[{i}].name: expected a unique name, got {json.dumps(mic.name)} twice"
        seen.add(mic.name)
        given = (mic.sensitivity_fs_per_pa is not None) + (mic.sensitivity_dbfs_at_94db is not None)
        if given != 1:
            yield (
                f"mics[{i}]: expected exactly one of sensitivity_fs_per_pa or sensitivity_dbfs_at_94db, "
                f"got {'both' if given else 'neither'}"
            )
        path = station.calibration_path(mic)
        if path is not None and not path.is_file():
            yield (f"mics[{i}].calibration_file: expected an existing file, "
                   f"got {json.dumps(mic.calibration_file)} ({path})")


def apply_station(proc: Procedure, station: Station) -> Procedure:
    """Return the procedure as this station runs it.

    A copy of ``proc`` with the station's ``[channels]`` (if given) and audio
    device (if given), re-checked with
    :func:`~calib.procedure.consistency.check_consistency`; provenance
    (``source_path``, ``source_text``, ``sha256``) stays the product's.

    Raises
    ------
    ProcedureError
        Naming the station file: a channel map that does not fit the
        product (unknown or missing driver/mic, a channel used twice), a
        sample rate other than the procedure's, or a ``[[mics]]`` name that
        is not one of the procedure's microphones or ears.
    """
    src = station.source_path
    rate = station.audio.sample_rate
    if rate is not None and rate != proc.audio.sample_rate:
        raise ProcedureError(
            f"{src}: audio.sample_rate: expected the procedure's {proc.audio.sample_rate} Hz "
            f"({proc.source_path or '<procedure>'}), got {rate}"
        )
    valid = proc.mic_names + list(EAR_NAMES)
    for i, mic in enumerate(station.mics):
        if mic.name not in valid:
            raise ProcedureError(
                f"{src}: mics[{i}].name: expected a microphone name (one of {', '.join(valid)}), "
                f"got {json.dumps(mic.name)}"
            )
    update: dict[str, object] = {}
    if station.channels is not None:
        update["channels"] = station.channels
    if station.audio.device is not None:
        update["audio"] = proc.audio.model_copy(update={"device": station.audio.device})
    out = proc.model_copy(update=update)
    problem = check_consistency(out)
    if problem is not None:
        raise ProcedureError(f"{src}: {problem}")
    return out


def input_channel_names(proc: Procedure) -> dict[str, int]:
    """0-based input channel of every station mic name: procedure mics, ``ears.left``, ``ears.right``."""
    ch = proc.channels
    out = {name: channel - 1 for name, channel in ch.mics.items()}
    out[EAR_NAMES[0]] = ch.ears.left - 1
    out[EAR_NAMES[1]] = ch.ears.right - 1
    return out
