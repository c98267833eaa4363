"""What a procedure's layout implies: channel counts, head placements, the azimuths the checks read.

The rig needs the channel counts of the map and the head placements; the
capture schedule, the verification plan and the station-time estimate need
the azimuths the checks read and whether the grid holds the spinorama's sphere.
"""

from __future__ import annotations

import numpy as np

from calib.errors import CalibError
from calib.geometry import HeadPosition
from calib.metrics.beam import sector_mask, wrap_deg
from calib.metrics.spinorama import ORBIT_DEG
from calib.procedure.spec import Position, Procedure


def head_position(p: Position) -> HeadPosition:
    """Return a procedure position as the rig's :class:`HeadPosition`."""
    return HeadPosition(p.name, (float(p.xyz_m[0]), float(p.xyz_m[1]), float(p.xyz_m[2])), float(p.yaw_deg))


def channel_counts(proc: Procedure) -> tuple[int, int]:
    """Output and input channel counts the procedure's channel map needs."""
    ch = proc.channels
    outs = list(ch.outputs.values()) + ([ch.loopback.output] if ch.loopback else [])
    ins = list(ch.mics.values()) + [ch.ears.left, ch.ears.right] + ([ch.loopback.input] if ch.loopback else [])
    return max(outs), max(ins)


def sphere_problem(proc: Procedure) -> str | None:
    """Why the procedure's grid does not hold the two orbits (``None`` if it does)."""
    el = np.array([m.elevation_deg for m in proc.mics])
    need_el = np.arange(-90.0, 91.0, 10.0)
    missing_el = [e for e in need_el if not np.any(np.abs(el - e) <= 0.5)]
    az = proc.turntable.grid_deg()
    missing_az = [a for a in ORBIT_DEG if not np.any(np.abs(wrap_deg(az - a)) <= 0.5)]
    if missing_el:
        return (f"mics: the spinorama needs arc microphones at every 10 deg from -90 to 90 deg elevation, "
                f"missing {', '.join(f'{e:g}' for e in missing_el)}")
    if missing_az:
        return (f"turntable: the spinorama needs every 10 deg of azimuth, missing "
                f"{', '.join(f'{a:g}' for a in missing_az)}")
    return None


def check_azimuths(proc: Procedure) -> np.ndarray:
    """Return the turntable azimuths the checks of :func:`calib.stages.verdict.evaluate` read, in grid order.

    Every beam metric is relative to the front (0); the null depth reads
    ``+-null_deg``, the sector rejection every grid azimuth with ``|theta|`` in
    the checked sector, the main lobe every one with ``|theta| <= main_lobe_deg``
    (:mod:`calib.metrics.beam`). The directivity index integrates the whole
    circle: judged (``di_min_db``), it needs the whole grid; so does the
    verified spinorama of a procedure that measures the sphere
    (:func:`sphere_problem`). Without a beam target only the front is
    kept (the CTC checks read the head positions).
    """
    grid = proc.turntable.grid_deg()
    az = np.abs(wrap_deg(grid))
    beam = proc.targets.beam
    needed = az < 1e-9
    if sphere_problem(proc) is None:
        return grid
    if beam is not None:
        if beam.di_min_db is not None:
            return grid
        needed |= np.abs(az - beam.null_deg) < 1e-9
        needed |= az <= beam.main_lobe_deg + 1e-9
        if beam.null_sector_deg is not None:
            needed |= sector_mask(grid, beam.null_sector_deg)
    if not np.any(az < 1e-9):
        raise CalibError(f"{proc.source_path}: turntable: expected an azimuth at 0 deg (the beam checks' reference)")
    return grid[needed]
