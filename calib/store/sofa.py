"""Export a measurement as SOFA (AES69-2022), convention GeneralFIR-E 2.0.

Data layout
-----------
``Data.IR`` is [M, R, N, E]: M measurements, R receivers, N samples, E
emitters = the measurement file's sources (drivers for ``characterize``,
inputs L, R, C for ``verify``). ``Data.Delay`` is zero: the IR time origin
is the instant the signal leaves the output (loopback-referenced), so the
acoustic propagation delay is inside the IR. ``Data.SamplingRate`` in Hz.

Geometry (one global frame: the device frame)
---------------------------------------------
AES69 uses one right-handed global frame; calib picks the device frame
(x = the device's front, y left, z up, azimuth counter-clockwise from +x,
elevation up from the horizontal plane). The turntable rotates the device
by −az so that the microphone arc ends up at +az in the device frame; the
export writes the equivalent picture of a fixed device and a moving arc:

- Source = the device: ``SourcePosition`` [0, 0, 0] (cartesian, the
  turntable axis), ``SourceView`` +x, ``SourceUp`` +z, so
  ``EmitterPosition`` (E×C, cartesian, the source's local frame = the
  device frame) are the product's driver positions (``[[drivers]]
  position_m``); for a ``verify`` file (sources = filter inputs L, R, C,
  radiated by every driver) the mean driver position.

``group="directivity"`` (M = turntable azimuths, R = arc microphones):

- Listener = the microphone arc at the measurement azimuth:
  ``ListenerPosition`` [M, C] spherical ``(az_m, 0°, d)`` with ``d`` =
  ``[arc] distance_m``, i.e. the point of the arc in the horizontal plane;
  ``ListenerView`` [M, C] spherical ``(az_m + 180°, 0°, 1)`` (the arc faces
  the device), ``ListenerUp`` +z. The azimuth of measurement m relative to
  the device front is therefore ``ListenerPosition[m, 0]``.
- ``ReceiverPosition`` [R, C] cartesian, in the listener's local frame
  (x = ``ListenerView``, z up): a microphone at elevation ``el`` on the arc
  of radius ``d`` sits at ``(d·(1 − cos el), 0, d·sin el)``; (0, 0, 0) for
  a microphone in the horizontal plane. (``ReceiverPosition`` [R, C, M] in
  the global frame would be as valid AES69, but sofar ≤ 1.3 matches its
  shape to [R, C] and cannot write it.)

``group="binaural"`` (M = dummy-head positions, R = 2 ears, 0 left 1 right):

- Listener = the dummy head: ``ListenerPosition`` [M, C] cartesian head
  centre (device frame), ``ListenerView`` [M, C] spherical
  ``(yaw_deg, 0°, 1)``, ``ListenerUp`` +z.
- ``ReceiverPosition`` [2, C] spherical in the head's frame: the ear
  microphones of the station's ``[dummy_head]`` as the measurement file
  recorded them (``ear_azimuth_deg``, ``ear_radius_m``), else the nominal
  ears of the simulator's rigid-sphere head, ``(±100°, 0°, 0.0875 m)``.

``ListenerView``, ``ListenerUp``, ``SourceView``, ``SourceUp`` and the
``*Description`` attributes are AES69 general variables that GeneralFIR-E
does not list; readers (sofar) report them as custom entries. calib's own
provenance is kept in global attributes prefixed ``calib``, among them
``calibSpeedOfSound``: the speed of sound the measurement file recorded
(its station's air; 343 m/s for files from before it was recorded).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from calib import __version__
from calib.errors import CalibError, FileFormatError, ProcedureError
from calib.procedure.air import SPEED_OF_SOUND_SOURCE_ATTR, recorded_speed_of_sound
from calib.sim.sphere import DEFAULT_HEAD_RADIUS_M
from calib.store.measurement import GROUPS, Measurement, read_measurement

CONVENTION = "GeneralFIR-E"
#: Nominal ear azimuths of the dummy head (the simulator's rigid sphere), degrees.
EAR_AZIMUTH_DEG = 100.0
_SPHERICAL_UNITS = "degree, degree, metre"


def _sofar():
    try:
        import sofar
    except ImportError:
        raise CalibError("SOFA export needs the 'sofar' package; install it with: pip install sofar") from None
    return sofar


def _sofa_date(iso: str) -> str:
    """AES69 date ``yyyy-mm-dd HH:MM:SS`` from an ISO time stamp (UTC)."""
    try:
        when = _dt.datetime.fromisoformat(iso)
    except ValueError:
        when = _dt.datetime.now(_dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _spherical(az_deg: np.ndarray, el_deg: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    """Stack AES69 spherical coordinates (azimuth, elevation, radius) as [..., 3]; azimuth in [0, 360)."""
    az, el, rr = np.broadcast_arrays(np.mod(az_deg, 360.0), el_deg, r)
    return np.stack([az, el, rr], axis=-1).astype(np.float64)


def export_sofa(
    measurement_path: str | Path,
    out_path: str | Path,
    group: str = "directivity",
    *,
    organization: str = "",
    author_contact: str = "",
    license: str = "No license provided, ask the author for permission",  # the AES69 name
    room_type: str | None = None,
    room_description: str | None = None,
) -> Path:
    """Write one group of a measurement file as a SOFA GeneralFIR-E file.

    Parameters
    ----------
    measurement_path : str or Path
        A calib measurement file (every step of ``group`` measured).
    out_path : str or Path
        The SOFA file to create (suffix ``.sofa`` is enforced); never overwritten.
    group : {"directivity", "binaural"}
        Which IRs: arc microphones over azimuth, or dummy-head ears over positions.
    organization, author_contact, license : str
        AES69 mandatory global attributes (empty unless given).
    room_type : str, optional
        AES69 ``RoomType``; default ``"free field"`` for a simulated
        measurement without a room, else ``"reverberant"``.
    room_description : str, optional
        AES69 ``RoomDescription`` (required unless ``"free field"``); default:
        the simulated room's parameters, or "not described" for real rooms.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    FileFormatError
        If the measurement cannot be read or misses steps of ``group``.
    FileExistsError
        If the output exists.
    CalibError
        If ``sofar`` is not installed.
    """
    if group not in GROUPS:
        raise ValueError(f"group: expected one of {', '.join(GROUPS)}, got {group!r}")
    out = Path(out_path).with_suffix(".sofa")
    if out.exists():
        raise FileExistsError(17, "exists already", str(out))
    sofar = _sofar()
    meas = read_measurement(measurement_path)
    proc = _procedure(meas)

    done = meas.directivity_done if group == "directivity" else meas.binaural_done
    if not np.all(done):
        missing = np.flatnonzero(~done)
        raise FileFormatError(
            f"{meas.path}: {group}: expected every step measured for SOFA export, got {missing.size} of "
            f"{done.size} missing (first: index {missing[0]}); complete it with calib run --resume"
        )
    ir = np.asarray(meas.directivity_ir if group == "directivity" else meas.binaural_ir)  # [M, R, E, N]
    if not np.all(np.isfinite(ir)):
        raise FileFormatError(f"{meas.path}: /{group}/ir: expected finite samples, got NaN or infinity")

    sofa = sofar.Sofa(CONVENTION)
    sofa.Data_IR = np.moveaxis(ir, 2, 3)  # [M, R, E, N] -> [M, R, N, E]
    sofa.Data_SamplingRate = float(meas.sample_rate)
    sofa.Data_Delay = np.zeros((1, ir.shape[1], ir.shape[2]))
    sofa.SourcePosition = [0.0, 0.0, 0.0]
    sofa.SourcePosition_Type = "cartesian"
    sofa.SourcePosition_Units = "metre"
    _add_vector(sofa, "SourceView", [1.0, 0.0, 0.0])
    _add_vector(sofa, "SourceUp", [0.0, 0.0, 1.0])
    sofa.EmitterPosition = _emitter_positions(meas, proc)
    sofa.EmitterPosition_Type = "cartesian"
    sofa.EmitterPosition_Units = "metre"
    if group == "directivity":
        _directivity_geometry(sofa, meas, proc)
    else:
        _binaural_geometry(sofa, meas)
    _add_vector(sofa, "ListenerUp", [0.0, 0.0, 1.0])

    receivers = meas.receivers if group == "directivity" else ["left ear", "right ear"]
    ir_unit = str(meas.attrs.get(f"ir_unit_{group}", meas.attrs.get("ir_unit", "FS/FS")))
    sofa.GLOBAL_Title = f"{proc.product.name} ({proc.product.id}), unit {meas.serial}: {meas.stage} {group} IRs"
    sofa.GLOBAL_ApplicationName = "calib"
    sofa.GLOBAL_ApplicationVersion = __version__
    sofa.GLOBAL_Organization = organization
    sofa.GLOBAL_AuthorContact = author_contact
    sofa.GLOBAL_License = license
    sofa.GLOBAL_RoomType = room_type or (
        "free field" if meas.simulated and proc.sim is not None and proc.sim.room is None else "reverberant"
    )
    if sofa.GLOBAL_RoomType != "free field":  # AES69: a reverberant room must be described
        sofa.add_attribute("GLOBAL_RoomDescription", room_description or _room_description(meas, proc))
    sofa.GLOBAL_DateCreated = _sofa_date(meas.created_utc)
    sofa.GLOBAL_DateModified = _sofa_date(_dt.datetime.now(_dt.UTC).isoformat())
    sofa.GLOBAL_Origin = f"calib measurement file {meas.path.name} (rig {meas.rig}, simulated={meas.simulated})"
    sofa.GLOBAL_History = f"exported by calib {__version__} from {meas.path.name}"
    sofa.GLOBAL_Comment = (
        f"IR unit {ir_unit}; time origin = the instant the signal leaves the output (loopback-referenced), "
        "so the propagation delay is in Data.IR and Data.Delay is 0; global frame = device frame "
        "(x front, y left, z up)"
    )
    sofa.add_attribute("GLOBAL_EmitterDescription", f"{'drivers' if meas.stage == 'characterize' else 'inputs'} "
                       f"in E order: {', '.join(meas.sources)}")
    sofa.add_attribute("GLOBAL_ReceiverDescription", f"receivers in R order: {', '.join(receivers)}")
    for name, value in (
        ("calibSerial", meas.serial),
        ("calibStage", meas.stage),
        ("calibGroup", group),
        ("calibIRUnit", ir_unit),
        ("calibProcedureSHA256", meas.procedure_sha256),
        ("calibSpeedOfSound", f"{recorded_speed_of_sound(meas.attrs):.2f} m/s "
                              f"({meas.attrs.get(SPEED_OF_SOUND_SOURCE_ATTR, 'not recorded: calib default')})"),
    ):
        sofa.add_attribute(f"GLOBAL_{name}", value)

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.stem}.partial-{os.getpid()}.sofa")
    try:
        sofar.write_sofa(str(partial), sofa)
        if out.exists():  # appeared while writing: still never overwrite
            raise FileExistsError(17, "exists already", str(out))
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _procedure(meas: Measurement):
    from calib.procedure.load import parse_procedure

    try:
        return parse_procedure(meas.procedure_text, source=f"{meas.path}:/procedure")
    except ProcedureError as exc:
        raise FileFormatError(f"cannot export SOFA: the stored procedure is invalid: {exc}") from None


def _room_description(meas: Measurement, proc) -> str:
    room = proc.sim.room if proc.sim is not None else None
    if meas.simulated and room is not None:
        dims = " x ".join(f"{v:g}" for v in room.dimensions_m)
        return (
            f"simulated shoebox {dims} m, device at {list(room.device_position_m)} m, reflection coefficient "
            f"{room.reflection_coefficient:g}, image sources up to order {room.max_order}"
        )
    return "measurement room (not described by calib; see the station records)"


def _add_vector(sofa, name: str, xyz: list[float]) -> None:
    """Add an AES69 general [I, C] cartesian vector variable (a View carries the Up's coordinate type too)."""
    sofa.add_variable(name, np.asarray([xyz], float), "double", "IC")
    if name.endswith("View"):
        sofa.add_attribute(f"{name}_Type", "cartesian")
        sofa.add_attribute(f"{name}_Units", "metre")


def _emitter_positions(meas: Measurement, proc) -> np.ndarray:
    """[E, 3] emitter positions: the product's driver positions (``[[drivers]] position_m``).

    A ``verify`` file's sources are the filter inputs L, R, C, which every
    driver radiates: their emitter is the device's acoustic centre, the mean
    of the driver positions.
    """
    drivers = {d.name: d.position_m for d in proc.drivers}
    centre = np.mean(list(drivers.values()), axis=0)
    return np.array([drivers.get(name, centre) for name in meas.sources], dtype=float).reshape(-1, 3)


def _directivity_geometry(sofa, meas: Measurement, proc) -> None:
    az = np.asarray(meas.azimuth_deg, float)
    d = proc.arc.distance_m
    sofa.ListenerPosition = _spherical(az, 0.0, d)
    sofa.ListenerPosition_Type = "spherical"
    sofa.ListenerPosition_Units = _SPHERICAL_UNITS
    _add_view(sofa, _spherical(az + 180.0, 0.0, 1.0))
    elevation = {m.name: m.elevation_deg for m in proc.mics}
    el = np.deg2rad([elevation.get(name, 0.0) for name in meas.receivers])
    sofa.ReceiverPosition = np.stack([d * (1.0 - np.cos(el)), np.zeros_like(el), d * np.sin(el)], axis=-1)
    sofa.ReceiverPosition_Type = "cartesian"
    sofa.ReceiverPosition_Units = "metre"


def _binaural_geometry(sofa, meas: Measurement) -> None:
    sofa.ListenerPosition = np.array([p.xyz_m for p in meas.positions], float).reshape(-1, 3)
    sofa.ListenerPosition_Type = "cartesian"
    sofa.ListenerPosition_Units = "metre"
    _add_view(sofa, _spherical(np.array([p.yaw_deg for p in meas.positions], float), 0.0, 1.0))
    # The station's dummy head ([dummy_head], recorded in the file), else the virtual lab's sphere.
    ear_az = float(meas.attrs.get("ear_azimuth_deg", EAR_AZIMUTH_DEG))
    ear_r = float(meas.attrs.get("ear_radius_m", DEFAULT_HEAD_RADIUS_M))
    sofa.ReceiverPosition = _spherical(np.array([ear_az, -ear_az]), 0.0, ear_r)
    sofa.ReceiverPosition_Type = "spherical"
    sofa.ReceiverPosition_Units = _SPHERICAL_UNITS


def _add_view(sofa, view: np.ndarray) -> None:
    sofa.add_variable("ListenerView", view, "double", "MC")
    sofa.add_attribute("ListenerView_Type", "spherical")
    sofa.add_attribute("ListenerView_Units", _SPHERICAL_UNITS)
