"""Benchmark: measurement time per step in each room preset against free field, in one run.

The 5-driver Aurora 5 procedure with each ``[sim.room]`` preset (and
without): wall time per directivity step (turntable to a new azimuth, both
arc microphones: the simulator builds the image sources and the
directivity of every image) and per binaural step (a new head position: the
rigid-sphere series for every image source), each on a fresh lab so that no
cached IR is reused, plus the detection of the reflections over the steps
measured and the ratio to free field, in CPU seconds (the machine may be shared). The baseline row "typical_lab, exact
series" evaluates the sphere series on every bin instead of the coarse grid
the lab interpolates (``calib.sim.lab.SPHERE_GRID_HZ``). Also prints each room's gates (the
reflection-free time and the lowest frequency it supports) from the geometry.

Run: ``python bench/bench_rooms.py``
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import calib.sim.lab
from calib.capture.plan import plan_characterize
from calib.capture.schedule import capture_step
from calib.procedure.load import parse_procedure
from calib.rig.virtual_lab import open_sim_rig
from calib.stages.gating import detect_group, predicted_gates

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5.toml"
ROOMS = (None, "treated_booth", "typical_lab", "bare_room")
AZIMUTHS_DEG = (0.0, 45.0, 90.0, 180.0)
N_POSITIONS = 3
SERIAL = "SN-BENCH-ROOM"


def time_steps(room: str | None) -> tuple[float, float, float, str]:
    """Seconds per directivity step, per binaural step, detection per step, and the gates' summary."""
    text = PROCEDURE.read_text() + ("" if room is None else f'\n[sim.room]\npreset = "{room}"\n')
    proc = parse_procedure(text, source=f"aurora5+{room}")
    plan = plan_characterize(proc)
    calib.sim.lab._SHARED_IRS.clear()  # time the physics: no IR computed by an earlier row
    rig = open_sim_rig(proc, SERIAL)
    irs = {"directivity": [], "binaural": []}
    t0 = time.process_time()
    for az in AZIMUTHS_DEG:
        rig.turntable.move_to(-az)
        irs["directivity"].append(capture_step(plan, rig.audio, plan.mic_inputs, plan.level_dbfs).ir)
    t_dir = (time.process_time() - t0) / len(AZIMUTHS_DEG)
    rig.turntable.move_to(0.0)
    t0 = time.process_time()
    for position in plan.positions[:N_POSITIONS]:
        rig.positioner.place(position)
        irs["binaural"].append(capture_step(plan, rig.audio, list(plan.ear_inputs), plan.level_dbfs).ir)
    t_bin = (time.process_time() - t0) / N_POSITIONS
    t0 = time.process_time()
    for group, steps in irs.items():
        detect_group(np.stack(steps), plan.sample_rate, group, proc.gate)
    t_detect = (time.process_time() - t0) / (len(AZIMUTHS_DEG) + N_POSITIONS)
    gates = predicted_gates(proc, proc.sim.room if proc.sim else None)
    summary = "free field: ungated" if gates is None else (
        f"arc_0 {gates.directivity[0].describe()}; ears {gates.binaural.describe()}")
    return t_dir, t_bin, t_detect, summary


def main() -> None:
    rows = {room: time_steps(room) for room in ROOMS}
    grid = calib.sim.lab.SPHERE_GRID_HZ
    calib.sim.lab.SPHERE_GRID_HZ = 0.0  # the series on every bin: the speed before this change
    try:
        rows["typical_lab, exact series"] = time_steps("typical_lab")
    finally:
        calib.sim.lab.SPHERE_GRID_HZ = grid
    print(f"Aurora 5, 5 drivers; {len(AZIMUTHS_DEG)} directivity steps (2 arc mics) and {N_POSITIONS} head positions "
          "per room, each on a fresh lab (no cached IRs)\n")
    head = f"{'room':<27}{'dir step s':>11}{'x free':>8}{'bin step s':>11}{'x free':>8}{'detect/step s':>15}"
    print(head)
    print("-" * len(head))
    free = rows[None]
    for room, (t_dir, t_bin, t_det, _) in rows.items():
        print(f"{room or 'free field':<27}{t_dir:>11.3f}{t_dir / free[0]:>8.2f}{t_bin:>11.3f}{t_bin / free[1]:>8.2f}"
              f"{t_det:>15.3f}")
    print()
    for room, (*_, summary) in rows.items():
        print(f"{room or 'free field':<27}{summary}")


if __name__ == "__main__":
    main()
