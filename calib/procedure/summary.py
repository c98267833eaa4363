"""A human-readable summary of a procedure (``calib check``)."""

from __future__ import annotations

from calib.procedure.spec import Procedure


def _fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def summarize(proc: Procedure, estimated_s: float | None = None, room_lines: list[str] | None = None,
              production: tuple[Procedure, float] | None = None) -> str:
    """Drivers, channel maps, grid, positions, targets and the estimated station time per unit.

    ``production``: the production variant (:mod:`calib.procedure.production`) and its estimate.
    """
    ch = proc.channels
    grid = proc.turntable.grid_deg()
    lines = [
        f"{proc.product.name} ({proc.product.id})  [{proc.source_path}]",
        f"  sample rate     {proc.audio.sample_rate} Hz",
        f"  drivers         {len(proc.drivers)}: "
        + ", ".join(f"{d.name}->out {ch.outputs[d.name]}" for d in proc.drivers),
        "  microphones     "
        + ", ".join(f"{m.name} (el {m.elevation_deg:g} deg)->in {ch.mics[m.name]}" for m in proc.mics)
        + f" on a {proc.arc.distance_m:g} m arc",
        f"  dummy head      left ear->in {ch.ears.left}, right ear->in {ch.ears.right}",
        "  loopback        "
        + (
            f"out {ch.loopback.output} -> in {ch.loopback.input}"
            if ch.loopback
            else "NONE (IRs not latency-referenced)"
        ),
        f"  azimuths        {len(grid)} from {grid.min():g} to {grid.max():g} deg",
        "  positions       "
        + ", ".join(
            f"{p.name} ({'design' if p.design else ''}{'+' if p.design and p.verify else ''}"
            f"{'verify' if p.verify else ''})"
            for p in proc.positions
        ),
        f"  sweep           {proc.sweep.band_hz[0]:g}-{proc.sweep.band_hz[1]:g} Hz, {proc.sweep.duration_s:g} s, "
        f"{proc.sweep.level_dbfs:g} dBFS, {proc.sweep.schedule}, IR {proc.sweep.ir_length} samples",
    ]
    cg = proc.targets.cancellation
    lines.append(
        "  target CTC      "
        + ", ".join(f"{f:g} Hz: {db:g} dB" for f, db in cg.curve_hz_db)
        + f" (tolerance {cg.tolerance_db:g} dB)"
        + (f"; holdout median >= {cg.holdout_median_min_db:g} dB" if cg.holdout_median_min_db is not None else "")
    )
    if proc.targets.beam is not None:
        b = proc.targets.beam
        lines.append(
            f"  target beam     nulls at +-{b.null_deg:g} deg >= {b.null_depth_min_db:g} dB in "
            f"{b.band_hz[0]:g}-{b.band_hz[1]:g} Hz; "
            f"main lobe >= {b.main_lobe_min_db:g} dB within +-{b.main_lobe_deg:g} deg"
            + (
                f"; sector {b.null_sector_deg[0]:g}-{b.null_sector_deg[1]:g} deg >= {b.sector_rejection_min_db:g} dB"
                if b.null_sector_deg is not None
                else ""
            )
        )
    if proc.targets.effort is not None:
        lines.append(f"  target effort   <= {proc.targets.effort.max_db:g} dB")
    lines += room_lines or []
    if estimated_s is not None:
        lines.append(f"  estimated time  {_fmt_duration(estimated_s)} per unit (measure + verify, turntable included)")
    if production is not None:
        variant, seconds = production
        sw = variant.sweep
        characterized = sum(p.characterize for p in variant.positions)
        lines.append(
            f"  production      {_fmt_duration(seconds)} per unit: {len(variant.turntable.grid_deg())} azimuths, "
            f"{characterized} of {len(variant.positions)} positions characterized, {sw.duration_s:g} s sweep, "
            f"IR {sw.ir_length} samples, MESM {sw.mesm_clear} clear"
            + (f", THD sweep {sw.thd_sweep_s:g} s" if sw.thd_sweep_s is not None else "")
        )
    return "\n".join(lines)
