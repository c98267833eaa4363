"""Verifying a listening area's bank: hidden heads measured through their cell's filters, and the area map.

A calibration with a bank (``/area``) is verified, besides the procedure's
positions, at the hidden heads :func:`calib.procedure.area.hidden_positions`
chooses (inside cells, none a measured grid point nor a cell's design point).
Each is measured through the filters of the cell it falls in, looked up as
the tracked renderer does (:func:`calib.solve.area.cell_index`): with the
``filters`` method the cell's L and R filters (and the one beam filter C)
are played there; with the ``drivers`` method every driver is measured alone
and the cell's filters are applied in software, which also gives the fixed
filters' figure at the same heads. The verification file records the heads
(``hidden_positions``) and their cells (``hidden_cells``).

The report's area map is a prediction: ear responses interpolated from the
characterize grid (:func:`calib.solve.area.interpolate_ear_tfs`) through the
fixed filters and through the bank, at one yaw over the area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.errors import FileFormatError
from calib.geometry import HeadPosition
from calib.metrics.bands import third_octave_bands
from calib.metrics.ctc import cancellation_gain_from_ears_db
from calib.procedure.air import recorded_speed_of_sound
from calib.procedure.area import hidden_positions
from calib.procedure.layout import head_position
from calib.procedure.spec import Procedure
from calib.signals.convolve import next_pow2
from calib.solve.area import cell_index, interpolate_ear_tfs
from calib.stages.gating import Gates, gated_binaural, measurement_gates
from calib.stages.tracked import (
    AreaMap,
    area_grid,
    band_cancellation_db,
    cancellation_map,
    driver_geometry_m,
    grid_ear_tfs,
)
from calib.stages.verdict import Check
from calib.store.calibration import Calibration
from calib.store.measurement import Measurement

#: Verification file attributes: the hidden heads' names (comma-separated) and the cell each was measured through.
HIDDEN_POSITIONS_ATTR = "hidden_positions"
HIDDEN_CELLS_ATTR = "hidden_cells"


def hidden_heads(proc: Procedure, cal: Calibration) -> tuple[list[HeadPosition], np.ndarray]:
    """Return the hidden heads a calibration with a bank is verified at, and the cell of each (none without a bank)."""
    if cal.area is None:
        return [], np.zeros(0, dtype=np.int64)
    heads = [head_position(p) for p in hidden_positions(proc)]
    if not heads:
        return [], np.zeros(0, dtype=np.int64)
    bank = cal.area
    cells = cell_index(bank.centres_m, bank.yaw_deg, bank.half_size, np.array([h.xyz_m for h in heads]),
                       np.array([h.yaw_deg for h in heads]))
    return heads, np.asarray(cells, dtype=np.int64)


def hidden_attrs(heads: list[HeadPosition], cells: np.ndarray) -> dict[str, object]:
    """Return the verification file's record of the hidden heads (empty without any)."""
    if not heads:
        return {}
    return {HIDDEN_POSITIONS_ATTR: ",".join(h.name for h in heads), HIDDEN_CELLS_ATTR: np.asarray(cells, np.int64)}


def hidden_of(meas: Measurement) -> tuple[np.ndarray, np.ndarray]:
    """Return indices into ``meas.positions`` of the hidden heads and their cells (empty arrays if it has none)."""
    names = str(meas.attrs.get(HIDDEN_POSITIONS_ATTR, "") or "")
    if not names:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    listed = names.split(",")
    cells = np.atleast_1d(np.asarray(meas.attrs.get(HIDDEN_CELLS_ATTR, []), dtype=np.int64))
    if cells.shape != (len(listed),):
        raise FileFormatError(f"{meas.path}: {HIDDEN_CELLS_ATTR}: expected {len(listed)} cells (one per hidden "
                              f"position), got {cells.size}")
    return np.array([meas.position_index(n) for n in listed], dtype=np.int64), cells


@dataclass(frozen=True)
class HiddenHeads:
    """The hidden heads as verified.

    Attributes
    ----------
    names : list of str
    xyz_m : [H, 3]
    yaw_deg : [H]
    cells : [H]
        The bank cell each was measured through.
    tracked_db : [H]
        Cancellation through its cell's filters: median over the target's
        third-octave bands, the worse of inputs L and R.
    fixed_db : [H] or None
        The same through the fixed filters (the ``drivers`` method only:
        with ``filters`` the heads heard the bank alone).
    min_db : float
        ``[listening_area] hidden_min_db``.
    """

    names: list[str]
    xyz_m: np.ndarray
    yaw_deg: np.ndarray
    cells: np.ndarray
    tracked_db: np.ndarray
    fixed_db: np.ndarray | None
    min_db: float


def _median_worse_input(cancellation_db: np.ndarray) -> np.ndarray:
    """``[2, P, B]`` -> ``[P]``: median over bands, the worse input."""
    return np.median(cancellation_db, axis=-1).min(axis=0)


def verified_hidden(proc: Procedure, meas: Measurement, cal: Calibration) -> HiddenHeads | None:
    """Return the hidden heads' cancellation from a verify measurement (None if it measured none)."""
    index, cells = hidden_of(meas)
    if index.size == 0:
        return None
    area = proc.listening_area
    if cal.area is None or area is None:
        raise FileFormatError(f"{meas.path}: {HIDDEN_POSITIONS_ATTR}: hidden heads verified, but the calibration "
                              "has no listening area bank")
    if np.any(cells >= cal.area.n_cells) or np.any(cells < 0):
        raise FileFormatError(f"{meas.path}: {HIDDEN_CELLS_ATTR}: expected cells 0..{cal.area.n_cells - 1}, "
                              f"got {cells.tolist()}")
    band = proc.targets.cancellation.band_hz()
    fixed = None
    if list(meas.sources) == list(cal.drivers):  # each driver alone: filter in software
        irs = gated_binaural(meas, measurement_gates(meas, proc))[index]
        tracked = _median_worse_input(band_cancellation_db(irs, cal.area.fir[cells], meas.sample_rate, band))
        fixed = _median_worse_input(band_cancellation_db(irs, cal.fir[:2], meas.sample_rate, band))
    else:  # inputs L, R (and C) played through the cell's filters
        n_fft = next_pow2(meas.ir_length)
        ears = np.moveaxis(np.fft.rfft(np.asarray(meas.binaural_ir[index][:, :, :2], float), n_fft, axis=-1), -1, 0)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / meas.sample_rate)
        tracked = _median_worse_input(cancellation_gain_from_ears_db(ears, freqs, third_octave_bands(*band)))
    heads = [meas.positions[i] for i in index]
    return HiddenHeads([h.name for h in heads], np.array([h.xyz_m for h in heads], float),
                       np.array([h.yaw_deg for h in heads], float), cells, tracked, fixed, area.hidden_min_db)


def hidden_checks(hidden: HiddenHeads | None) -> list[Check]:
    """One verdict line per hidden head: tracked cancellation >= ``hidden_min_db``."""
    if hidden is None:
        return []
    return [
        Check(f"tracked cancellation @ {name} (median)", float(value), hidden.min_db, "dB",
              bool(np.isfinite(value) and value >= hidden.min_db), detail=f"through cell {int(cell)}")
        for name, cell, value in zip(hidden.names, hidden.cells, hidden.tracked_db, strict=True)
    ]


def predicted_area_map(proc: Procedure, characterize: Measurement, cal: Calibration,
                       gates: Gates | None = None) -> AreaMap:
    """Return fixed and tracked cancellation over the area at its yaw, from the characterize grid's ears."""
    if cal.area is None:
        raise FileFormatError(f"{cal.path}: /area: expected a listening area bank, the calibration has none")
    gates = gates or measurement_gates(characterize, proc)
    n_fft = next_pow2(characterize.ir_length)
    grid_tfs = grid_ear_tfs(proc, characterize, gated_binaural(characterize, gates), n_fft)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / characterize.sample_rate)
    grid = area_grid(proc)
    sources = driver_geometry_m(proc)
    c = recorded_speed_of_sound(characterize.attrs)

    def ear_irs_at(xyz: np.ndarray, yaws: np.ndarray) -> np.ndarray:
        spectra = interpolate_ear_tfs(freqs, grid_tfs, grid, sources, xyz, yaws, c)  # [F, P, 2, S]
        return np.fft.irfft(np.moveaxis(spectra, 0, -1), n_fft, axis=-1)  # [P, 2, S, n_fft]

    return cancellation_map(proc, cal.fir[:2], cal.area, ear_irs_at, characterize.sample_rate)
