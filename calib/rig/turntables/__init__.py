"""Turntable drivers for the lab: Outline ET250-3D (UDP), LinearX LT360 (serial), manual.

Every driver implements :class:`calib.rig.base.Turntable`. The two motorised
tables share one move logic (:class:`~calib.rig.turntables.polled.PolledTurntable`):
send an absolute "go to", poll the table's moving state until it stops, read
the angle back and check it against a tolerance. What a driver adds is only
its wire protocol. The drivers a station file may name, and the LT360's
caveat, are listed with the station file's fields
(:data:`calib.procedure.station_file.TURNTABLE_DRIVERS`).
"""

from calib.errors import UnverifiedProtocolWarning
from calib.procedure.station_file import LT360_UNVERIFIED, TURNTABLE_DRIVERS
from calib.rig.turntables.et250 import Et250Turntable
from calib.rig.turntables.lt360 import Lt360Turntable
from calib.rig.turntables.manual import ManualPositioner, ManualTurntable
from calib.rig.turntables.polled import PolledTurntable, angle_error_deg, wrap_angle_deg

__all__ = [
    "Et250Turntable",
    "Lt360Turntable",
    "ManualPositioner",
    "ManualTurntable",
    "LT360_UNVERIFIED",
    "PolledTurntable",
    "TURNTABLE_DRIVERS",
    "UnverifiedProtocolWarning",
    "angle_error_deg",
    "wrap_angle_deg",
]
