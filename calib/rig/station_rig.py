"""The ``portaudio`` rig of one station: interface, turntable and positioner from a station file.

:func:`open_portaudio_rig` applies the station to the procedure (its channel
map and device, see :func:`calib.procedure.station_file.apply_station`) and opens

- a :class:`~calib.rig.portaudio.PortAudioInterface` with output channels
  ``1..n_out`` and input channels ``1..n_in`` (the highest channel the
  channel map uses), so playrec row ``i`` is interface channel ``i + 1``,
  exactly as the measurement plan numbers them;
- the turntable driver of ``[turntable]`` (ET250 over UDP, LT360 over a
  serial port, an operator-driven table, or ``sim``: a table that only
  records the commanded angle, for benches without one such as a JACK test
  set-up);
- the positioner of ``[positioner]`` (the operator, or ``sim``).
"""

from __future__ import annotations

from calib.procedure.layout import channel_counts
from calib.procedure.spec import Procedure
from calib.procedure.station_file import Station, apply_station
from calib.rig.base import Positioner, Rig, Turntable


def open_turntable(station: Station, proc: Procedure) -> Turntable:
    """Return the station's turntable, configured from ``[turntable]``.

    Raises
    ------
    TurntableError, DeviceNotFoundError
        If the UDP socket or serial port cannot be opened.
    """
    table = station.turntable
    options = table.driver_options()
    if table.driver == "et250":
        from calib.rig.turntables import Et250Turntable

        host = options.pop("host")
        return Et250Turntable(str(host), **options)  # type: ignore[arg-type]  # keys and types checked per driver
    if table.driver == "lt360":
        from calib.rig.turntables import Lt360Turntable

        port = options.pop("serial_port")
        return Lt360Turntable(str(port), **options)  # type: ignore[arg-type]  # keys and types checked per driver
    if table.driver == "sim":
        from calib.rig.sim import LabState, SimTurntable

        return SimTurntable(LabState(), speed_deg_s=proc.turntable.speed_deg_s)
    from calib.rig.turntables import ManualTurntable

    return ManualTurntable()


def open_positioner(station: Station) -> Positioner:
    """Return the station's dummy-head positioner (``[positioner] kind``)."""
    if station.positioner.kind == "sim":
        from calib.rig.sim import LabState, SimPositioner

        return SimPositioner(LabState())
    from calib.rig.turntables import ManualPositioner

    return ManualPositioner()


def open_portaudio_rig(proc: Procedure, station: Station | None = None) -> Rig:
    """Open the ``portaudio`` rig for ``proc`` on ``station``.

    Parameters
    ----------
    proc : Procedure
        The product procedure (its ``[channels]`` and ``[audio] device`` are
        used where the station gives none).
    station : Station, optional
        From :func:`calib.procedure.station_file.load_station`; None: the
        procedure's channel map, the default audio device, and an operator
        for turntable and dummy head.

    Returns
    -------
    Rig
        ``name="portaudio"``, ``simulated=False``; ``info`` holds the device,
        host API, channel lists and the station name.

    Raises
    ------
    ProcedureError
        If the station does not fit the procedure.
    RigError
        If PortAudio, the device, a channel, the sample rate, the turntable
        or its port is unavailable. Whatever was opened is closed again.
    """
    from calib.rig.portaudio import make_portaudio_rig

    station = station if station is not None else Station()
    proc = apply_station(proc, station)
    n_out, n_in = channel_counts(proc)
    turntable = open_turntable(station, proc)
    positioner = open_positioner(station)
    try:
        rig = make_portaudio_rig(
            proc.audio.device,
            proc.audio.sample_rate,
            list(range(1, n_out + 1)),
            list(range(1, n_in + 1)),
            turntable,
            positioner,
            blocksize=station.audio.blocksize,
            latency=station.audio.latency,
        )
    except BaseException:
        turntable.close()
        positioner.close()
        raise
    rig.info.update({"station": station.station.name, "turntable": station.turntable.driver,
                     "positioner": station.positioner.kind})
    rig.speed_of_sound_m_s, rig.air = station.speed_of_sound()
    if station.dummy_head is not None:
        rig.attrs.update(station.dummy_head.file_attrs())
    return rig
