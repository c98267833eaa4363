"""Open a rig by name: ``sim`` (default), ``replay:<measurement.h5>``, ``portaudio``.

The procedure's channel map decides which interface channel carries which
driver, microphone, ear or loopback, for every rig alike.
"""

from __future__ import annotations

from calib.errors import RigError
from calib.procedure.spec import Procedure, SimFaults
from calib.rig.base import Rig
from calib.rig.virtual_lab import open_sim_rig

RIG_KINDS = ("sim", "replay:<measurement.h5>", "portaudio")


def open_rig(spec: str, proc: Procedure, serial: str, faults: SimFaults | None = None, station=None) -> Rig:
    """Open the rig named by ``spec`` for ``proc`` and unit ``serial``.

    Parameters
    ----------
    spec : str
        ``"sim"``, ``"replay:<file.h5>"`` or ``"portaudio"``.
    faults : SimFaults, optional
        Added to ``[sim.faults]`` (simulated rigs only).
    station : Station, optional
        Audio device, turntable and positioner of a real station (PortAudio rig).
    """
    if spec == "sim":
        return open_sim_rig(proc, serial, faults)
    if spec.startswith("replay:"):
        from calib.rig.replay import open_replay_rig

        return open_replay_rig(spec.removeprefix("replay:"), proc, serial, faults)
    if spec == "portaudio":
        from calib.rig.station_rig import open_portaudio_rig

        return open_portaudio_rig(proc, station)
    raise RigError(f"--rig: expected one of {', '.join(RIG_KINDS)}, got {spec!r}")
