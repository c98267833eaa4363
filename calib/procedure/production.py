"""The production variant of a procedure: only what the fit and the checks need.

A lab procedure with a ``[production]`` table derives a second, complete
procedure (:func:`production_text`) that a line runs like any other (``calib
measure``, ``fit``, ``verify``): it is its own file and text, so every
measurement and calibration records exactly the grid it was made on. (A
profile switched inside one file would make one text, and one SHA-256,
stand for two grids; every reader would have to know which applied.)

What is derived, and why:

- azimuths (:func:`production_azimuths`): 0 (every beam metric is relative
  to it); the main lobe ``|theta| <= main_lobe_deg`` every
  ``main_lobe_step_deg`` and its edge (the fit's flatness term and the
  main-lobe check);
  every lab-grid azimuth of the beam's design sector, its checked sector and
  its point nulls (the fit's sector energy and the sector and null checks, at
  the lab's resolution: the worst azimuth of a sector is what is judged); the
  rest of the circle every ``rest_step_deg`` (the beamformer's stray-radiation
  term). Each region (main lobe, sectors) also continues one step beyond
  each edge (the lobe: its multiples up to ``main_lobe_deg + step`` and the
  edge plus a step, 50 and 55 deg for Aurora 5; a sector: one lab step):
  the fit integrates a region with trapezoid weights
  (:func:`calib.metrics.beam.arc_weights`), and an edge azimuth whose outer
  neighbour is far away gets half that gap as its weight (75 deg weighted
  3.5 times 80 deg next to a 30 deg gap moved the point nulls by 5 dB; the
  lobe without 50 deg moved the sectors by 1.3 dB). Every azimuth is on the lab grid (an archived lab unit can be
  replayed on it). The verification then measures the subset the checks read
  (:func:`calib.procedure.layout.check_azimuths`).
- head positions: the fit reads the design positions only; the holdouts are
  verified, not characterized (``characterize = false``).
- sweep: ``duration_s``, ``ir_length`` (the linear IR the fit needs: the
  IRs' decay, not the lab's margin), ``mesm_clear`` and ``thd_sweep_s``.

``calib grid-study`` (:mod:`calib.stages.grid_study`) measures how much the
calibration and the verdict change against the lab grid.
"""

from __future__ import annotations

import numpy as np
import tomlkit

from calib.errors import ProcedureError
from calib.metrics.beam import wrap_deg
from calib.procedure.spec import Procedure

HEADER = "# Production variant of {name}, derived by calib from its [production] table (do not edit: derive again).\n"


def _section(proc: Procedure):
    if proc.production is None:
        raise ProcedureError(
            f"{proc.source_path}: production: expected a [production] table to derive the variant from"
        )
    return proc.production


def production_azimuths(proc: Procedure) -> np.ndarray:
    """Return the production grid (module docstring) in the engine's order.

    0 up to the largest, then -small to -largest.
    """
    prod = _section(proc)
    grid = proc.turntable.grid_deg()  # [-180, 180)
    lab = np.abs(wrap_deg(grid))
    keep = lab < 1e-9
    beam = proc.targets.beam
    if beam is not None:
        lab_step = float(np.min(np.diff(np.unique(lab))))
        lobe_step = prod.main_lobe_step_deg
        step = lab / lobe_step
        keep |= (lab <= beam.main_lobe_deg + lobe_step + 1e-9) & (np.abs(step - np.round(step)) < 1e-9)
        keep |= np.isclose(lab, beam.main_lobe_deg) | np.isclose(lab, beam.main_lobe_deg + lobe_step)
        keep |= np.isclose(lab, beam.null_deg)
        for sector in (beam.null_sector_deg, beam.design_sector_deg(proc.fit)):
            if sector is not None:
                keep |= (lab >= sector[0] - lab_step - 1e-9) & (lab <= sector[1] + lab_step + 1e-9)
    rest = lab / prod.rest_step_deg
    keep |= np.abs(rest - np.round(rest)) < 1e-9
    wanted = np.arange(0.0, 180.0 + 1e-9, prod.rest_step_deg)
    missing = [w for w in wanted if not np.any(np.isclose(lab, w))]
    if missing:
        raise ProcedureError(
            f"{proc.source_path}: production.rest_step_deg: expected multiples on the lab grid, "
            f"{missing[0]:g} deg is not on it"
        )
    az = np.unique(grid[keep])
    return np.concatenate([az[az >= 0], az[az < 0][::-1]])


def production_text(proc: Procedure) -> str:
    """Return the production procedure's TOML text: the lab text with grid, positions and sweep derived."""
    prod = _section(proc)
    doc = tomlkit.parse(proc.source_text)
    table = doc["turntable"]
    if "step_deg" in table:
        del table["step_deg"]
    table["azimuths_deg"] = [float(a) for a in production_azimuths(proc)]
    for position in doc["positions"]:
        if not position.get("design", True):
            position["characterize"] = False
    sweep = doc["sweep"]
    sweep["duration_s"] = prod.duration_s
    sweep["ir_length"] = prod.ir_length
    sweep["mesm_clear"] = prod.mesm_clear
    if prod.thd_sweep_s is not None:
        sweep["thd_sweep_s"] = prod.thd_sweep_s
    del doc["production"]
    return HEADER.format(name=proc.source_path or proc.product.id) + tomlkit.dumps(doc)


def production_procedure(proc: Procedure) -> Procedure:
    """:func:`production_text` parsed and validated."""
    from calib.procedure.load import parse_procedure

    return parse_procedure(production_text(proc), source=f"{proc.source_path} [production]")
