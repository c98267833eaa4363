"""CamillaDSP export of a listening area's CTC bank: one configuration per cell, and how to switch.

CamillaDSP runs one configuration at a time, so the bank ships as one
complete export per cell (:func:`calib.render.export.export_camilladsp` of
the calibration with that cell's L/R filters; the centre path is the same in
all) plus ``cells.json``, the map from head position to configuration. A
tracker process switches cells over CamillaDSP's websocket (``camilladsp -p PORT``)::

    {"command": "SetConfigFilePath", "value": "<out>/cell_017/camilladsp.yml"}
    {"command": "Reload"}

(or ``SetConfig`` with the YAML text). CamillaDSP swaps the filters at a
chunk boundary *without* a crossfade: the output steps by the difference of
the two cells' outputs (``calib render --track`` crossfades over one block;
see :mod:`calib.render.tracked` for the step this avoids). Keep the chunk
small (the default ~21 ms) so a switch follows the head within one chunk.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from calib.render.export import export_camilladsp
from calib.store.calibration import Calibration

CELLS_JSON = "cells.json"


def cell_dir_name(cell: int) -> str:
    """Folder of one cell's configuration: ``cell_017``."""
    return f"cell_{cell:03d}"


def export_camilladsp_bank(cal: Calibration, out_dir: str | Path, *, version: int = 4) -> list[Path]:
    """Write one CamillaDSP export per cell of ``cal.area`` and ``cells.json`` to ``out_dir``.

    ``cells.json`` lists, per cell, its centre (m, device frame), yaw (deg),
    the configuration path (relative to ``out_dir``), and once the cells'
    half size; the cell of a head is the one whose centre is nearest in units
    of the half size (:func:`calib.solve.area.cell_index`).

    Returns
    -------
    list of Path
        ``cells.json`` first, then every cell's files.
    """
    if cal.area is None:
        raise ValueError("cal.area: expected a calibration with a listening area bank, got none")
    out_dir = Path(out_dir)
    index = out_dir / CELLS_JSON
    if index.exists():
        raise FileExistsError(17, "exists already", str(index))
    written: list[Path] = []
    cells = []
    for c in range(cal.area.n_cells):
        fir = np.concatenate([cal.area.fir[c], cal.fir[2:]])
        cell_cal = replace(cal, fir=fir, area=None)
        files = export_camilladsp(cell_cal, out_dir / cell_dir_name(c), version=version)
        written += files
        cells.append({"cell": c, "centre_m": [float(v) for v in cal.area.centres_m[c]],
                      "yaw_deg": float(cal.area.yaw_deg[c]),
                      "config": f"{cell_dir_name(c)}/{files[-2].name}"})
    doc = {"format": "calib-area-cells", "version": 1, "serial": cal.serial, "product_id": cal.product_id,
           "half_size": {"depth_m": cal.area.half_size[0], "lateral_m": cal.area.half_size[1],
                         "yaw_deg": cal.area.half_size[2]},
           "switch": "websocket: SetConfigFilePath <config>, then Reload (no crossfade)", "cells": cells}
    with open(index, "x") as fh:
        fh.write(json.dumps(doc, indent=2) + "\n")
    return [index, *written]
