"""The listening area of a procedure: the cell-size check from the physics, and its station time.

See :class:`calib.procedure.spec.ListeningArea` for the section and
:mod:`calib.solve.area` for the phase-error criterion.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from calib.procedure.spec import Position, Procedure
from calib.solve.area import allowed_phase_error_rad, cell_phase_error_rad

#: Field of each cell axis, in the order of ``ListeningArea.cells()``' half-size (depth, lateral, yaw).
CELL_FIELDS = ("cell_depth_m", "cell_lateral_m", "cell_yaw_deg")


def _phase_error(proc: Procedure, scale: tuple[float, float, float], speed_of_sound: float) -> float:
    """Worst phase error at the target's top frequency over all cells, each cell axis scaled by ``scale``.

    A cell is designed over its centre and corners, so no point of it is
    farther than half its half-size from a design position: the offset
    evaluated is ``half_size / 2`` (see :mod:`calib.solve.area`).
    """
    area = proc.listening_area
    assert area is not None
    f_max = proc.targets.cancellation.band_hz()[1]
    drivers = np.array([d.position_m for d in proc.drivers])
    centres, yaws, half, _ = area.cells()
    hx, hy, hyaw = (0.5 * h * k for h, k in zip(half, scale, strict=True))
    offset = (hx, hy, hyaw)
    return max(
        cell_phase_error_rad(f_max, drivers, c, w, offset, speed_of_sound) for c, w in zip(centres, yaws, strict=True)
    )


def cell_phase_error_of(proc: Procedure, speed_of_sound: float = 343.0) -> float:
    """Worst inter-driver phase error (rad) of the procedure's cells at the target's highest frequency."""
    return _phase_error(proc, (1.0, 1.0, 1.0), speed_of_sound)


def _largest_scale(proc: Procedure, axes: tuple[int, ...], allowed: float, c: float) -> float:
    """Largest factor (bisection, 1 % resolution) on the cell sizes of ``axes`` that meets ``allowed``."""
    lo, hi = 0.0, 1.0
    while hi - lo > 0.01:
        mid = 0.5 * (lo + hi)
        scale = (mid if 0 in axes else 1.0, mid if 1 in axes else 1.0, mid if 2 in axes else 1.0)
        lo, hi = (mid, hi) if _phase_error(proc, scale, c) <= allowed else (lo, mid)
    return lo


#: A hidden head keeps this fraction of its cell's half size from the cell's centre and from its edges on
#: every axis with extent (off the cell's design points, unambiguously in one cell), and from a measured grid point.
HIDDEN_MARGIN = 0.1
#: Halton candidates tried per hidden position wanted before giving up.
HIDDEN_TRIES = 50


def hidden_positions(proc: Procedure) -> list[Position]:
    """Return the verification's hidden heads: inside cells, none a measured grid point nor a cell's design point.

    Deterministic: the unscrambled Halton sequence in 3 dimensions (bases 2,
    3, 5 for depth, lateral, yaw; its first point, the area's corner,
    skipped) mapped onto the area ``centre +- extent`` per axis; a candidate
    is kept if on every axis with extent it lies between ``HIDDEN_MARGIN``
    and ``1 - HIDDEN_MARGIN`` of its cell's half size from the cell's centre
    (so it is neither a centre nor a corner the cell was designed over, nor
    on a boundary), and on some axis more than ``HIDDEN_MARGIN`` half sizes
    from every measured grid coordinate. The first
    ``listening_area.hidden_positions`` kept are returned (fewer only if the
    area has no extent at all). Named ``hidden<k>_x..._y..._yaw...``; measured
    by verification only.
    """
    area = proc.listening_area
    if area is None or area.hidden_positions == 0:
        return []
    x0, y0, z0 = area.centre_m
    centre = np.array([x0, y0, area.yaw_deg])
    extent = np.array([area.depth_m, area.lateral_m, area.yaw_range_deg])
    axes = np.flatnonzero(extent > 0)
    if axes.size == 0:
        return []
    centres, yaws, half, _ = area.cells()
    half_size = np.array(half)
    cell_points = np.column_stack([centres[:, :2], yaws])  # [C, 3]: depth, lateral, yaw
    grid = area.measured_axes()
    from scipy.stats import qmc  # on first use: scipy.stats is slow to import, and few commands get here

    sequence = qmc.Halton(d=3, scramble=False)
    sequence.fast_forward(1)
    candidates = centre + (2.0 * sequence.random(area.hidden_positions * HIDDEN_TRIES) - 1.0) * extent
    kept: list[Position] = []
    for point in candidates:
        offset = np.abs(point - cell_points)[:, axes] / half_size[axes]  # [C, A]: in half sizes
        cell = int(np.argmin(np.max(offset, axis=1)))
        inside = bool(np.all((offset[cell] >= HIDDEN_MARGIN) & (offset[cell] <= 1.0 - HIDDEN_MARGIN)))
        off_grid = any(np.min(np.abs(grid[a] - point[a])) > HIDDEN_MARGIN * half_size[a] for a in axes)
        if inside and off_grid:
            x, y, w = (float(v) for v in point)
            kept.append(Position(name=f"hidden{len(kept) + 1}_x{x:.3f}_y{y:+.3f}_yaw{w:+.1f}", xyz_m=(x, y, z0),
                                 yaw_deg=w, design=False, verify=True, characterize=False))
            if len(kept) == area.hidden_positions:
                break
    return kept


def area_problems(proc: Procedure) -> Iterator[str]:
    """Cells too large for the target at its highest frequency; grid positions too close to the device."""
    area = proc.listening_area
    if area is None:
        return
    for pos in area.grid_positions():
        distance = float(np.linalg.norm(pos.xyz_m))
        if distance < 0.3:
            yield (f"listening_area: expected every head at least 0.3 m from the device, the grid reaches "
                   f"{distance:.3f} m at {list(pos.xyz_m)}")
            return
    f_max = proc.targets.cancellation.band_hz()[1]
    target_db = float(proc.targets.cancellation.curve_hz_db[-1][1])
    if target_db <= 0:
        return
    c = proc.sim.speed_of_sound if proc.sim is not None else 343.0
    allowed = allowed_phase_error_rad(target_db)
    total = cell_phase_error_of(proc, c)
    if total <= allowed:
        return
    alone = [_phase_error(proc, (float(k == 0), float(k == 1), float(k == 2)), c) for k in range(3)]
    k = int(np.argmax(alone))
    axes: tuple[int, ...] = (k,)
    factor = _largest_scale(proc, axes, allowed, c)
    if factor == 0.0:  # that axis alone cannot do it: shrink all of them
        axes = (0, 1, 2)
        factor = _largest_scale(proc, axes, allowed, c)
    _, _, half, _ = area.cells()
    wanted = ", ".join(f"{CELL_FIELDS[i]} <= {2 * half[i] * factor:.3g}" for i in axes)
    yield (f"listening_area.{CELL_FIELDS[k]}: cells too large for {target_db:g} dB at {f_max:g} Hz: the worst "
           f"inter-driver phase error over a cell is {total:.3f} rad, at most {allowed:.3f} rad; expected {wanted}, "
           f"got {getattr(area, CELL_FIELDS[k]):g}")


def area_lines(proc: Procedure, step_s: float, verify_step_s: float = 0.0) -> list[str]:
    """``calib check`` lines: the area, its cells, the station time of its grid against every cell, the hidden heads.

    ``step_s`` is the capture time of one head position (all drivers, the procedure's schedule),
    ``verify_step_s`` that of one verification head (inputs L, R, C through the filters).
    Measuring every cell directly means its corners (shared between neighbours) and its centre.
    """
    area = proc.listening_area
    if area is None:
        return []
    xs, ys, ws = area.measured_axes()
    _, _, half, counts = area.cells()
    n_grid = xs.size * ys.size * ws.size
    n_cells = int(np.prod(counts))
    # Corners on the (n + 1)-point lattice of every axis that has an extent, plus the centres.
    corners = int(np.prod([n + 1 if h > 0 else 1 for n, h in zip(counts, half, strict=True)]))
    n_direct = corners + n_cells
    total = cell_phase_error_of(proc, proc.sim.speed_of_sound if proc.sim is not None else 343.0)
    n_hidden = len(hidden_positions(proc))
    allowed = allowed_phase_error_rad(max(float(proc.targets.cancellation.curve_hz_db[-1][1]), 1e-6))
    return [
        (f"  listening area  {list(area.centre_m)} m +-{area.depth_m:g} m depth, +-{area.lateral_m:g} m lateral, "
         f"yaw {area.yaw_deg:g} +-{area.yaw_range_deg:g} deg"),
        (f"  area cells      {n_cells} ({counts[0]} depth x {counts[1]} lateral x {counts[2]} yaw) of "
         f"{2 * half[0]:.3g} m x {2 * half[1]:.3g} m x {2 * half[2]:.3g} deg; worst phase error "
         f"{total:.3f} rad (limit {allowed:.3f})"),
        (f"  area station    {n_grid} head positions ({xs.size} x {ys.size} x {ws.size}), "
         f"{n_grid * step_s / 60:.1f} min of {proc.sweep.schedule} capture; every cell measured: {n_direct} "
         f"positions, {n_direct * step_s / 60:.1f} min"),
        (f"  area verify     {n_hidden} hidden heads through their cells, {n_hidden * verify_step_s / 60:.1f} min "
         f"(in the verify time above); each >= {area.hidden_min_db:g} dB"),
    ]
