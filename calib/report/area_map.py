"""The listening area's map: cancellation over the area, fixed against tracked, cells drawn."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from calib.stages.tracked import AreaMap
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


def area_map_figure(m: AreaMap, bank: AreaBank, target_db: float) -> Figure:
    """Two panels (fixed, tracked): median band cancellation over lateral x depth, cell boundaries drawn.

    The colour scale is centred on ``target_db``; contour at the target.
    """
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
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
        ax.set_title(f"{title}: median {np.median(values):.1f} dB, "
                     f"{100 * np.mean(values >= target_db):.0f}% >= {target_db:g} dB", fontsize=9)
        ax.set_xlabel("lateral y (cm)")
    axes[0].set_ylabel("depth x (cm)")
    assert mesh is not None  # both panels drawn above
    fig.colorbar(mesh, ax=axes, label="cancellation, median over bands (dB)")
    fig.suptitle(f"Cancellation over the listening area at yaw {m.yaw_deg:g} deg; lines: cell boundaries", fontsize=10)
    return fig
