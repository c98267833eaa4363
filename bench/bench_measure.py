"""Benchmark: sequential sweeps vs MESM for the 5-driver Aurora 5, at equal IR error.

Physical time: what the station spends playing and recording to characterize
one unit (every azimuth of the procedure's grid and every head position),
from :func:`calib.capture.schedule.capture_seconds`; the turntable time (same
for both schedules) is shown separately. IR error: the measured IRs of a few
steps (azimuths 0, 90, 180 deg at both arc mics, the centre head position at
both ears) against the virtual lab's true IRs, as energy of the difference
over energy of the truth in the sweep band; reported as the power mean over
all those IRs (and the worst one). If MESM's mean error is more than 1 dB
worse than sequential's, its sweep is lengthened until they agree within
1 dB, and the time ratio is taken at that length. Wall time per step: the
whole capture_step (simulator included) and the engine's own processing
(deconvolution, harmonic separation, quality) without the simulator's playrec.

Per-step processing before and after (issue 13), in the same run: the MESM
capture step's CPU time split into excitation (building the output block),
the simulator's playrec and the engine's processing; "before" swaps back the
former excitation (an FFT convolution of every source with its one-tap feed)
and the former simulator (the oversampled nonlinearity on every output and
sample, silent ones included); the IRs of both agree.

Per-step engine cost of the per-band THD and noise (issue 15), before and after in the same run: "before"
swaps back the scalar THD alone and no noise spectrum.

Distortion and filtering kernels before and after (this stop of issue 13), in the same run: the
simulator's distortion at 3x the rate (former) and 2x, and a sweep through a calibration's filters by
oaconvolve per pair (former) and by overlap-save summed per bin.

Run: ``python bench/bench_measure.py`` (``--kernels-only``: just the kernels; ``--spectra-only``: the kernels
and the spectra's cost; ``--steps-only``: those and the before/after per step)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from calib.capture.plan import MeasurementPlan, plan_characterize
from calib.capture.schedule import capture_seconds, capture_step, quality_bands, turntable_travel_deg
from calib.procedure import load_procedure
from calib.rig.virtual_lab import mic_receivers, open_sim_rig
from calib.sim.lab import EarReceiver

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
SERIAL = "SN-BENCH-1"
AZIMUTHS_DEG = (0.0, 90.0, 180.0)
TOLERANCE_DB = 1.0
LENGTHEN = 1.25  # MESM sweep duration factor per attempt
MAX_ATTEMPTS = 8


def band_error_db(measured: np.ndarray, truth: np.ndarray, band_hz: tuple[float, float], fs: int) -> np.ndarray:
    """10 log10(sum |M - T|^2 / sum |T|^2) over the rfft bins in the band, per IR."""
    freqs = np.fft.rfftfreq(truth.shape[-1], 1.0 / fs)
    k = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    diff = np.fft.rfft(measured - truth, axis=-1)[..., k]
    ref = np.fft.rfft(truth, axis=-1)[..., k]
    return 10 * np.log10(np.sum(np.abs(diff) ** 2, -1) / np.sum(np.abs(ref) ** 2, -1))


def measure_errors(proc, plan: MeasurementPlan) -> tuple[np.ndarray, float, float]:
    """IR errors (dB) at the benchmark steps, wall seconds per step, and the simulator's share."""
    rig = open_sim_rig(proc, SERIAL)
    audio = rig.audio
    sim_s = [0.0]
    play = audio.playrec

    def timed(signal: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = play(signal)
        sim_s[0] += time.perf_counter() - t0
        return out

    audio.playrec = timed  # type: ignore[method-assign]
    gain = audio.noise.input_fs_per_pa
    n = plan.ir_length
    errors, wall = [], 0.0
    steps = [("mic", az) for az in AZIMUTHS_DEG] + [("ears", plan.positions[0])]
    for kind, where in steps:
        if kind == "mic":
            rig.turntable.move_to(-where)
            receivers, inputs = mic_receivers(proc), plan.mic_inputs
            truth = audio.lab.true_irs(receivers, -where)
        else:
            rig.turntable.move_to(0.0)
            rig.positioner.place(where)
            inputs = list(plan.ear_inputs)
            truth = audio.lab.true_irs([EarReceiver(where, 0), EarReceiver(where, 1)], 0.0)
        t0 = time.perf_counter()
        step = capture_step(plan, audio, inputs, plan.level_dbfs)
        wall += time.perf_counter() - t0
        errors.append(band_error_db(step.ir, truth[..., :n] * gain, plan.band_hz, plan.sample_rate).ravel())
    return np.concatenate(errors), wall / len(steps), sim_s[0] / len(steps)


def time_playrec(rig, play, split: dict[str, float]) -> None:
    """Make ``rig``'s playrec call ``play`` and add its CPU seconds to ``split["playrec"]``."""

    def timed_play(signal):
        t0 = time.process_time()
        out = play(signal)
        split["playrec"] += time.process_time() - t0
        return out

    rig.audio.playrec = timed_play


def per_step_before_after(proc, plan: MeasurementPlan, repeats: int = 3) -> None:
    """CPU seconds per step, split by stage, with the former excitation and nonlinearity and now."""
    import scipy.signal

    import calib.capture.schedule as schedule
    import calib.rig.sim as sim

    def former_excitation(x: np.ndarray, feeds: np.ndarray) -> np.ndarray:
        return scipy.signal.oaconvolve(x[:, None, :], feeds, axes=-1)[..., : x.shape[-1]].sum(axis=0)

    def former_everywhere(x: np.ndarray, out_driver: np.ndarray) -> tuple[np.ndarray, int, int]:
        return np.flatnonzero(out_driver >= 0), 0, x.shape[-1]

    variants = {
        "before": (former_excitation, former_everywhere),
        "now": (schedule.excitation_block, sim._where_drivers_play),
    }
    figures, irs = {}, {}
    for name, (excite, where) in variants.items():
        schedule.excitation_block, sim._where_drivers_play = excite, where
        split = {"excitation": 0.0, "playrec": 0.0}

        def timed_excite(x, feeds, excite=excite, split=split):
            t0 = time.process_time()
            out = excite(x, feeds)
            split["excitation"] += time.process_time() - t0
            return out

        schedule.excitation_block = timed_excite
        rig = open_sim_rig(proc, SERIAL)
        time_playrec(rig, rig.audio.playrec, split)
        rig.turntable.move_to(0.0)
        t0 = time.process_time()
        for _ in range(repeats):
            irs[name] = capture_step(plan, rig.audio, plan.mic_inputs, plan.level_dbfs).ir
        total = (time.process_time() - t0) / repeats
        figures[name] = (total, split["excitation"] / repeats, split["playrec"] / repeats)
    schedule.excitation_block, sim._where_drivers_play = variants["now"]
    print(f"{plan.schedule} step, CPU seconds per step (mean of {repeats}; {len(plan.sources)} sources, "
          f"{len(plan.mic_inputs)} mics):")
    print(f"{'':<8}{'step':>8}{'excitation':>12}{'sim playrec':>13}{'engine':>9}")
    for name, (total, exc, play) in figures.items():
        print(f"{name:<8}{total:>8.3f}{exc:>12.4f}{play:>13.3f}{total - exc - play:>9.3f}")
    (b_tot, b_exc, b_play), (n_tot, n_exc, n_play) = figures["before"], figures["now"]
    diff = np.abs(irs["now"] - irs["before"]).max() / np.abs(irs["before"]).max()
    print(f"ratios now/before: excitation {n_exc / b_exc:.2f}x, sim playrec {n_play / b_play:.2f}x, "
          f"engine share of the step {(b_tot - b_exc - b_play) / b_tot:.0%} -> {(n_tot - n_exc - n_play) / n_tot:.0%}; "
          f"IRs agree within {diff:.1e} of peak (the simulator's noise is seeded per state and call)\n")


def spectra_before_after(proc, plan: MeasurementPlan, repeats: int = 3) -> None:
    """Engine CPU seconds per step without and with the per-band THD and noise (issue 15).

    "before" swaps back the former processing: the step's scalar THD only (one band) and no noise spectrum;
    the reference's rfft the noise needs stays in both (its share is printed apart).
    """
    import scipy.fft

    import calib.capture.schedule as schedule

    def former_thd(linear, harmonics, lower, upper, fs, f_max_hz=None):
        one = schedule_thd(linear, harmonics, lower[:1], upper[:1], fs, f_max_hz)
        return np.concatenate([one, np.full(one.shape[:-1] + (len(lower) - 1,), np.nan)], axis=-1)

    def no_noise(ir_full, window, ref_power, n_rec, lower, upper, fs):
        return np.full(np.shape(ir_full)[:-1] + (len(lower),), np.nan)

    schedule_thd, schedule_noise = schedule.thd_bands_percent, schedule.noise_band_power
    rig = open_sim_rig(proc, SERIAL)
    play = rig.audio.playrec
    figures = {}
    for name, (thd, noise) in {"before": (former_thd, no_noise), "now": (schedule_thd, schedule_noise)}.items():
        schedule.thd_bands_percent, schedule.noise_band_power = thd, noise
        split = {"playrec": 0.0}
        time_playrec(rig, play, split)
        rig.turntable.move_to(0.0)
        t0 = time.process_time()
        for _ in range(repeats):
            capture_step(plan, rig.audio, plan.mic_inputs, plan.level_dbfs)
        figures[name] = ((time.process_time() - t0) - split["playrec"]) / repeats
    schedule.thd_bands_percent, schedule.noise_band_power = schedule_thd, schedule_noise
    n_fft = scipy.fft.next_fast_len(int(schedule.capture_seconds(plan) * plan.sample_rate), real=True)
    t0 = time.process_time()
    for _ in range(10):
        scipy.fft.rfft(np.zeros(n_fft))
    rfft_s = (time.process_time() - t0) / 10
    captures = 1 if plan.schedule == "mesm" else len(plan.sources)
    print(f"{plan.schedule} step, engine CPU seconds per step without the simulator (mean of {repeats}): "
          f"before {figures['before']:.3f}, now {figures['now']:.3f} "
          f"(+{figures['now'] - figures['before']:.3f} s, {figures['now'] / figures['before'] - 1:+.0%}; "
          f"{len(quality_bands(plan))} bands; the reference rfft the noise needs, in both: "
          f"~{captures} x {rfft_s * 1e3:.1f} ms)")


def kernels_before_after(plan: MeasurementPlan, repeats: int = 3) -> None:
    """CPU seconds of the simulator's distortion and of a sweep through a calibration's filters, former and now.

    The distortion on every driver of one MESM step (the sweep at its offsets): computed at 3x the rate
    (the former code) and at 2x (:func:`calib.sim.driver.nonlinearity_band_limited`). The sweep through
    an Aurora 5's effective filters (3 inputs -> 5 drivers, 2303 taps, as the verify plan plays it):
    :func:`scipy.signal.oaconvolve` per pair then summed (the former code) and
    :func:`calib.signals.mesm.excitation_block` (overlap-save, summed per bin). Least of ``repeats``.
    """
    import scipy.signal

    from calib.signals.mesm import excitation_block, mesm_excitation
    from calib.signals.sweep import extended_range, synchronized_sweep
    from calib.sim.driver import nonlinearity_band_limited

    fs = plan.sample_rate
    sweep = synchronized_sweep(*extended_range(*plan.band_hz, fs), plan.duration_s, fs, level_dbfs=plan.level_dbfs)
    x = mesm_excitation(sweep, len(plan.sources), int(0.5 * fs))  # [S, N]: one MESM step's driver signals
    h2, h3 = np.full((x.shape[0], 1), 0.01), np.full((x.shape[0], 1), 0.005)

    def former_nonlinearity() -> np.ndarray:
        up = scipy.signal.resample_poly(x, 3, 1, axis=-1)
        return x + scipy.signal.resample_poly(h2 * up * up + h3 * up**3, 1, 3, axis=-1)[..., : x.shape[-1]]

    def least(fn) -> tuple[float, np.ndarray]:
        best, out = np.inf, None
        for _ in range(repeats):
            t0 = time.process_time()
            out = fn()
            best = min(best, time.process_time() - t0)
        return best, out

    t_old, y_old = least(former_nonlinearity)
    t_new, y_new = least(lambda: nonlinearity_band_limited(x, h2, h3))
    peak = np.abs(y_old - x).max()
    print(f"simulator distortion of one MESM step ({x.shape[0]} drivers x {x.shape[1]} samples), CPU s (least of "
          f"{repeats}): at 3x the rate {t_old:.3f}, at 2x {t_new:.3f} ({t_old / t_new:.2f}x faster); the two differ "
          f"by {np.abs(y_new - y_old).max() / peak:.1e} of the distortion's peak")

    rng = np.random.default_rng(0)
    taps = 2303
    feeds = 0.05 * rng.standard_normal((3, x.shape[0], taps)) * np.exp(-np.arange(taps) / (taps / 8))
    program = np.repeat(x[:1], 3, axis=0)  # [3, N]: the sweep on each input
    t_old, y_old = least(lambda: scipy.signal.oaconvolve(program[:, None, :], feeds, axes=-1)[..., : x.shape[-1]]
                         .sum(axis=0))
    t_new, y_new = least(lambda: excitation_block(program, feeds))
    print(f"sweep through filters (3 inputs -> {x.shape[0]} drivers, {taps} taps, {x.shape[1]} samples), CPU s: "
          f"oaconvolve per pair {t_old:.3f}, overlap-save summed per bin {t_new:.3f} ({t_old / t_new:.2f}x faster); "
          f"they differ by {np.abs(y_new - y_old).max() / np.abs(y_old).max():.1e} of peak\n")


def power_mean_db(errors_db: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(10 ** (errors_db / 10))))


def main() -> None:
    proc = load_procedure(PROCEDURE)
    base = plan_characterize(proc)
    kernels_before_after(base)
    if "--kernels-only" in sys.argv:
        return
    for schedule_name in ("mesm", "sequential"):  # sequential: 4 of 5 outputs silent in each capture
        spectra_before_after(proc, dataclasses.replace(base, schedule=schedule_name))
    if "--spectra-only" in sys.argv:
        return
    for schedule_name in ("mesm", "sequential"):
        per_step_before_after(proc, dataclasses.replace(base, schedule=schedule_name))
    if "--steps-only" in sys.argv:
        return
    n_steps = len(base.steps)
    tt = proc.turntable
    turntable_s = turntable_travel_deg(base.azimuths_deg) / tt.speed_deg_s + len(base.azimuths_deg) * tt.settle_s

    rows = {}
    seq = dataclasses.replace(base, schedule="sequential")
    rows["sequential"] = (seq, *measure_errors(proc, seq))
    mesm = dataclasses.replace(base, schedule="mesm")
    for _ in range(MAX_ATTEMPTS):
        rows["mesm"] = (mesm, *measure_errors(proc, mesm))
        if power_mean_db(rows["mesm"][1]) <= power_mean_db(rows["sequential"][1]) + TOLERANCE_DB:
            break
        mesm = dataclasses.replace(mesm, duration_s=mesm.duration_s * LENGTHEN)

    print(f"{proc.product.name}: {len(base.sources)} drivers, {len(base.azimuths_deg)} azimuths x "
          f"{len(base.mic_names)} mics, {len(base.positions)} head positions = {n_steps} steps; "
          f"sweep {base.band_hz[0]:g}-{base.band_hz[1]:g} Hz at {base.level_dbfs:g} dBFS, IR {base.ir_length} samples")
    print(f"IR error over {len(rows['sequential'][1])} IRs (azimuths {', '.join(f'{a:g}' for a in AZIMUTHS_DEG)} deg "
          f"at the mics, head '{base.positions[0].name}' at the ears)\n")
    head = (f"{'schedule':<11}{'sweep s':>8}{'step s':>8}{'unit s':>9}{'+table s':>10}{'err mean dB':>13}"
            f"{'err worst dB':>14}{'wall/step s':>13}{'engine/step s':>15}")
    print(head)
    print("-" * len(head))
    unit_s = {}
    for name, (plan, err, wall, sim) in rows.items():
        step_s = capture_seconds(plan)
        unit_s[name] = step_s * n_steps
        print(f"{name:<11}{plan.duration_s:>8.2f}{step_s:>8.2f}{unit_s[name]:>9.1f}{unit_s[name] + turntable_s:>10.1f}"
              f"{power_mean_db(err):>13.1f}{err.max():>14.1f}{wall:>13.3f}{wall - sim:>15.3f}")
    seq_s, mesm_s = unit_s["sequential"], unit_s["mesm"]
    print(f"\nMESM at equal IR error (within {TOLERANCE_DB:g} dB; sweep {rows['mesm'][0].duration_s:.2f} s): "
          f"{seq_s / mesm_s:.2f}x less capture time per unit ({seq_s / 60:.1f} -> {mesm_s / 60:.1f} min); "
          f"with the turntable ({turntable_s:.0f} s) {(seq_s + turntable_s) / (mesm_s + turntable_s):.2f}x")


if __name__ == "__main__":
    main()
