"""The measure stage: characterize one unit into a new (or resumed) measurement file.

:func:`measure_unit` is what ``calib measure`` and ``calib run`` call: it
applies a station to the procedure, checks that the room the rig measures in
supports the product's target bands, picks the file (a new one, or with
``resume`` the newest incomplete one) and measures every missing step
(:func:`calib.capture.runner.run_measurement`). :func:`characterize` is the
measurement itself, for callers that hold a procedure and a path already.
"""

from __future__ import annotations

from pathlib import Path

from calib.capture.absolute import station_calibrations
from calib.capture.plan import plan_characterize
from calib.capture.runner import latest_incomplete, new_measurement_path, run_measurement
from calib.errors import CalibError
from calib.notes import note, warning
from calib.procedure.load import load_procedure
from calib.procedure.spec import Procedure, SimFaults
from calib.procedure.station_file import Station, apply_station, as_station
from calib.rig.factory import open_rig
from calib.serial import check_serial
from calib.stages.gating import annotate_reflections, check_room_supports_targets, room_for_rig


def with_station(proc: Procedure, station: str | Path | Station | None) -> tuple[Procedure, Station | None]:
    """Return the procedure as ``station`` runs it (a station file's path or a loaded one), and the station."""
    loaded = as_station(station)
    return (proc, None) if loaded is None else (apply_station(proc, loaded), loaded)


def check_measure_inputs(procedure: str | Path, rig_spec: str = "sim",
                         station: str | Path | Station | None = None) -> tuple[Procedure, Station | None]:
    """Load what a measurement depends on and check it, before anything is written.

    Returns the procedure with the station applied, and the station. Raises
    :class:`~calib.errors.CalibError` for a bad procedure or station, or a
    room the rig measures in that cannot support the product's target bands.
    """
    proc, station_obj = with_station(load_procedure(procedure), station)
    kind = rig_spec.split(":", 1)[0]
    check_room_supports_targets(proc, room_for_rig(proc, kind, station_obj), str(procedure),
                                station_obj if kind == "portaudio" else None)
    return proc, station_obj


def characterize(proc: Procedure, serial: str, rig_spec: str, path: Path, *, resume: bool = False,
                 faults: SimFaults | None = None, station: Station | None = None,
                 progress: bool | None = None) -> Path:
    """Measure every missing step of ``proc``'s characterize plan of unit ``serial`` into ``path``.

    The file's reflections are annotated at the end (the room of the rig:
    the virtual lab's, the station's, or none in free field).
    """
    room = room_for_rig(proc, rig_spec.split(":", 1)[0], station)
    cals, attrs = station_calibrations(proc, station)
    with open_rig(rig_spec, proc, serial, faults, station=station) as rig:
        run_measurement(
            plan_characterize(proc), rig, path, serial=serial, procedure_text=proc.source_text,
            procedure_sha256=proc.sha256, resume=resume, input_cals=cals, extra_attrs=attrs, progress=progress,
            finalize=lambda p: annotate_reflections(p, proc, room),
        )
    return path


def measure_unit(
    procedure: str | Path,
    serial: str,
    rig_spec: str = "sim",
    out_dir: str | Path = "measurements",
    resume: bool = False,
    faults: SimFaults | None = None,
    station: str | Path | Station | None = None,
    progress: bool | None = None,
) -> Path:
    """Characterize one unit and return its complete measurement file.

    Parameters
    ----------
    procedure : path
        The product's procedure (TOML).
    serial : str
        The unit; names its folder ``out_dir/serial``.
    rig_spec : str
        ``"sim"``, ``"replay:<file.h5>"`` or ``"portaudio"``.
    resume : bool
        Continue the newest incomplete characterize measurement of the unit
        (an error if there is none) instead of starting a new file.
    faults : SimFaults, optional
        Simulated faults added to the procedure's ``[sim.faults]``.
    station : path or Station, optional
        The bench: channel map, audio device, turntable, microphone calibrations.
    progress : bool, optional
        Progress bars (None: on a terminal).
    """
    check_serial(serial)
    proc, station_obj = check_measure_inputs(procedure, rig_spec, station)
    if proc.channels.loopback is None:
        warning("no loopback channel: IRs keep the interface latency and response")
    existing = latest_incomplete(out_dir, serial, "characterize")
    if resume:
        if existing is None:
            raise CalibError(f"--resume: no incomplete characterize measurement of {serial} in {out_dir}/{serial}")
        path = existing
        note(f"resuming {path}")
    else:
        if existing is not None:
            note(f"{existing} is incomplete; continue it with --resume (starting a new file)")
        path = new_measurement_path(out_dir, serial, "characterize")
    return characterize(proc, serial, rig_spec, path, resume=resume, faults=faults, station=station_obj,
                        progress=progress)
