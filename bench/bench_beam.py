"""Benchmark the null-sector beam design against a naive per-bin loop.

Benchmark: the null-sector beam design (:func:`calib.solve.beamformer.design_beamformer`)
for 72 and 360 azimuths, against a naive per-bin Python loop of the same algorithm.

Plant: the Aurora 5 drivers of ``procedures/aurora5.toml`` as free-field point
sources (``e^{-jkr}/r``, positions from ``[sim.drivers]``) to a horizontal arc
at 2 m, F = 4097 bins (n_fft 8192 at 48 kHz, the fit's grid); the procedure's
beam settings (sector 75-105 deg, main lobe +-45 deg >= -5.5 dB, WNG >= -9.5 dB,
effort <= 14 dB). The naive loop solves ``(A + beta g_0^2 I) x = c_0^H`` with
``numpy.linalg.solve`` for every bin, main-lobe weight and bisection step (the
vectorized design factorises each bin and weight once by ``eigh``); it runs on
every 32nd bin and its time is scaled to all bins. The filters are compared
on those bins.

Run: ``python bench/bench_beam.py``  (about a minute on 2 cores)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from calib.metrics.beam import arc_weights, azimuth_index, sector_mask, wrap_deg
from calib.procedure import load_procedure
from calib.solve.beamformer import DEFAULT_LOBE_WEIGHTS, band_taper, design_beamformer
from calib.solve.regularized import reference_gain

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
C_SOUND, FS, N_FFT, ARC_M = 343.0, 48000, 8192, 2.0
# The design's defaults, repeated for the loop.
SIDE_WEIGHT, TAPER_OCT, BETA, N_ITER = 1e-3, 1.0 / 3.0, (1e-10, 1e8), 40
REPEATS, NAIVE_STEP = 3, 32


def settings() -> dict:
    """Return the fit's beam arguments from the procedure."""
    proc = load_procedure(PROCEDURE)
    fit, beam = proc.fit, proc.targets.beam
    return dict(
        band_hz=fit.beam_band_hz, null_sector_deg=beam.design_sector_deg(fit), main_lobe_deg=beam.main_lobe_deg,
        wng_min_db=fit.beam_wng_min_db, modeling_delay_s=fit.modeling_delay_ms * 1e-3 + ARC_M / C_SOUND,
        effort_cap_db=fit.effort_cap_db, main_lobe_min_db=beam.main_lobe_min_db + fit.beam_main_lobe_margin_db,
    ), np.array([d.position_m for d in proc.sim.drivers.values()])


def point_source_arc(freqs: np.ndarray, azimuths_deg: np.ndarray, drivers_m: np.ndarray) -> np.ndarray:
    """[F, A, S] free-field point sources to a horizontal arc of radius ``ARC_M``."""
    th = np.radians(azimuths_deg)
    mics = np.stack([ARC_M * np.cos(th), ARC_M * np.sin(th), np.zeros_like(th)], -1)
    r = np.linalg.norm(mics[:, None] - drivers_m[None], axis=-1)
    return np.exp(-2j * np.pi * freqs[:, None, None] / C_SOUND * r) / r


def naive_beam(plant, az, freqs, bins, *, band_hz, null_sector_deg, main_lobe_deg, wng_min_db, modeling_delay_s,
               effort_cap_db, main_lobe_min_db):
    """design_beamformer one bin, one main-lobe weight and one beta at a time: H [len(bins), S]."""
    n_drv = plant.shape[2]
    taper = band_taper(freqs, band_hz, TAPER_OCT)
    i0 = azimuth_index(az, 0.0)
    g0 = reference_gain(plant[:, i0, None, :])
    in_sector = sector_mask(az, null_sector_deg)
    in_lobe = np.abs(wrap_deg(az)) <= main_lobe_deg + 1e-9
    rest = ~in_sector & ~in_lobe
    v = arc_weights(az)
    v_s, v_l, v_r = (np.where(m, v, 0) / np.sum(v[m]) for m in (in_sector, in_lobe, rest))
    lo, hi = BETA
    out = np.zeros((len(bins), n_drv), complex)
    for k, f in enumerate(bins):
        c, c0 = plant[f], plant[f, i0]
        d0 = g0[f] * np.exp(-2j * np.pi * freqs[f] * modeling_delay_s)
        r_s = (c.conj().T * v_s) @ c
        r_l = ((c - c0).conj().T * v_l) @ (c - c0)
        r_r = (c.conj().T * v_r) @ c
        best = None
        for mu in DEFAULT_LOBE_WEIGHTS:
            a = taper[f] * (r_s + mu * r_l + SIDE_WEIGHT * r_r) / g0[f] ** 2

            def weights(beta, a=a, c0=c0, d0=d0):
                x = np.linalg.solve(a + beta * np.eye(n_drv), c0.conj())
                return x * (d0 / (c0 @ x))

            def robust(beta, c0=c0):
                w = weights(beta)
                wng = 10 * np.log10(abs(c0 @ w) ** 2 / (np.sum(abs(w) ** 2) * np.mean(abs(c0) ** 2)))
                return wng >= wng_min_db and 10 * np.log10(np.max(abs(w) ** 2)) <= effort_cap_db

            if robust(lo):
                beta = lo
            elif not robust(hi):
                beta = hi
            else:
                log_sat, log_unsat = np.log(hi), np.log(lo)
                for _ in range(N_ITER):
                    mid = 0.5 * (log_sat + log_unsat)
                    log_sat, log_unsat = (mid, log_unsat) if robust(np.exp(mid)) else (log_sat, mid)
                beta = np.exp(log_sat)
            w = weights(beta)
            level = np.abs(c @ w) ** 2 / abs(d0) ** 2
            lobe_ok = 10 * np.log10(level[in_lobe].min()) >= main_lobe_min_db - 1e-9
            energy = np.real(w.conj() @ r_s @ w) / abs(d0) ** 2
            key = (not lobe_ok, energy if lobe_ok else -level[in_lobe].min())
            if best is None or key < best[0]:
                best = (key, w)
        out[k] = best[1]
    return out


def main() -> None:
    kwargs, drivers_m = settings()
    freqs = np.fft.rfftfreq(N_FFT, 1 / FS)
    bins = np.arange(1, freqs.size, NAIVE_STEP)
    print(f"Aurora 5 point-source plant, {drivers_m.shape[0]} drivers, F = {freqs.size} bins, "
          f"{len(DEFAULT_LOBE_WEIGHTS)} main-lobe weights x {N_ITER}-step bisection")
    for step in (5.0, 1.0):
        az = np.arange(-180.0, 180.0, step)
        plant = point_source_arc(freqs, az, drivers_m)
        times, cpu = [], []
        for _ in range(REPEATS):
            t0, c0 = time.perf_counter(), time.process_time()
            design = design_beamformer(plant, az, freqs, **kwargs)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t_vec = float(np.median(times))
        line = (f"A = {az.size:3d} azimuths: design_beamformer {t_vec:6.2f} s wall, {np.median(cpu):6.2f} s CPU "
                f"(median of {REPEATS})")
        if step == 5.0:
            t0 = time.perf_counter()
            ref = naive_beam(plant, az, freqs, bins, **kwargs)
            t_loop = (time.perf_counter() - t0) * (freqs.size - 1) / bins.size  # wall, like t_vec
            err = np.max(np.abs(design.H[bins, :, 0] - ref), axis=1) / np.max(np.abs(ref), axis=1)
            line += (f"; naive loop {t_loop:6.1f} s (scaled from {bins.size} bins), {t_loop / t_vec:.0f}x; "
                     f"filters agree within 1e-6 on {np.mean(err <= 1e-6):.0%} of those bins "
                     f"(median error {np.median(err):.1e})")
        print(line)


if __name__ == "__main__":
    main()
