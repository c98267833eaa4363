"""Benchmark: sequential sweeps vs MESM with every IR clear vs MESM with only the linear IRs clear.

The 5-driver Aurora 5 on the virtual lab, the product's sweep (duration,
band, level). For each IR length (the lab's ``[sweep] ir_length`` and the
production's) and each harmonic order kept clear, one step's capture time
(:func:`calib.capture.schedule.capture_seconds`) and the linear-IR error
against the simulator's whole true IRs (azimuths 0, 90, 180 deg at both arc
mics and the centre head at both ears; energy of the difference over the
truth's in the sweep band, power mean and worst IR; the truth is not cut to
the IR length, so a short window pays its truncation).
``bound`` is the worst contamination bound the MESM steps reported
(:func:`calib.signals.mesm.contamination_bound_db`, dB re the linear IR).

Pass: ``mesm linear`` at >= 4x less capture time than sequential at the
same sweep and IR length, its mean error within 1 dB of the lab's (sequential
sweeps with the procedure's IR length, the first row): equal accuracy.

Run: ``python bench/bench_mesm.py``
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from bench_measure import AZIMUTHS_DEG, PROCEDURE, SERIAL, band_error_db, power_mean_db

import calib.capture.schedule as schedule
from calib.capture.plan import plan_characterize
from calib.capture.schedule import capture_step
from calib.procedure import load_procedure
from calib.rig.virtual_lab import mic_receivers, open_sim_rig
from calib.sim.lab import EarReceiver

TOLERANCE_DB = 1.0
TARGET_FACTOR = 4.0
IR_LENGTHS = (4096, 2048, 1536)  # the lab procedure's; shorter ones (the production variant's: 1536)
ORDERS = (4, 3)  # the procedure's n_harmonics, and the simulator's highest (its drivers are cubic)


def measure_errors(proc, plan) -> tuple[np.ndarray, float]:
    """Return the IR errors and the reported contamination bounds, in dB.

    IR errors (dB) against the whole true IRs at the benchmark steps, and the worst contamination bound
    (dB) the captures report.
    """
    rig = open_sim_rig(proc, SERIAL)
    audio = rig.audio
    errors, bounds = [], []
    for where in (*AZIMUTHS_DEG, plan.positions[0]):
        if isinstance(where, float):
            rig.turntable.move_to(-where)
            inputs, truth = plan.mic_inputs, audio.lab.true_irs(mic_receivers(proc), -where)
        else:
            rig.turntable.move_to(0.0)
            rig.positioner.place(where)
            inputs = list(plan.ear_inputs)
            truth = audio.lab.true_irs([EarReceiver(where, 0), EarReceiver(where, 1)], 0.0)
        step = capture_step(plan, audio, inputs, plan.level_dbfs)
        bounds.append(float(np.max(step.contamination_db)))
        padded = np.zeros(truth.shape)
        padded[..., : step.ir.shape[-1]] = step.ir
        errors.append(
            band_error_db(padded, truth * audio.noise.input_fs_per_pa, plan.band_hz, plan.sample_rate).ravel()
        )
    return np.concatenate(errors), max(bounds)


def main() -> None:
    t0 = time.process_time()
    proc = load_procedure(PROCEDURE)
    base = plan_characterize(proc)
    print(f"{proc.product.name}: {len(base.sources)} drivers, sweep {base.duration_s:g} s "
          f"{base.band_hz[0]:g}-{base.band_hz[1]:g} Hz at {base.level_dbfs:g} dBFS\n")
    head = (f"{'IR':>6}{'orders':>7}  {'schedule':<13}{'offsets (samples)':<36}{'step s':>8}{'factor':>8}"
            f"{'err mean dB':>12}{'err worst':>10}{'bound dB':>10}")
    print(head)
    print("-" * len(head))
    verdicts = []
    lab_err = None
    for ir_length in IR_LENGTHS:
        seq = dataclasses.replace(base, schedule="sequential", ir_length=ir_length)
        seq_err, _ = measure_errors(proc, seq)
        seq_s = schedule.capture_seconds(seq)
        lab_err = power_mean_db(seq_err) if lab_err is None else lab_err
        print(f"{ir_length:>6}{'':>7}  {'sequential':<13}{'':<36}{seq_s:>8.2f}{1.0:>8.2f}"
              f"{power_mean_db(seq_err):>12.1f}{seq_err.max():>10.1f}{'':>10}")
        for orders in ORDERS:
            for clear in ("all", "linear"):
                plan = dataclasses.replace(base, schedule="mesm", mesm_clear=clear, ir_length=ir_length,
                                           n_harmonics=orders)
                err, bound = measure_errors(proc, plan)
                step_s = schedule.capture_seconds(plan)
                offsets = schedule.source_offsets(plan, schedule.sweep_for(plan))
                factor = seq_s / step_s
                print(f"{'':>6}{orders:>7}  {'mesm ' + clear:<13}{str(offsets.tolist()):<36}{step_s:>8.2f}"
                      f"{factor:>8.2f}{power_mean_db(err):>12.1f}{err.max():>10.1f}{bound:>10.1f}")
                if clear == "linear":
                    verdicts.append((ir_length, orders, factor, power_mean_db(err) - lab_err))
    print()
    for ir_length, orders, factor, excess_db in verdicts:
        ok = factor >= TARGET_FACTOR and excess_db <= TOLERANCE_DB
        print(f"{'PASS' if ok else 'FAIL'}  IR {ir_length}, orders <= {orders} clear: mesm linear {factor:.2f}x "
              f"less capture time than sequential (>= {TARGET_FACTOR:g}x), mean error {excess_db:+.1f} dB "
              f"re the lab's (<= {TOLERANCE_DB:g} dB)")
    print(f"\nCPU {time.process_time() - t0:.0f} s")


if __name__ == "__main__":
    main()
