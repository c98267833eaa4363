"""Typed procedure: one TOML file per product (and station).

The models mirror the TOML sections one to one; pydantic validates types,
ranges and unknown keys, and :mod:`calib.procedure.consistency` checks what spans
sections (channel maps against drivers, bands against Nyquist). Numbers are
strict: TOML is typed, so ``"fast"`` for a duration is an error, not a parse;
and finite: TOML's ``nan`` and ``inf`` are refused everywhere (a limit of
"≥ nan" would fail every unit, "≥ -inf" pass every one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, PrivateAttr, Strict, field_validator, model_validator

from calib.errors import ProcedureError

Num = Annotated[float, Strict(), AllowInfNan(False)]
Int = Annotated[int, Strict()]
Str = Annotated[str, Strict(), Field(min_length=1)]
Channel = Annotated[int, Strict(), Field(ge=1, le=256)]
Vec3 = tuple[Num, Num, Num]
#: ``[azimuth, elevation]`` of a driver axis, degrees.
AxisDeg = tuple[
    Annotated[float, Strict(), AllowInfNan(False), Field(ge=-360, le=360)],
    Annotated[float, Strict(), AllowInfNan(False), Field(ge=-90, le=90)],
]
Band = tuple[
    Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)],
    Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)],
]
Angle = Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=180)]
Sector = tuple[Angle, Angle]  # |azimuth| from, to (degrees), both sides of the device

SUPPORTED_SAMPLE_RATES = (44100, 48000, 88200, 96000)


def _ordered_sector(value: tuple[float, float] | None) -> tuple[float, float] | None:
    """Check that a sector ``[from, to]`` has ``from < to``."""
    if value is not None and not value[0] < value[1]:
        raise ValueError(f"expected [from, to] with from < to (degrees), got {list(value)}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductSection(_Section):
    """``[product]``: what is measured."""

    name: Str
    id: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""


class AudioSection(_Section):
    """``[audio]``: sample rate and (for the PortAudio rig) the device."""

    sample_rate: Int
    device: str | None = None

    @field_validator("sample_rate")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value not in SUPPORTED_SAMPLE_RATES:
            rates = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
            raise ValueError(f"expected one of {rates} Hz, got {value}")
        return value


class Driver(_Section):
    """``[[drivers]]``: one driver of the device, in output order, with the product's real geometry.

    ``position_m`` is the acoustic centre in the device frame (AES69: x = the
    device front, y left, z up, metres, origin on the turntable axis);
    ``axis_deg`` is the on-axis direction ``[azimuth, elevation]`` in degrees
    (azimuth counter-clockwise from +x seen from above, elevation up from the
    horizontal plane). The SOFA export writes them as emitter positions and
    the virtual lab builds its drivers there.
    """

    name: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    description: str = ""
    position_m: Vec3
    axis_deg: AxisDeg = (0.0, 0.0)
    polarity: Literal[1, -1] = 1  # expected acoustic polarity (checked from the characterize IRs)

    def axis_vector(self) -> tuple[float, float, float]:
        """Return unit on-axis vector in the device frame, from ``axis_deg``."""
        az, el = np.deg2rad(self.axis_deg)
        return (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el)))


class Mic(_Section):
    """``[[mics]]``: one microphone on the arc."""

    name: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    elevation_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=-90, le=90)] = 0.0


class Loopback(_Section):
    """An output channel wired straight to an input channel."""

    output: Channel
    input: Channel


class Ears(_Section):
    """Input channels of the dummy head's ear microphones."""

    left: Channel
    right: Channel


class ChannelsSection(_Section):
    """``[channels]``: 1-based interface channels (a station file may override)."""

    outputs: dict[str, Channel]
    mics: dict[str, Channel]
    ears: Ears
    loopback: Loopback | None = None
    allow_no_loopback: bool = False


class ArcSection(_Section):
    """``[arc]``: the microphone arc around the turntable axis."""

    distance_m: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0.1, le=20)]


class TurntableSection(_Section):
    """``[turntable]``: the azimuth grid (microphone azimuth relative to the device front).

    Either an explicit list ``azimuths_deg`` or a full circle at ``step_deg``.
    The engine rotates the device by minus the azimuth so that the arc
    microphone ends up at that azimuth in the device frame.
    """

    azimuths_deg: list[Annotated[float, Strict(), AllowInfNan(False), Field(ge=-180, lt=180)]] | None = None
    # >= 0.01: a grid that fits in memory
    step_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.01, le=180)] | None = None
    speed_deg_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)] = 30.0
    settle_s: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.5
    timeout_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)] = 60.0

    @model_validator(mode="after")
    def _one_grid(self) -> TurntableSection:
        if (self.azimuths_deg is None) == (self.step_deg is None):
            raise ValueError("expected exactly one of azimuths_deg (a list) or step_deg (a number)")
        if self.azimuths_deg is not None and len(self.azimuths_deg) == 0:
            raise ValueError("azimuths_deg: expected at least one azimuth, got an empty list")
        if self.azimuths_deg is not None and len(set(self.azimuths_deg)) != len(self.azimuths_deg):
            twice = sorted({a for a in self.azimuths_deg if self.azimuths_deg.count(a) > 1})
            listed = ", ".join(f"{a:g}" for a in twice)
            raise ValueError(f"azimuths_deg: expected each azimuth once, got {listed} twice")
        return self

    def grid_deg(self) -> np.ndarray:
        """Azimuths in degrees within [-180, 180), in measurement order (an explicit list is validated, not wrapped)."""
        if self.azimuths_deg is not None:
            values = np.asarray(self.azimuths_deg, dtype=float)
        else:
            assert self.step_deg is not None  # _one_grid: exactly one of azimuths_deg and step_deg
            values = np.arange(0.0, 360.0 - 1e-9, float(self.step_deg))
        return (values + 180.0) % 360.0 - 180.0


class Position(_Section):
    """``[[positions]]``: a dummy-head placement in the device frame."""

    name: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_.+-]+$")]
    xyz_m: Vec3
    yaw_deg: Num = 180.0
    design: bool = True
    verify: bool = True
    characterize: bool = True  # false: only the verification measures it (a production holdout)


class SweepSection(_Section):
    """``[sweep]``: excitation and capture quality limits."""

    band_hz: Band = (50.0, 16000.0)
    duration_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=60)]
    level_dbfs: Annotated[float, Strict(), AllowInfNan(False), Field(le=0)] = -12.0
    fade_in_s: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.02
    fade_out_s: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.01
    ir_length: Annotated[int, Strict(), Field(ge=64, le=262144)] = 4096
    schedule: Literal["sequential", "mesm"] = "mesm"
    # MESM offsets: "all" keeps every harmonic IR clear of every other driver's IRs (THD per
    # step); "linear" keeps only the linear IRs clear (shorter captures; THD then needs thd_sweep_s).
    mesm_clear: Literal["all", "linear"] = "all"
    # A dedicated short sweep per driver, at the stage's on-axis step, for THD (None: THD from the steps).
    thd_sweep_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=60)] | None = None
    n_harmonics: Annotated[int, Strict(), Field(ge=1, le=10)] = 5
    min_snr_db: Num = 20.0
    retries: Annotated[int, Strict(), Field(ge=0, le=10)] = 2
    backoff_db: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)] = 6.0


class FitSection(_Section):
    """``[fit]``: filter design settings."""

    taps: Annotated[int, Strict(), Field(ge=64, le=65536)] = 2048
    modeling_delay_ms: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 8.0
    effort_cap_db: Num = 15.0
    ctc_band_hz: Band
    ctc_margin_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 2.0
    virtualization: Literal["delay", "stereo30"] = "delay"
    beam_band_hz: Band | None = None
    beam_wng_min_db: Num = -10.0
    # Design sector (|azimuth| in [lo, hi], both sides); default: the target's
    # sector (or +-10 deg around its point null). Wider than the checked sector
    # = robustness to a unit turned on its shelf.
    beam_null_sector_deg: Sector | None = None
    # design lobe >= target + margin
    beam_main_lobe_margin_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.5
    # elevated ring's share of the sector energy
    beam_elevation_weight: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.0

    _sector_ordered = field_validator("beam_null_sector_deg")(_ordered_sector)


class CancellationTarget(_Section):
    """``[targets.cancellation]``: minimum cancellation gain curve at design positions."""

    curve_hz_db: list[tuple[Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)], Num]] = Field(min_length=1)
    tolerance_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 1.0
    holdout_median_min_db: Num | None = None

    @field_validator("curve_hz_db")
    @classmethod
    def _ascending(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        freqs = [f for f, _ in value]
        if any(b <= a for a, b in zip(freqs, freqs[1:], strict=False)):
            raise ValueError(f"expected frequencies in ascending order, got {freqs}")
        return value

    def band_hz(self) -> tuple[float, float]:
        """Lowest and highest frequency of the curve."""
        return self.curve_hz_db[0][0], self.curve_hz_db[-1][0]

    def min_db(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Return the curve at ``freqs_hz`` (linear in log-frequency); NaN outside its band."""
        f = np.asarray(freqs_hz, dtype=float)
        fs_, db = np.array(self.curve_hz_db).T
        with np.errstate(divide="ignore"):
            out = np.interp(np.log(np.maximum(f, 1e-12)), np.log(fs_), db)
        return np.where((f >= fs_[0]) & (f <= fs_[-1]), out, np.nan)


class BeamTarget(_Section):
    """``[targets.beam]``: the centre beam.

    Checked per 1/3-octave band of ``band_hz``: the point nulls at
    ``+-null_deg``, the worst rejection over ``null_sector_deg`` (each side),
    the main lobe, and optionally the directivity index and the designed
    white-noise gain.
    """

    band_hz: Band
    null_deg: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=180)] = 90.0
    null_depth_min_db: Num = 20.0
    null_sector_deg: Sector | None = None
    sector_rejection_min_db: Num = 20.0
    main_lobe_deg: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=180)] = 45.0
    main_lobe_min_db: Num = -6.0
    di_min_db: Num | None = None
    wng_min_db: Num | None = None
    tolerance_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 1.0

    _sector_ordered = field_validator("null_sector_deg")(_ordered_sector)

    def design_sector_deg(self, fit: FitSection) -> tuple[float, float]:
        """Return the sector the fit designs for.

        ``fit.beam_null_sector_deg``, else the checked one, else ``null_deg`` +-10.
        """
        if fit.beam_null_sector_deg is not None:
            return fit.beam_null_sector_deg
        if self.null_sector_deg is not None:
            return self.null_sector_deg
        return max(self.null_deg - 10.0, self.main_lobe_deg + 1.0), min(self.null_deg + 10.0, 180.0)


class EffortTarget(_Section):
    """``[targets.effort]``: the largest filter gain allowed (dB re one driver at unity)."""

    max_db: Num


class TargetsSection(_Section):
    """``[targets]``: what verification checks."""

    cancellation: CancellationTarget
    beam: BeamTarget | None = None
    effort: EffortTarget | None = None


#: Half-extents [m] and yaw [deg] of a listening area axis.
Extent = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=2)]
Step = Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=4)]


def _axis_points(centre: float, half: float, step: float) -> np.ndarray:
    """Grid points from ``centre - half`` to ``centre + half``, at most ``step`` apart (one point if ``half = 0``)."""
    n = int(np.ceil(2 * half / step - 1e-9)) + 1 if half > 0 else 1
    return np.linspace(centre - half, centre + half, n)


def _axis_cells(centre: float, half: float, size: float) -> tuple[np.ndarray, float]:
    """Centres of equal cells of at most ``size`` covering ``centre +- half``, and their half-width."""
    n = max(1, int(np.ceil(2 * half / size - 1e-9)))
    width = 2 * half / n
    return centre - half + width * (np.arange(n) + 0.5), width / 2


class ListeningArea(_Section):
    """``[listening_area]``: where a tracked listener may be, how it is measured, how it is cut into cells.

    The area spans ``centre_m +- (depth_m, lateral_m)`` (device frame x, y)
    and yaws ``yaw_deg +- yaw_range_deg``. The station measures the dummy
    head on a coarse grid (``measure_*``: the largest spacing per axis; the
    characterize stage adds these positions, named ``area_...``); the fit
    interpolates ear transfer functions in between
    (:func:`calib.solve.area.interpolate_ear_tfs`) and designs one CTC filter
    set per cell (``cell_*``: the largest cell size per axis), robust over the
    cell's corners and centre. ``calib check`` refuses cells too large for the
    target curve at its highest frequency
    (:func:`calib.solve.area.cell_phase_error_rad`). Verification measures
    ``hidden_positions`` heads inside cells and off the grid through the bank
    and judges each against ``hidden_min_db``.
    """

    centre_m: Vec3
    yaw_deg: Num = 180.0
    lateral_m: Extent
    depth_m: Extent
    yaw_range_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=90)] = 0.0
    measure_lateral_m: Step
    measure_depth_m: Step
    measure_yaw_deg: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=180)] = 20.0
    cell_lateral_m: Step
    cell_depth_m: Step
    cell_yaw_deg: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=180)] = 10.0
    # Verification: heads measured through the bank inside cells, off the grid (calib.procedure.area.hidden_positions)
    hidden_positions: Annotated[int, Strict(), Field(ge=0, le=64)] = 6
    # ... each judged: tracked cancellation, median over the target's bands, worse input, at least this (dB)
    hidden_min_db: Num = 15.0

    def measured_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the coarse head grid: depth x ``[Nx]``, lateral y ``[Ny]``, yaw ``[Nyaw]``."""
        x0, y0, _ = self.centre_m
        return (_axis_points(x0, self.depth_m, self.measure_depth_m),
                _axis_points(y0, self.lateral_m, self.measure_lateral_m),
                _axis_points(self.yaw_deg, self.yaw_range_deg, self.measure_yaw_deg))

    def grid_positions(self) -> list[Position]:
        """Return the coarse grid as positions (neither design nor verify), x slowest, yaw fastest."""
        xs, ys, yaws = self.measured_axes()
        z = self.centre_m[2]
        return [Position(name=f"area_x{x:.3f}_y{y:+.3f}_yaw{w:+.1f}", xyz_m=(float(x), float(y), z), yaw_deg=float(w),
                         design=False, verify=False)
                for x in xs for y in ys for w in yaws]

    def cells(self) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], tuple[int, int, int]]:
        """Cell centres ``[C, 3]``, yaws ``[C]``, half-size ``(depth m, lateral m, yaw deg)`` and counts per axis."""
        x0, y0, z0 = self.centre_m
        (xs, hx), (ys, hy), (ws, hw) = (_axis_cells(x0, self.depth_m, self.cell_depth_m),
                                        _axis_cells(y0, self.lateral_m, self.cell_lateral_m),
                                        _axis_cells(self.yaw_deg, self.yaw_range_deg, self.cell_yaw_deg))
        x, y, w = np.meshgrid(xs, ys, ws, indexing="ij")
        centres = np.stack([x.ravel(), y.ravel(), np.full(x.size, z0)], axis=-1)
        return centres, w.ravel(), (hx, hy, hw), (xs.size, ys.size, ws.size)


class SimDriver(_Section):
    """``[sim.drivers.<name>]``: nominal physics of one driver (its geometry is in ``[[drivers]]``)."""

    radius_m: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=0.3)]
    sensitivity_db_spl: Annotated[float, Strict(), AllowInfNan(False), Field(gt=40, le=140)] = 90.0
    fc_hz: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)]
    q: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=5)] = 0.707
    lowpass_hz: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)] = 20000.0
    rear_attenuation_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 12.0
    h2: Num = 0.0
    h3: Num = 0.0


class SimVariation(_Section):
    """``[sim.variation]``: unit-to-unit standard deviations."""

    sensitivity_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.5
    fc_pct: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 5.0
    q_pct: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 5.0
    position_mm: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.5


class SimNoise(_Section):
    """``[sim.noise]``: background and self noise, input gain."""

    background_spl_db: Num = 30.0
    self_noise_dbfs: Num = -110.0
    input_fs_per_pa: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)] = 0.05


class SimLatency(_Section):
    """``[sim.latency]``: a new random latency on every playrec call."""

    min_samples: Annotated[int, Strict(), Field(ge=0)] = 64
    max_samples: Annotated[int, Strict(), Field(ge=0)] = 2048
    clock_drift_ppm: Num = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> SimLatency:
        if self.max_samples < self.min_samples:
            raise ValueError(
                f"expected max_samples >= min_samples, got {self.max_samples} < {self.min_samples}"
            )
        return self


ROOM_PRESETS: dict[str, dict[str, object]] = {
    # Absorptive walls, floor and ceiling (energy absorption 0.91); a small room.
    "treated_booth": {"dimensions_m": (6.0, 5.0, 3.0), "device_position_m": (2.5, 2.5, 1.2),
                      "reflection_coefficient": 0.3, "max_order": 3},
    # Plasterboard, carpet, some furniture: the "modest room".
    "typical_lab": {"dimensions_m": (7.0, 6.0, 3.2), "device_position_m": (2.5, 3.0, 1.2),
                    "reflection_coefficient": 0.6, "max_order": 3},
    # Concrete and glass, nothing on the walls; low ceiling.
    "bare_room": {"dimensions_m": (5.5, 4.5, 2.8), "device_position_m": (2.0, 2.25, 1.2),
                  "reflection_coefficient": 0.85, "max_order": 3},
}
"""Rooms worth testing against: the device (turntable centre) at a table height of 1.2 m, the
arc microphone 2 m in front of it (+x) and the dummy head 1 m in front, all inside."""


class RoomGeometry(_Section):
    """A shoebox room around the turntable (a station's ``[room]``).

    ``device_position_m`` is the turntable centre in room coordinates (the
    lab frame is the room frame shifted there): its z is the device height.
    """

    dimensions_m: tuple[Annotated[float, Strict(), AllowInfNan(False), Field(gt=0.5, le=100)], ...] = Field(
        min_length=3, max_length=3)
    device_position_m: Vec3

    @model_validator(mode="after")
    def _inside(self) -> RoomGeometry:
        if any(not 0 < p < d for p, d in zip(self.device_position_m, self.dimensions_m, strict=True)):
            raise ValueError(
                f"device_position_m {list(self.device_position_m)} must lie inside the room {list(self.dimensions_m)}"
            )
        return self


class SimRoom(RoomGeometry):
    """``[sim.room]``: the virtual lab's shoebox room (image sources).

    ``preset = "treated_booth" | "typical_lab" | "bare_room"`` (see
    :data:`ROOM_PRESETS`) fills every field the table does not give.
    """

    preset: Literal["treated_booth", "typical_lab", "bare_room"] | None = None
    reflection_coefficient: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, lt=1)] = 0.5
    max_order: Annotated[int, Strict(), Field(ge=0, le=6)] = 2

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in ROOM_PRESETS:
            return {**ROOM_PRESETS[data["preset"]], **data}
        return data


class ProductionSection(_Section):
    """``[production]``: how the production variant is derived from this (lab) procedure.

    See :mod:`calib.procedure.production`: the azimuths the fit and the
    checks need (main lobe at ``main_lobe_step_deg``, the beam's sectors at
    the lab grid's resolution, the rest of the circle at ``rest_step_deg``),
    the head positions the fit reads (holdouts only verified), and the sweep.
    """

    main_lobe_step_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.01, le=90)] = 15.0
    rest_step_deg: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.01, le=180)] = 45.0
    duration_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=60)]
    ir_length: Annotated[int, Strict(), Field(ge=64, le=262144)]
    mesm_clear: Literal["all", "linear"] = "linear"
    thd_sweep_s: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=60)] | None = None


class GateSection(_Section):
    """``[gate]``: time gating of the IRs before fitting and judging (quasi-anechoic responses).

    ``mode = "auto"`` gates every receiver group before its first reflection,
    detected from the IRs and predicted from the room geometry where it is
    known (the earlier of the two); ``"off"`` uses the whole IRs.
    ``verify = "auto"`` re-measures through the filters in free field and the
    drivers one by one (then filtered in software) where a room is known: a
    response through long filters cannot be gated (see docs).
    """

    mode: Literal["auto", "off"] = "auto"
    threshold_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=-80, le=-6)] = -40.0
    fade_ms: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=10)] = 0.5
    mic_min_delay_ms: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=20)] = 1.0
    ear_min_delay_ms: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=20)] = 2.0
    highpass_hz: Annotated[float, Strict(), AllowInfNan(False), Field(ge=100, le=8000)] = 1000.0
    verify: Literal["auto", "filters", "drivers"] = "auto"


class SimFaults(_Section):
    """``[sim.faults]``: fault injection (tests, demos)."""

    dead_drivers: list[str] = []
    reversed_drivers: list[str] = []
    dropout_calls: list[Annotated[int, Strict(), Field(ge=0)]] = []
    clip_gain_db: Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)] = 0.0
    stall_at_deg: Num | None = None

    @classmethod
    def from_flags(cls, values: Sequence[str]) -> SimFaults:
        """``--sim-fault dead=tweeter --sim-fault reversed=woofer`` as faults.

        Raises
        ------
        ProcedureError
            A value that is not ``dead=DRIVER`` or ``reversed=DRIVER``.
        """
        kinds = {"dead": "dead_drivers", "reversed": "reversed_drivers"}
        fields: dict[str, list[str]] = {v: [] for v in kinds.values()}
        for value in values:
            kind, _, driver = value.partition("=")
            if kind not in kinds or not driver:
                raise ProcedureError(f"--sim-fault: expected dead=DRIVER or reversed=DRIVER, got {value!r}")
            fields[kinds[kind]].append(driver)
        return cls(dead_drivers=fields["dead_drivers"], reversed_drivers=fields["reversed_drivers"])

    def merged(self, extra: SimFaults) -> SimFaults:
        """Return these faults plus ``extra`` (``--sim-fault``): lists are joined, ``extra``'s set scalars win."""
        values = self.model_dump()
        for key in ("dead_drivers", "reversed_drivers", "dropout_calls"):
            values[key] = list(dict.fromkeys([*values[key], *getattr(extra, key)]))
        for key in extra.model_fields_set & {"clip_gain_db", "stall_at_deg"}:
            values[key] = getattr(extra, key)
        return SimFaults(**values)


class SimSection(_Section):
    """``[sim]``: what the virtual lab needs to fake a unit (physics, spread, noise, room, faults).

    ``speed_of_sound`` is the simulated air; the sim rig records it in every
    measurement file as a real station records the air it measured in.
    """

    speed_of_sound: Annotated[float, Strict(), AllowInfNan(False), Field(gt=300, lt=360)] = 343.0
    true_ir_length: Annotated[int, Strict(), Field(ge=256)] = 8192
    drivers: dict[str, SimDriver]
    variation: SimVariation = SimVariation()
    noise: SimNoise = SimNoise()
    latency: SimLatency = SimLatency()
    room: SimRoom | None = None
    faults: SimFaults = SimFaults()


class Procedure(_Section):
    """A whole validated procedure."""

    product: ProductSection
    audio: AudioSection
    drivers: list[Driver] = Field(min_length=1)
    mics: list[Mic] = Field(min_length=1)
    channels: ChannelsSection
    arc: ArcSection
    turntable: TurntableSection
    positions: list[Position] = Field(min_length=1)
    sweep: SweepSection
    fit: FitSection
    targets: TargetsSection
    gate: GateSection = GateSection()
    production: ProductionSection | None = None
    listening_area: ListeningArea | None = None
    sim: SimSection | None = None

    # Set by the loader: where the procedure came from and its exact text.
    _source_path: str = PrivateAttr(default="")
    _source_text: str = PrivateAttr(default="")

    @property
    def source_path(self) -> str:
        """The file this procedure was read from ("" if built in code)."""
        return self._source_path

    @property
    def source_text(self) -> str:
        """The exact TOML text, stored in every measurement file."""
        return self._source_text

    @property
    def sha256(self) -> str:
        """SHA-256 of the TOML text (provenance in measurement and calibration files)."""
        return hashlib.sha256(self._source_text.encode()).hexdigest()

    @property
    def driver_names(self) -> list[str]:
        """Driver names in output order."""
        return [d.name for d in self.drivers]

    @property
    def mic_names(self) -> list[str]:
        """Microphone names in arc order."""
        return [m.name for m in self.mics]

    def design_positions(self) -> list[Position]:
        """Positions the CTC is designed over."""
        return [p for p in self.positions if p.design]

    def verify_positions(self) -> list[Position]:
        """Positions verification re-measures."""
        return [p for p in self.positions if p.verify]

    def measured_positions(self) -> list[Position]:
        """Every head position characterize measures: ``[[positions]]``, then the listening area's grid."""
        area = [] if self.listening_area is None else self.listening_area.grid_positions()
        return [*self.positions, *area]

    def holdout_positions(self) -> list[Position]:
        """Verification positions outside the design zone."""
        return [p for p in self.positions if p.verify and not p.design]
