"""The tracked CTC bank of a listening area: one robust filter set per cell.

``calib fit`` of a procedure with ``[listening_area]`` designs, besides the
fixed filters, a bank: for every cell the ear transfer functions at its
centre and corners are interpolated from the coarse dummy-head grid that
characterize measured (:func:`calib.solve.area.interpolate_ear_tfs`: the
geometric delay from each driver to each ear taken out, the rest
interpolated, the target's delay put back), and the CTC filters for inputs L
and R are designed robust over those positions
(:func:`calib.solve.ctc.design_ctc`, the same target, cap and delay rule as
the fixed fit). The centre (beam) input keeps its one filter set. Each cell
targets ``tau_m + d / c`` with ``d`` its centre's distance, so every cell's
filters have the same bulk latency ``tau_m`` at its listener, as the fixed
filters do at theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.errors import FitError
from calib.metrics.bands import third_octave_bands
from calib.metrics.ctc import cancellation_gain_from_ears_db
from calib.procedure.spec import Procedure
from calib.signals.convolve import next_pow2
from calib.solve.area import (
    HeadGrid,
    cell_design_points,
    cell_index,
    interpolate_ear_tfs,
)
from calib.solve.ctc import design_ctc
from calib.solve.fir import synthesize_fir
from calib.store.calibration import AreaBank
from calib.store.measurement import Measurement


@dataclass(frozen=True)
class BankFit:
    """A fitted bank and what the design predicted per cell."""

    bank: AreaBank
    median_cg_db: np.ndarray  # [C]: median over in-band bins of the design's worst cancellation over the cell
    target_met: np.ndarray  # [C]: fraction of in-band bins meeting the design target


def area_grid(proc: Procedure) -> HeadGrid:
    """Return the coarse head grid of ``[listening_area]`` as a :class:`HeadGrid`."""
    area = proc.listening_area
    if area is None:
        raise FitError(f"{proc.source_path or '<procedure>'}: listening_area: the procedure has none")
    xs, ys, yaws = area.measured_axes()
    return HeadGrid(tuple(xs), tuple(ys), tuple(yaws), z_m=area.centre_m[2])


def driver_geometry_m(proc: Procedure) -> np.ndarray:
    """Driver acoustic centres ``[S, 3]`` from the product geometry."""
    return np.array([d.position_m for d in proc.drivers], dtype=float)


def grid_ear_tfs(proc: Procedure, meas: Measurement, binaural_ir: np.ndarray, n_fft: int) -> np.ndarray:
    """Return the area grid's ear spectra ``[Nx, Ny, Nyaw, F, 2, S]`` from the (gated) binaural IRs ``[P, 2, S, N]``."""
    grid = area_grid(proc)
    assert proc.listening_area is not None
    names = [p.name for p in proc.listening_area.grid_positions()]
    measured = {p.name: i for i, p in enumerate(meas.positions)}
    missing = [n for n in names if n not in measured]
    if missing:
        raise FitError(f"{meas.path}: /binaural/positions/name: the listening area's grid was not measured "
                       f"({len(missing)} of {len(names)} positions missing, e.g. {missing[0]!r}); measure "
                       f"characterize with this procedure")
    index = [measured[n] for n in names]
    spectra = np.fft.rfft(np.asarray(binaural_ir)[index], n_fft, axis=-1)  # [G, 2, S, F]
    return np.moveaxis(spectra, -1, 1).reshape(*grid.shape, n_fft // 2 + 1, 2, spectra.shape[2])


def fit_bank(proc: Procedure, freqs_hz: np.ndarray, grid_tfs: np.ndarray, target_db: np.ndarray,
             speed_of_sound: float, sample_rate: int, n_fft: int) -> BankFit:
    """Design one CTC set per cell of the procedure's listening area.

    Parameters
    ----------
    proc : Procedure
        With ``[listening_area]``; ``[fit]`` gives taps, cap and modeling delay.
    freqs_hz : [F]
        The rfft grid of ``n_fft``.
    grid_tfs : complex [Nx, Ny, Nyaw, F, 2, S]
        Ear transfer functions on the area grid (:func:`grid_ear_tfs`).
    target_db : [F]
        The CTC design target (:func:`calib.stages.fit.design_target_db`).
    speed_of_sound : float
        The air the grid was measured in.
    sample_rate, n_fft : int

    Returns
    -------
    BankFit
    """
    area = proc.listening_area
    assert area is not None
    grid = area_grid(proc)
    sources = driver_geometry_m(proc)
    centres, yaws, half, _ = area.cells()
    tau_m = proc.fit.modeling_delay_ms * 1e-3
    firs, worst, met = [], [], []
    for centre, yaw in zip(centres, yaws, strict=True):
        xyz, yaw_k = cell_design_points(centre, yaw, half)
        plant = interpolate_ear_tfs(freqs_hz, grid_tfs, grid, sources, xyz, yaw_k, speed_of_sound)
        design = design_ctc(plant, freqs_hz, target_db, proc.fit.effort_cap_db,
                            tau_m + float(np.linalg.norm(centre)) / speed_of_sound)
        if not np.all(np.isfinite(design.H)):
            raise FitError(f"listening_area: the solver returned non-finite filters for the cell at {list(centre)}")
        firs.append(np.transpose(synthesize_fir(design.H, n_fft, proc.fit.taps, sample_rate), (1, 0, 2)))
        band = design.in_band
        worst.append(float(np.median(np.min(design.cg_db[band], axis=(-2, -1)))))
        met.append(float(np.mean(design.target_met[band])))
    bank = AreaBank(np.array(firs, np.float32), centres, yaws, half)
    return BankFit(bank, np.array(worst), np.array(met))


def band_cancellation_db(ear_irs: np.ndarray, fir_lr: np.ndarray, sample_rate: int,
                         band_hz: tuple[float, float]) -> np.ndarray:
    """Third-octave cancellation ``[2, P, B]`` of per-position filters on per-position ear IRs.

    Parameters
    ----------
    ear_irs : [P, 2, S, N]
        Driver-to-ear IRs (the truth, or a verification) at P head positions.
    fir_lr : [P, 2, S, T] or [2, S, T]
        The L and R filters each position listens through (a tracked bank's
        cell per position, or one fixed set for all).
    band_hz : (low, high)
        The target curve's band.
    """
    irs = np.asarray(ear_irs, float)
    fir = np.asarray(fir_lr, float)
    if fir.ndim == 3:
        fir = np.broadcast_to(fir, (irs.shape[0], *fir.shape))
    n_fft = next_pow2(irs.shape[-1] + fir.shape[-1])  # linear, not circular
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    ears = np.einsum("pesf,pksf->fpek", np.fft.rfft(irs, n_fft), np.fft.rfft(fir, n_fft))
    return cancellation_gain_from_ears_db(ears, freqs, third_octave_bands(*band_hz))


@dataclass(frozen=True)
class AreaMap:
    """Cancellation over a horizontal slice of the area (one yaw): fixed against tracked.

    Attributes
    ----------
    x_m, y_m : [Nx], [Ny]
        Depth and lateral coordinates of the map's points.
    yaw_deg : float
    fixed_db, tracked_db : [Nx, Ny]
        Median over the target's third-octave bands, the worse of inputs L and R.
    """

    x_m: np.ndarray
    y_m: np.ndarray
    yaw_deg: float
    fixed_db: np.ndarray
    tracked_db: np.ndarray


def cancellation_map(proc: Procedure, fir_fixed: np.ndarray, bank: AreaBank, ear_irs_at, sample_rate: int,
                     n_depth: int = 7, n_lateral: int = 21, yaw_deg: float | None = None) -> AreaMap:
    """Return fixed and tracked cancellation on a grid over the area at one yaw.

    ``ear_irs_at(xyz [P, 3], yaw [P]) -> [P, 2, S, N]`` gives the ear IRs
    (the simulator's truth, or measured verification positions). Points
    are spread evenly over the area (edges included), so most fall between
    cell centres and between measured grid positions.
    """
    area = proc.listening_area
    assert area is not None
    x0, y0, z0 = area.centre_m
    xs = np.linspace(x0 - area.depth_m, x0 + area.depth_m, n_depth if area.depth_m > 0 else 1)
    ys = np.linspace(y0 - area.lateral_m, y0 + area.lateral_m, n_lateral if area.lateral_m > 0 else 1)
    yaw = area.yaw_deg if yaw_deg is None else float(yaw_deg)
    x, y = np.meshgrid(xs, ys, indexing="ij")
    xyz = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, z0)])
    yaws = np.full(x.size, yaw)
    irs = ear_irs_at(xyz, yaws)
    cells = cell_index(bank.centres_m, bank.yaw_deg, bank.half_size, xyz, yaws)
    band = proc.targets.cancellation.band_hz()
    fixed = np.median(band_cancellation_db(irs, fir_fixed, sample_rate, band), axis=-1).min(axis=0)
    tracked = np.median(band_cancellation_db(irs, bank.fir[cells], sample_rate, band), axis=-1).min(axis=0)
    return AreaMap(xs, ys, yaw, fixed.reshape(x.shape), tracked.reshape(x.shape))
