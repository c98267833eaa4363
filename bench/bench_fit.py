"""Benchmark: ``fit_measurement`` on the 5-driver Aurora 5 vs a naive per-bin Python loop.

One unit ("SN-BENCH") is characterized once on the virtual lab into a
temporary folder (72 azimuths x 2 arc microphones, 9 head positions, MESM;
about 15 s). Then, on that measurement:

1. ``fit_measurement`` (plants, CTC + beam design, FIR synthesis, predicted
   metrics), median of a few repeats;
2. the vectorized solves alone (:func:`calib.solve.ctc.design_ctc` +
   :func:`calib.solve.beamformer.design_beamformer`) on the fit's inputs;
3. the same two designs written the naive way, one bin and one ``beta`` at a
   time: CTC with ``numpy.linalg.solve`` on the normal equations over the
   design's log grid of ``beta`` (4 per decade) then 20 bisection steps; the
   beam as in ``bench/bench_beam.py`` (``numpy.linalg.solve`` per bin, main-lobe
   weight and bisection step) on every 16th bin, its time scaled to all bins.

The naive filters are compared with the vectorized ones (which factorise each
bin once, by SVD for the CTC and ``eigh`` for the beam): they agree to rounding.

Run: ``python bench/bench_fit.py``  (about a minute on 2 cores)

``python bench/bench_fit.py --scale [--before /work/main]``: the fit at scale
instead (:mod:`fit_scale`): peak RSS of ``calib fit`` on a synthesized
360 azimuths x 8 mics x 5 drivers x 16384 samples file (limit 1 GB), before
and after in one run, and the fit time's growth with bins, azimuths and drivers.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_beam import naive_beam  # the script's folder is on sys.path

from calib.procedure.spec import Procedure
from calib.solve.beamformer import design_beamformer
from calib.solve.ctc import design_ctc
from calib.solve.regularized import reference_gain
from calib.stages.fit import design_target_db, fit_measurement, procedure_of
from calib.stages.measure import measure_unit
from calib.stages.product_metrics import horizontal_mic_index, rfft_grid
from calib.store.measurement import Measurement, read_measurement

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
REPEATS = 5
# The designs' defaults (calib.solve.ctc), repeated for the loop.
CTC_BETA, CTC_ITER = (1e-10, 1e4), 40
BEAM_STEP = 16  # the naive beam loop runs on every 16th bin (22 main-lobe weights x 40 steps per bin); time scaled


@dataclass
class FitInputs:
    """What ``fit_measurement`` hands to the two solvers (same grid, targets, delays)."""

    freqs: np.ndarray  # [F]
    plant_ears: np.ndarray  # [F, P_design, 2, S]
    target_db: np.ndarray  # [F]
    ctc_delay_s: float
    plant_arc: np.ndarray  # [F, A, S]
    azimuth_deg: np.ndarray  # [A]
    beam_delay_s: float
    proc: Procedure


def fit_inputs(meas: Measurement) -> FitInputs:
    """Rebuild the solver inputs exactly as :func:`calib.stages.fit.fit_measurement` does."""
    proc = procedure_of(meas)
    n_fft = int(2 ** np.ceil(np.log2(max(meas.ir_length, proc.fit.taps) * 2)))
    freqs = rfft_grid(n_fft, meas.sample_rate)
    c = proc.sim.speed_of_sound if proc.sim is not None else 343.0
    tau_m = proc.fit.modeling_delay_ms * 1e-3
    design = [meas.position_index(p.name) for p in proc.design_positions()]
    ears = np.moveaxis(np.fft.rfft(meas.binaural_ir, n_fft, axis=-1), -1, 0)[:, design]
    head_m = float(np.mean([np.linalg.norm(meas.positions[i].xyz_m) for i in design]))
    mic = horizontal_mic_index(proc)
    arc = np.moveaxis(np.fft.rfft(meas.directivity_ir[:, mic], n_fft, axis=-1), -1, 0)
    return FitInputs(freqs, ears, design_target_db(proc, freqs), tau_m + head_m / c, arc, meas.azimuth_deg,
                     tau_m + proc.arc.distance_m / c, proc)


def vectorized_solves(x: FitInputs) -> tuple[np.ndarray, np.ndarray]:
    """Return the fit's two designs, vectorized over bins: H_ctc [F, S, 2], H_beam [F, S]."""
    fit = x.proc.fit
    ctc = design_ctc(x.plant_ears, x.freqs, x.target_db, fit.effort_cap_db, x.ctc_delay_s)
    bf = design_beamformer(x.plant_arc, x.azimuth_deg, x.freqs, **beam_arguments(x.proc, x.beam_delay_s))
    return ctc.H, bf.H[..., 0]


def beam_arguments(proc: Procedure, delay_s: float) -> dict:
    """Return the keyword arguments :func:`calib.stages.fit.fit_measurement` passes to the beam design."""
    fit, beam = proc.fit, proc.targets.beam
    return dict(
        band_hz=fit.beam_band_hz, null_sector_deg=beam.design_sector_deg(fit), main_lobe_deg=beam.main_lobe_deg,
        wng_min_db=fit.beam_wng_min_db, modeling_delay_s=delay_s, effort_cap_db=fit.effort_cap_db,
        main_lobe_min_db=beam.main_lobe_min_db + fit.beam_main_lobe_margin_db,
    )


# ---------------------------------------------------------------------- the naive loop
def naive_ctc(x: FitInputs) -> np.ndarray:
    """design_ctc one bin at a time: grid scan of beta, then bisection, ``np.linalg.solve`` per beta."""
    n_freqs, n_pos, _, n_drv = x.plant_ears.shape
    cap = x.proc.fit.effort_cap_db
    stacked = x.plant_ears.reshape(n_freqs, 2 * n_pos, n_drv)
    g = reference_gain(stacked)  # with its global floor, as the design
    lo, hi = CTC_BETA
    grid = np.geomspace(lo, hi, int(np.ceil(4 * np.log10(hi / lo))) + 1)
    eye = np.eye(n_drv)
    out = np.zeros((n_freqs, n_drv, 2), complex)
    for f in range(n_freqs):
        c = stacked[f]
        d = np.zeros((2 * n_pos, 2), complex)
        d[0::2, 0] = d[1::2, 1] = g[f] * np.exp(-2j * np.pi * x.freqs[f] * x.ctc_delay_s)
        gram, rhs = c.conj().T @ c, c.conj().T @ d

        def filters(beta_rel, c=c, d=d, gram=gram, rhs=rhs, f=f):
            h = np.linalg.solve(gram + beta_rel * g[f] ** 2 * eye, rhs)
            resp = c @ h
            den = np.sum(np.abs(resp) ** 2, axis=0)
            alpha = np.where(den > 0, np.sum(resp.conj() * d, axis=0).real / np.where(den > 0, den, 1), 1.0)
            p = np.abs(resp.reshape(n_pos, 2, 2)) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                worst = np.min(10 * np.log10(np.concatenate([p[:, 0, 0] / p[:, 1, 0], p[:, 1, 1] / p[:, 0, 1]])))
                effort = 10 * np.log10(np.max(np.abs(h * alpha) ** 2))
            return h * alpha, worst, effort

        if not np.isfinite(x.target_db[f]):
            out[f] = filters(hi)[0]
            continue
        scan = [filters(b)[1:] for b in grid]
        worst = np.array([s[0] for s in scan])
        under = np.array([s[1] for s in scan]) <= cap
        ok = (worst >= x.target_db[f]) & under
        if ok.any():
            i = int(np.flatnonzero(ok)[-1])
            beta = grid[i]
            if i < grid.size - 1:
                log_ok, log_bad = np.log(grid[i]), np.log(grid[i + 1])
                for _ in range(CTC_ITER // 2):
                    mid = 0.5 * (log_ok + log_bad)
                    _, w, e = filters(np.exp(mid))
                    if w >= x.target_db[f] and e <= cap:
                        log_ok = mid
                    else:
                        log_bad = mid
                beta = np.exp(log_ok)
        else:  # cap-limited: best worst case under the cap
            beta = grid[int(np.argmax(np.where(under, worst, -np.inf)))] if under.any() else grid[-1]
        out[f] = filters(beta)[0]
    return out


def naive_beam_bins(x: FitInputs) -> tuple[np.ndarray, np.ndarray]:
    """design_beamformer one bin at a time (:func:`bench_beam.naive_beam`) on every ``BEAM_STEP``-th bin."""
    bins = np.arange(1, x.freqs.size, BEAM_STEP)
    return bins, naive_beam(x.plant_arc, x.azimuth_deg, x.freqs, bins, **beam_arguments(x.proc, x.beam_delay_s))


def agreement(h: np.ndarray, ref: np.ndarray, rtol: float = 1e-6) -> tuple[float, float]:
    """Fraction of bins whose filters agree within ``rtol`` (of the bin's largest tap) and the median error."""
    axes = tuple(range(1, h.ndim))
    scale = np.maximum(np.max(np.abs(ref), axis=axes), 1e-300)
    err = np.max(np.abs(h - ref), axis=axes) / scale
    return float(np.mean(err <= rtol)), float(np.median(err))


def timed(fn, repeats: int = 1):
    """Median wall time of ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_fit-") as tmp:  # fit_measurement hashes the file
        t_meas, path = timed(lambda: measure_unit(str(PROCEDURE), "SN-BENCH", "sim", tmp, resume=False))
        meas = read_measurement(path)
        run(meas, t_meas)


def run(meas: Measurement, t_meas: float) -> None:
    """Time the fit, the vectorized solves and the naive loop on ``meas``; print the figures."""
    x = fit_inputs(meas)
    n_freqs, n_design, _, n_drv = x.plant_ears.shape
    n_ctc_bins = int(np.isfinite(x.target_db).sum())
    print(f"measurement (sim, MESM): {t_meas:.1f} s, {len(meas.azimuth_deg)} azimuths x {len(meas.receivers)} mics, "
          f"{len(meas.positions)} positions ({n_design} design), {n_drv} drivers, IR {meas.ir_length} samples")
    print(f"bins: {n_freqs} (n_fft {2 * (n_freqs - 1)} at {meas.sample_rate} Hz); CTC in band {n_ctc_bins}, "
          f"beam: all {n_freqs} over {len(x.azimuth_deg)} arc azimuths (sector, main lobe, sides)")

    t_fit, _ = timed(lambda: fit_measurement(meas), REPEATS)
    t_vec, (h_ctc, h_beam) = timed(lambda: vectorized_solves(x), REPEATS)
    t_loop_ctc, ref_ctc = timed(lambda: naive_ctc(x))
    t_loop_beam, (beam_bins, ref_beam) = timed(lambda: naive_beam_bins(x))
    t_loop_beam *= (n_freqs - 1) / beam_bins.size
    t_loop = t_loop_ctc + t_loop_beam

    in_band = np.isfinite(x.target_db)
    ctc_ok, ctc_err = agreement(h_ctc[in_band], ref_ctc[in_band])
    beam_ok, beam_err = agreement(h_beam[beam_bins], ref_beam)
    print(f"fit_measurement (median of {REPEATS}):        {t_fit * 1e3:9.1f} ms")
    print(f"  vectorized CTC + beam solves only:      {t_vec * 1e3:9.1f} ms")
    print(f"naive per-bin loop, CTC + beam solves:     {t_loop * 1e3:9.1f} ms "
          f"(CTC {t_loop_ctc:.1f} s, beam {t_loop_beam:.1f} s scaled from every {BEAM_STEP}th bin)")
    print(f"ratio naive loop / fit_measurement:        {t_loop / t_fit:9.1f}x")
    print(f"ratio naive loop / vectorized solves:      {t_loop / t_vec:9.1f}x")
    print(f"agreement (max |dH| <= 1e-6 of the bin's largest tap): CTC in band {ctc_ok:.1%} of bins "
          f"(median error {ctc_err:.1e}), beam {beam_ok:.1%} of the looped bins (median error {beam_err:.1e})")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="the fit at scale (peak RSS, growth) instead")
    parser.add_argument("--before", type=Path, default=None, help="reference checkout for --scale (e.g. /work/main)")
    args = parser.parse_args()
    if args.scale:
        import fit_scale  # bench/ is the script's folder, first on sys.path

        fit_scale.main(args.before)
    else:
        main()
