"""Benchmark and must-show of issue 17: listener-tracked CTC over a listening area.

On the virtual lab, one Aurora 5 unit measured with ``procedures/aurora5_area.toml``
(the coarse 3 x 3 x 3 dummy-head grid of its ``[listening_area]``: +-25 cm
lateral, +-15 cm depth, yaw +-20 deg; turntable at 30 deg steps here, which the
CTC does not use) and fitted (``calib fit``: the fixed filters and the bank of
400 cells). Printed:

1. fit time: the whole fit, and the bank alone (CPU seconds);
2. interpolation error of the measured grid against the simulator's truth,
   halfway between measured positions (normalized, 500 Hz - 6 kHz);
3. cancellation (median over the target's third-octave bands, worse input) at
   30 random positions inside the area, none a grid point: tracked (each
   position through its cell) against the fixed calibration at the same positions;
4. the map over the area at yaw 180 deg (7 x 21 points, mostly between cells), fixed
   against tracked (``--map FILE.png`` draws it, cells drawn);
5. render cost: the tracked convolver (a head crossing the area at 0.5 m/s,
   1024-sample blocks) against the fixed overlap-save convolver, CPU seconds per
   second of audio.

Run: ``python bench/bench_tracked.py [--map area.png]``  (about 10 CPU minutes: the bank is 400 CTC designs)
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

import calib.stages.fit as fit_module
from calib.geometry import HeadPosition
from calib.procedure.air import recorded_speed_of_sound
from calib.render.in_memory import effective_fir
from calib.render.stream import OverlapSave
from calib.render.tracked import TrackedConvolver
from calib.report.area_map import area_map_figure
from calib.rig.virtual_lab import unit_device
from calib.sim.lab import EarReceiver, VirtualLab
from calib.solve.area import cell_index, interpolate_ear_tfs
from calib.stages.fit import fit_measurement, procedure_of
from calib.stages.gating import gated_binaural, measurement_gates
from calib.stages.measure import measure_unit
from calib.stages.tracked import (
    area_grid,
    band_cancellation_db,
    cancellation_map,
    driver_geometry_m,
    fit_bank,
    grid_ear_tfs,
)
from calib.store.measurement import read_measurement

PROCEDURE = Path(__file__).resolve().parents[1] / "procedures" / "aurora5_area.toml"
SERIAL, N_POSITIONS, SEED = "SN-AREA", 30, 17
BLOCK, AUDIO_S = 1024, 5.0


def main(map_png: str | None = None) -> None:
    text = re.sub(r"(?m)^step_deg = .*$", "step_deg = 30.0", PROCEDURE.read_text(), count=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aurora5_area.toml"
        path.write_text(text)
        t = time.process_time()
        measurement = measure_unit(str(path), SERIAL, "sim", str(Path(tmp) / "m"), resume=False)
        print(f"measure (sim, 36 head positions, MESM 2 s): {time.process_time() - t:.1f} s CPU")
        meas = read_measurement(measurement)
        bank_timing: dict[str, object] = {}

        def timed_bank(*args, **kwargs):
            start = time.process_time()
            bank_timing["fit"] = fit_bank(*args, **kwargs)
            bank_timing["s"] = time.process_time() - start
            return bank_timing["fit"]

        fit_module.fit_bank = timed_bank
        t = time.process_time()
        fit = fit_measurement(meas)
        fit_s = time.process_time() - t
        fit_module.fit_bank = fit_bank
    cal, proc = fit.calibration, procedure_of(meas)
    area = proc.listening_area
    fs, c = cal.sample_rate, recorded_speed_of_sound(meas.attrs)

    # The grid spectra the fit used (for the interpolation check below).
    n_fft = int(2 ** np.ceil(np.log2(max(meas.ir_length, proc.fit.taps) * 2)))
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    grid_tfs = grid_ear_tfs(proc, meas, gated_binaural(meas, measurement_gates(meas, proc)), n_fft)
    bank_fit, bank_s = bank_timing["fit"], float(bank_timing["s"])
    print(f"fit: {fit_s:.1f} s CPU in all; the bank of {cal.area.n_cells} cells {bank_s:.1f} s "
          f"({bank_s / cal.area.n_cells * 1e3:.0f} ms per cell); fixed filters and beam {fit_s - bank_s:.1f} s")
    print(
        f"bank design: median over cells of the design's worst cancellation {np.median(bank_fit.median_cg_db):.1f} dB"
    )

    lab = VirtualLab(unit_device(proc, SERIAL), fs, n_ir=proc.sim.true_ir_length, speed_of_sound=c)

    def truth(xyz, yaws):
        heads = [
            HeadPosition(f"h{i}", tuple(float(v) for v in p), float(w))
            for i, (p, w) in enumerate(zip(xyz, yaws, strict=True))
        ]
        irs = lab.true_irs([EarReceiver(h, e) for h in heads for e in (0, 1)])
        return irs.reshape(len(heads), 2, *irs.shape[1:])

    # Interpolation halfway between measured positions (every axis at once), against the truth.
    grid = area_grid(proc)
    half = [(grid.x_m[0] + grid.x_m[1]) / 2, (grid.x_m[1] + grid.x_m[2]) / 2]
    mid_y = [(grid.y_m[0] + grid.y_m[1]) / 2, (grid.y_m[1] + grid.y_m[2]) / 2]
    mid_w = [(grid.yaw_deg[0] + grid.yaw_deg[1]) / 2, (grid.yaw_deg[1] + grid.yaw_deg[2]) / 2]
    xyz = np.array([[x, y, 0.0] for x in half for y in mid_y for _ in mid_w])
    yaws = np.array([w for _ in half for _ in mid_y for w in mid_w])
    est = interpolate_ear_tfs(freqs, grid_tfs, grid, driver_geometry_m(proc), xyz, yaws, c)
    # The rig records full scale per pascal: the truth in the measurement's units.
    true_tf = proc.sim.noise.input_fs_per_pa * np.moveaxis(np.fft.rfft(truth(xyz, yaws), n_fft), -1, 0)  # [F, P, 2, S]
    band = (freqs >= 500) & (freqs <= 6000)
    err = 10 * np.log10(np.sum(np.abs(est - true_tf)[band] ** 2, axis=(0, 2, 3))
                        / np.sum(np.abs(true_tf[band]) ** 2, axis=(0, 2, 3)))
    print(f"interpolation halfway ({len(err)} positions): normalized error {np.median(err):.1f} dB median, "
          f"{np.max(err):.1f} dB worst (500 Hz - 6 kHz; the measured grid against the truth)")

    # 30 random positions inside the area, none on the grid.
    rng = np.random.default_rng(SEED)
    x0, y0, z0 = area.centre_m
    pos = np.column_stack([x0 + rng.uniform(-1, 1, N_POSITIONS) * area.depth_m,
                           y0 + rng.uniform(-1, 1, N_POSITIONS) * area.lateral_m, np.full(N_POSITIONS, z0)])
    yaw = area.yaw_deg + rng.uniform(-1, 1, N_POSITIONS) * area.yaw_range_deg
    irs = truth(pos, yaw)
    cells = cell_index(cal.area.centres_m, cal.area.yaw_deg, cal.area.half_size, pos, yaw)
    target_band = proc.targets.cancellation.band_hz()
    tracked = np.median(band_cancellation_db(irs, cal.area.fir[cells], fs, target_band), axis=-1).min(axis=0)
    fixed = np.median(band_cancellation_db(irs, cal.fir[:2], fs, target_band), axis=-1).min(axis=0)
    print(f"cancellation at {N_POSITIONS} random positions (median over bands, worse input):")
    print(f"  tracked: median {np.median(tracked):.1f} dB, worst {tracked.min():.1f} dB, "
          f"{np.sum(tracked >= 15.0)}/{N_POSITIONS} >= 15 dB")
    print(f"  fixed:   median {np.median(fixed):.1f} dB, worst {fixed.min():.1f} dB, "
          f"{np.sum(fixed >= 15.0)}/{N_POSITIONS} >= 15 dB")
    print(
        "  per position (x, y, yaw: tracked / fixed dB): "
        + "; ".join(
            f"{p[0]:.2f},{p[1]:+.2f},{w:.0f}: {a:.1f}/{b:.1f}"
            for p, w, a, b in zip(pos, yaw, tracked, fixed, strict=True)
        )
    )

    # The map over the area (yaw 180 deg), fixed against tracked; hidden positions between cells.
    amap = cancellation_map(proc, cal.fir[:2], cal.area, truth, fs)
    print(f"map at yaw {amap.yaw_deg:g} deg ({amap.tracked_db.size} points, {amap.x_m.size} depth x "
          f"{amap.y_m.size} lateral): tracked median {np.median(amap.tracked_db):.1f} dB, "
          f"{100 * np.mean(amap.tracked_db >= 15):.0f}% >= 15 dB; fixed median {np.median(amap.fixed_db):.1f} dB, "
          f"{100 * np.mean(amap.fixed_db >= 15):.0f}% >= 15 dB")
    if map_png is not None:
        area_map_figure(amap, cal.area, float(proc.targets.cancellation.curve_hz_db[-1][1])).savefig(map_png, dpi=120)
        print(f"map written to {map_png}")

    # Render cost: tracked convolver (head crossing the area) against the fixed one.
    n_blocks = int(AUDIO_S * fs) // BLOCK
    inputs = 0.1 * rng.standard_normal((3, n_blocks * BLOCK))
    ys = np.linspace(-area.lateral_m, area.lateral_m, n_blocks)  # 0.5 m in AUDIO_S seconds: 0.1 m/s
    conv = TrackedConvolver(cal, BLOCK)
    t = time.process_time()
    for i in range(n_blocks):
        conv.push(inputs[:, i * BLOCK:(i + 1) * BLOCK], np.array([x0, ys[i], z0]), area.yaw_deg)
    tracked_s = time.process_time() - t
    fixed_conv = OverlapSave(effective_fir(cal), conv.nfft)
    t = time.process_time()
    for i in range(n_blocks):
        fixed_conv.push(inputs[:, i * BLOCK:(i + 1) * BLOCK])
    fixed_s = time.process_time() - t
    switches = int(np.sum(np.diff(conv.cells) != 0))
    print(f"render ({AUDIO_S:g} s of audio, {BLOCK}-sample blocks, {switches} cell switches): tracked "
          f"{tracked_s / AUDIO_S * 1e3:.0f} ms CPU per s, fixed {fixed_s / AUDIO_S * 1e3:.0f} ms per s "
          f"(x{tracked_s / fixed_s:.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", dest="map_png", default=None, help="also write the area map (PNG) here")
    main(parser.parse_args().map_png)
