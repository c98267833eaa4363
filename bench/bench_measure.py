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

Run: ``python bench/bench_measure.py``
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from calib.capture.plan import MeasurementPlan, plan_characterize
from calib.capture.schedule import capture_seconds, capture_step, turntable_travel_deg
from calib.procedure import load_procedure
from calib.rig.factory import mic_receivers, open_sim_rig
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


def measure_errors(proc, plan: MeasurementPlan) -> tuple[np.ndarray, float, float]:  # noqa: ANN001
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


def power_mean_db(errors_db: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(10 ** (errors_db / 10))))


def main() -> None:
    proc = load_procedure(PROCEDURE)
    base = plan_characterize(proc)
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
