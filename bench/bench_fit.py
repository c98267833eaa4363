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
   beam with ``numpy.linalg.lstsq`` on the augmented weighted system (its
   out-of-band rows are rank 1 at tiny ``beta``, where the normal equations
   lose every digit) and the design's 40-step log bisection.

The naive filters are compared with the vectorized ones (which factorise each
bin once by SVD): they agree to rounding.

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

from calib.cli.cmd_measure import measure_unit
from calib.metrics.beam import arc_weights, azimuth_index, wrap_deg
from calib.procedure.model import Procedure
from calib.solve.beamformer import band_taper, design_beamformer
from calib.solve.ctc import design_ctc
from calib.solve.regularized import reference_gain
from calib.stages.fit import design_target_db, fit_measurement, procedure_of
from calib.stages.metrics import horizontal_mic_index, rfft_grid
from calib.store.measurement import Measurement, read_measurement

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
REPEATS = 5
# The designs' defaults (calib.solve.ctc / calib.solve.beamformer), repeated for the loop.
CTC_BETA, CTC_ITER = (1e-10, 1e4), 40
BEAM_BETA, BEAM_ITER = (1e-10, 1e8), 40
NULL_WEIGHT, SIDE_WEIGHT, TAPER_OCT = 1e4, 0.1, 1.0 / 3.0


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
    """The fit's two designs, vectorized over bins: H_ctc [F, S, 2], H_beam [F, S]."""
    fit, beam = x.proc.fit, x.proc.targets.beam
    ctc = design_ctc(x.plant_ears, x.freqs, x.target_db, fit.effort_cap_db, x.ctc_delay_s)
    bf = design_beamformer(
        x.plant_arc, x.azimuth_deg, x.freqs, fit.beam_band_hz, (beam.null_deg, -beam.null_deg), beam.main_lobe_deg,
        wng_min_db=fit.beam_wng_min_db, modeling_delay_s=x.beam_delay_s, effort_cap_db=fit.effort_cap_db,
    )
    return ctc.H, bf.H[..., 0]


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


def naive_beam(x: FitInputs) -> np.ndarray:
    """design_beamformer one bin at a time: augmented weighted ``lstsq``, 40-step log bisection on beta.

    Per bin and beta: ``w = argmin ||[W^(1/2) C; sqrt(beta) g0 I] w - [W^(1/2) d; 0]||``, the same
    minimiser as the design's ``(C^H W C + beta g0^2 I)^-1 C^H W d``.
    """
    fit, beam = x.proc.fit, x.proc.targets.beam
    az, n_freqs, n_drv = x.azimuth_deg, x.plant_arc.shape[0], x.plant_arc.shape[2]
    taper = band_taper(x.freqs, fit.beam_band_hz, TAPER_OCT)
    i0 = azimuth_index(az, 0.0)
    i_null = [azimuth_index(az, n) for n in (beam.null_deg, -beam.null_deg)]
    g0 = reference_gain(x.plant_arc[:, i0, None, :])
    in_lobe = np.abs(wrap_deg(az)) <= beam.main_lobe_deg
    v = arc_weights(az)
    arc_w = np.where(in_lobe, v / np.sum(v[in_lobe]), SIDE_WEIGHT * v / np.sum(v[~in_lobe]))
    eye = np.eye(n_drv)
    lo, hi = BEAM_BETA
    out = np.zeros((n_freqs, n_drv), complex)
    for f in range(n_freqs):
        c0 = x.plant_arc[f, i0]
        d0 = g0[f] * np.exp(-2j * np.pi * x.freqs[f] * x.beam_delay_s)
        rows = np.concatenate([x.plant_arc[f], c0[None], x.plant_arc[f, i_null]])
        w_rows = np.concatenate([arc_w * taper[f], [NULL_WEIGHT], np.full(2, NULL_WEIGHT * taper[f])])
        d = np.concatenate([np.where(in_lobe, d0, 0.0), [d0], [0.0, 0.0]])
        # Out of band only the on-axis row is left (rank 1) and beta is tiny: the normal
        # equations would lose ~all digits, so solve the augmented least squares instead.
        a_rows = np.sqrt(w_rows)[:, None] * rows
        a_rhs = np.concatenate([np.sqrt(w_rows) * d, np.zeros(n_drv)])

        def weights(beta_rel, c0=c0, d0=d0, a_rows=a_rows, a_rhs=a_rhs, f=f):
            aug = np.concatenate([a_rows, np.sqrt(beta_rel) * g0[f] * eye])
            w = np.linalg.lstsq(aug, a_rhs, rcond=None)[0]
            on_axis = c0 @ w
            return w * (d0 / on_axis if abs(on_axis) > 0 else 1.0)

        def robust(beta_rel, c0=c0):
            w = weights(beta_rel)
            with np.errstate(divide="ignore", invalid="ignore"):
                wng = 10 * np.log10(abs(c0 @ w) ** 2 / (np.sum(abs(w) ** 2) * np.mean(abs(c0) ** 2)))
                effort = 10 * np.log10(np.max(abs(w) ** 2))
            return wng >= fit.beam_wng_min_db and effort <= fit.effort_cap_db

        if robust(lo):
            beta = lo
        elif not robust(hi):
            beta = hi
        else:
            log_sat, log_unsat = np.log(hi), np.log(lo)
            for _ in range(BEAM_ITER):
                mid = 0.5 * (log_sat + log_unsat)
                if robust(np.exp(mid)):
                    log_sat = mid
                else:
                    log_unsat = mid
            beta = np.exp(log_sat)
        out[f] = weights(beta)
    return out


def agreement(h: np.ndarray, ref: np.ndarray, rtol: float = 1e-6) -> tuple[float, float]:
    """Fraction of bins whose filters agree within ``rtol`` (of the bin's largest tap) and the median error."""
    axes = tuple(range(1, h.ndim))
    scale = np.maximum(np.max(np.abs(ref), axis=axes), 1e-300)
    err = np.max(np.abs(h - ref), axis=axes) / scale
    return float(np.mean(err <= rtol)), float(np.median(err))


def timed(fn, repeats: int = 1):  # noqa: ANN001, ANN201
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
          f"beam: all {n_freqs} over {len(x.azimuth_deg)} arc rows + on-axis + 2 nulls")

    t_fit, _ = timed(lambda: fit_measurement(meas), REPEATS)
    t_vec, (h_ctc, h_beam) = timed(lambda: vectorized_solves(x), REPEATS)
    t_loop_ctc, ref_ctc = timed(lambda: naive_ctc(x))
    t_loop_beam, ref_beam = timed(lambda: naive_beam(x))
    t_loop = t_loop_ctc + t_loop_beam

    in_band = np.isfinite(x.target_db)
    ctc_ok, ctc_err = agreement(h_ctc[in_band], ref_ctc[in_band])
    beam_ok, beam_err = agreement(h_beam, ref_beam)
    print(f"fit_measurement (median of {REPEATS}):        {t_fit * 1e3:9.1f} ms")
    print(f"  vectorized CTC + beam solves only:      {t_vec * 1e3:9.1f} ms")
    print(f"naive per-bin loop, CTC + beam solves:     {t_loop * 1e3:9.1f} ms "
          f"(CTC {t_loop_ctc:.1f} s, beam {t_loop_beam:.1f} s)")
    print(f"ratio naive loop / fit_measurement:        {t_loop / t_fit:9.1f}x")
    print(f"ratio naive loop / vectorized solves:      {t_loop / t_vec:9.1f}x")
    print(f"agreement (max |dH| <= 1e-6 of the bin's largest tap): CTC in band {ctc_ok:.1%} of bins "
          f"(median error {ctc_err:.1e}), beam {beam_ok:.1%} (median error {beam_err:.1e})")


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
