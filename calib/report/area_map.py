"""The listening area's map: cancellation over the area, fixed against tracked, cells drawn, hidden heads marked.

In the PDF report (:func:`area_pages`) for a calibration with a bank.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from calib.report.figures import A4_PORTRAIT_IN
from calib.stages.area_verify import HiddenHeads
from calib.stages.tracked import AreaMap
from calib.stages.unit_report import UnitReport
from calib.store.calibration import AreaBank


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of a pcolormesh around ``centres`` (one value: +-1 cm)."""
    if centres.size == 1:
        return np.array([centres[0] - 0.01, centres[0] + 0.01])
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def cell_boundaries(bank: AreaBank, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Lateral and depth boundaries (m) of the cells that hold ``yaw_deg``."""
    hx, hy, hw = bank.half_size
    here = np.abs((bank.yaw_deg - yaw_deg + 180.0) % 360.0 - 180.0) <= hw + 1e-9
    centres = bank.centres_m[here]
    xs = np.unique(np.round(np.concatenate([centres[:, 0] - hx, centres[:, 0] + hx]), 9))
    ys = np.unique(np.round(np.concatenate([centres[:, 1] - hy, centres[:, 1] + hy]), 9))
    return ys, xs


def _draw_maps(fig: Figure, axes, m: AreaMap, bank: AreaBank, target_db: float,
               hidden: HiddenHeads | None = None, title_sep: str = " ") -> None:
    """Draw fixed (``axes[0]``) and tracked (``axes[1]``) maps, the cell boundaries, the hidden heads marked."""
    vmin, vmax = target_db - 15.0, target_db + 15.0
    ys_cell, xs_cell = cell_boundaries(bank, m.yaw_deg)
    mesh = None
    for ax, values, title in (
        (axes[0], m.fixed_db, "fixed calibration"),
        (axes[1], m.tracked_db, "tracked (cell bank)"),
    ):
        mesh = ax.pcolormesh(_edges(m.y_m) * 100, _edges(m.x_m) * 100, values, cmap="RdYlGn", vmin=vmin, vmax=vmax,
                             shading="flat")
        if values.shape[0] > 1 and values.shape[1] > 1:
            ax.contour(m.y_m * 100, m.x_m * 100, values, levels=[target_db], colors="k", linewidths=1.0)
        for y in ys_cell:
            ax.axvline(y * 100, color="0.3", lw=0.4)
        if values.shape[0] > 1:
            for x in xs_cell:
                ax.axhline(x * 100, color="0.3", lw=0.4)
        if hidden is not None:  # projected onto the map's plane (their yaws may differ from the map's)
            ax.scatter(hidden.xyz_m[:, 1] * 100, hidden.xyz_m[:, 0] * 100, marker="x", color="k", s=30, lw=1.2,
                       label="hidden heads (verified)", zorder=3)
        ax.set_title(f"{title}:{title_sep}median {np.median(values):.1f} dB, "
                     f"{100 * np.mean(values >= target_db):.0f}% >= {target_db:g} dB", fontsize=9)
        ax.set_xlabel("lateral y (cm)")
    axes[0].set_ylabel("depth x (cm)")
    if hidden is not None:
        for k, (x, y) in enumerate(hidden.xyz_m[:, :2]):
            axes[1].annotate(str(k + 1), (y * 100, x * 100), textcoords="offset points", xytext=(3, 3), fontsize=7)
        axes[1].legend(fontsize=7, loc="lower right")
    assert mesh is not None  # both panels drawn above
    fig.colorbar(mesh, ax=axes, label="cancellation, median over bands (dB)")


def area_map_figure(m: AreaMap, bank: AreaBank, target_db: float, hidden: HiddenHeads | None = None) -> Figure:
    """Two panels (fixed, tracked): median band cancellation over lateral x depth, cell boundaries drawn.

    The colour scale is centred on ``target_db``; contour at the target;
    ``hidden`` heads marked with crosses.
    """
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    _draw_maps(fig, axes, m, bank, target_db, hidden)
    fig.suptitle(f"Cancellation over the listening area at yaw {m.yaw_deg:g} deg; lines: cell boundaries", fontsize=10)
    return fig


def _hidden_lines(hidden: HiddenHeads) -> list[str]:
    """One line per hidden head: position, cell, tracked (and fixed) cancellation, the verdict."""
    lines = []
    for k, name in enumerate(hidden.names):
        fixed = f"{hidden.fixed_db[k]:6.1f} dB" if hidden.fixed_db is not None else "     —   "
        mark = "PASS" if hidden.tracked_db[k] >= hidden.min_db else "FAIL"
        lines.append(f"{k + 1:>2}  {name:<36} cell {int(hidden.cells[k]):>4}   "
                     f"tracked {hidden.tracked_db[k]:6.1f} dB   fixed {fixed}   {mark}")
    return lines


def area_pages(report: UnitReport) -> list[Figure]:
    """Return the listening area page: the predicted map, fixed against tracked, and the hidden heads as verified.

    None when the calibration has no bank.
    """
    m, bank = report.area_map, report.calibration.area
    area = report.procedure.listening_area
    if m is None or bank is None or area is None:
        return []
    hidden = report.hidden
    fig = Figure(figsize=A4_PORTRAIT_IN)
    fig.text(0.06, 0.965, f"Listening area — unit {report.serial}: fixed against tracked CTC", fontsize=12,
             fontweight="bold", va="top")
    fig.text(0.06, 0.94, f"{bank.n_cells} cells; map at yaw {m.yaw_deg:g} deg predicted from the characterize "
             "grid (ear responses interpolated\nbetween the measured heads); lines: cell boundaries; crosses: the "
             "hidden heads verified.", fontsize=8, va="top")
    axes = [fig.add_axes((0.13, 0.56, 0.33, 0.32)), fig.add_axes((0.50, 0.56, 0.33, 0.32))]
    axes[1].sharey(axes[0])
    axes[1].tick_params(labelleft=False)
    _draw_maps(fig, axes, m, bank, area.hidden_min_db, hidden, title_sep="\n")
    fig.text(0.06, 0.50, f"median over the map: fixed calibration {np.median(m.fixed_db):.1f} dB, tracked "
             f"{np.median(m.tracked_db):.1f} dB (median over the target's bands, worse input)", fontsize=8, va="top")
    y = 0.47
    fig.text(0.06, y, "Hidden heads (verified: measured through the filters of their cell)", fontsize=10,
             fontweight="bold", va="top")
    y -= 0.025
    if hidden is None:
        fig.text(0.06, y, "none measured (the verification predates them, or hidden_positions = 0)", fontsize=8,
                 va="top")
        return [fig]
    fig.text(0.06, y, f"cancellation: median over the target's third-octave bands, worse input; judged >= "
             f"{hidden.min_db:g} dB (listening_area.hidden_min_db)", fontsize=7.5, va="top", color="0.3")
    y -= 0.022
    for line in _hidden_lines(hidden):
        fig.text(0.06, y, line, fontsize=7.5, va="top", family="monospace")
        y -= 0.017
    tracked = float(np.median(hidden.tracked_db))
    summary = f"median over the hidden heads: tracked {tracked:.1f} dB"
    if hidden.fixed_db is not None:
        summary += f", fixed {float(np.median(hidden.fixed_db)):.1f} dB"
    fig.text(0.06, y - 0.005, summary, fontsize=8, va="top", fontweight="bold")
    return [fig]


def area_page_count(report: UnitReport) -> int:
    """Pages :func:`area_pages` makes (without drawing them)."""
    ok = report.area_map is not None and report.calibration.area is not None
    return 1 if ok and report.procedure.listening_area is not None else 0
