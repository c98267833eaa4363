"""``calib measure``, ``calib inspect`` and ``calib devices``."""

from __future__ import annotations

from pathlib import Path

import click

from calib.cli.output import progress_bars, say
from calib.cli.validate import SERIAL, check_folder
from calib.errors import CalibError

RIG_HELP = "sim (default: the virtual lab), replay:FILE.h5, or portaudio"


def parse_faults(values: tuple[str, ...]):
    """``--sim-fault dead=tweeter --sim-fault reversed=woofer`` as a SimFaults."""
    from calib.procedure.spec import SimFaults

    return SimFaults.from_flags(values)


def check_measure_inputs(procedure: str, station: str | None, out_dir: str, rig_spec: str) -> None:
    """Everything a measurement depends on, checked before any folder is made (one line, exit 2).

    The procedure, the station, the output folder, and whether the room the
    rig measures in can support the product's target bands
    (:func:`calib.stages.measure.check_measure_inputs`).
    """
    from calib.stages.measure import check_measure_inputs as check_inputs

    check_inputs(procedure, rig_spec, station)
    check_folder(out_dir, "--out")


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False))
@click.option("--serial", required=True, type=SERIAL, help="Unit serial number (names the output folder).")
@click.option("--rig", "rig_spec", default="sim", show_default=True, help=RIG_HELP)
@click.option("--out", "out_dir", default="measurements", show_default=True, help="Output folder.")
@click.option("--resume", is_flag=True, help="Continue the newest incomplete measurement of this unit.")
@click.option("--station", type=click.Path(dir_okay=False), help="Station file (channel maps, hardware).")
@click.option("--sim-fault", "faults", multiple=True,
              help="Simulated fault: dead=DRIVER or reversed=DRIVER (added to the procedure's [sim.faults]).")
def measure(procedure: str, serial: str, rig_spec: str, out_dir: str, resume: bool, station: str | None,
            faults: tuple[str, ...]) -> None:
    """Characterize one unit: sweeps through every driver at every azimuth and head position."""
    from calib.stages.measure import measure_unit
    from calib.stages.recovery import screen_measurements, unit_lock

    fault_model = parse_faults(faults) if faults else None
    check_measure_inputs(procedure, station, out_dir, rig_spec)
    with unit_lock(out_dir, serial):
        if resume:
            screen_measurements(out_dir, serial, "characterize")  # what does not validate is set aside
        path = measure_unit(procedure, serial, rig_spec, out_dir, resume, fault_model, station, progress_bars())
    say(f"measurement: {path}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def inspect(file: str) -> None:
    """Show what a measurement or calibration file holds."""
    from calib.store.measurement import file_format

    path = Path(file)
    if file_format(path) == "calib-calibration":
        click.echo(describe_calibration(path))
    else:
        click.echo(describe_measurement(path))


def describe_measurement(path: Path) -> str:
    """Return serial, stage, grids, quality summary and completeness of a measurement file."""
    import numpy as np  # here, not at the top: ``calib --help`` stays free of numpy

    from calib.store.measurement import read_measurement

    m = read_measurement(path)
    lines = [
        f"{path}",
        f"  format       calib-measurement v{m.attrs.get('version')}  ({m.software}, {m.created_utc})",
        f"  serial       {m.serial}    stage {m.stage}    rig {m.rig}{'  (SIMULATED)' if m.simulated else ''}",
        f"  sample rate  {m.sample_rate} Hz    IR length {m.ir_length} samples",
        f"  sources      {', '.join(m.sources)}",
        f"  azimuths     {len(m.azimuth_deg)} ({int(m.directivity_done.sum())} measured)"
        + (f", {m.azimuth_deg.min():g} to {m.azimuth_deg.max():g} deg" if len(m.azimuth_deg) else ""),
        f"  microphones  {', '.join(m.receivers)}",
        f"  positions    {len(m.positions)} ({int(m.binaural_done.sum())} measured): "
        + ", ".join(p.name for p in m.positions),
        f"  procedure    sha256 {m.procedure_sha256[:16]}...",
    ]
    for group in ("directivity", "binaural"):
        q = m.quality[group]
        done = m.directivity_done if group == "directivity" else m.binaural_done
        if not done.any():
            continue
        snr = q["snr_db"][done]
        lines.append(
            f"  quality {group:<11} SNR {np.nanmin(snr):.1f}..{np.nanmax(snr):.1f} dB, "
            f"THD max {np.nanmax(q['thd_percent'][done]):.2f} %, peak max {np.nanmax(q['peak_dbfs'][done]):.1f} dBFS, "
            f"retries {int(q['retries'][done].sum())}"
        )
    if m.reflections:
        lines += describe_reflections(m)
    missing = int((~m.directivity_done).sum() + (~m.binaural_done).sum())
    lines.append(f"  complete     {'yes' if m.complete else f'NO ({missing} steps missing; continue with --resume)'}")
    lines.append("  data         finite in every measured step (checked)")
    if m.stage == "verify":
        from calib.stages.custody import check_custody

        chain = check_custody(path, m.attrs)  # a broken or edited chain is refused in one line
        lines.append(f"  custody      calibration {chain.calibration.name}, characterize {chain.characterize.name}: "
                     "seal and SHA-256 intact")
    return "\n".join(lines)


def describe_reflections(m) -> list[str]:
    """Reflection-free time per receiver: detected (and from the room geometry), and the gate it gives."""
    import numpy as np

    from calib.procedure.load import parse_procedure
    from calib.stages.gating import measurement_gates

    proc = parse_procedure(m.procedure_text, source=f"{m.path}:/procedure")
    gates = measurement_gates(m, proc)
    lines = []
    for group, names in (("directivity", m.receivers), ("binaural", ["ears"])):
        r = m.reflections[group]
        for i, name in enumerate(names):
            pick = (slice(None), i) if group == "directivity" else (slice(None),)
            free = np.asarray(r["first_s"][pick] - r["direct_s"][pick])
            detected = f"{np.nanmin(free) * 1e3:.2f} ms" if np.any(np.isfinite(free)) else "none"
            geo = ""
            if "geometric_first_s" in r:
                g = np.asarray(r["geometric_first_s"][pick] - r["geometric_direct_s"][pick])
                geo = f", geometry {np.nanmin(g) * 1e3:.2f} ms"
            gate = gates.of(group, i)
            lines.append(f"  reflections {name:<10} first after {detected} (detected{geo}); gate: {gate.describe()}")
    return lines


def exported_taps_line(cal) -> str:
    """Why ``calib export`` and ``calib render`` use longer filters than the design's taps."""
    from calib.render.in_memory import effective_fir

    tv = int(cal.virtualizer.shape[-1])
    n = int(effective_fir(cal).shape[-1])
    if tv == 1:
        return f"  exported     {n} taps per filter (one-tap virtualizer: as designed)"
    return (f"  exported     {n} taps per filter = {cal.taps} + {tv} - 1: the {tv}-tap virtualizer of L, R is "
            "folded into the FIRs (calib export, calib render)")


def describe_calibration(path: Path) -> str:
    """Return what a calibration file holds."""
    import numpy as np

    from calib.store.calibration import read_calibration

    cal = read_calibration(path)
    k, s, t = cal.fir.shape
    lines = [
        f"{path}",
        f"  format       calib-calibration  ({cal.software}, {cal.created_utc})",
        f"  serial       {cal.serial}    sample rate {cal.sample_rate} Hz",
        f"  inputs       {', '.join(cal.inputs)}    drivers {', '.join(cal.drivers)}",
        f"  filters      {k} x {s} FIRs of {t} taps",
        exported_taps_line(cal),
        f"  measurement  sha256 {cal.measurement_sha256[:16]}...",
    ]
    for name, value in sorted(cal.predicted.items()):
        arr = np.asarray(value)
        if arr.size == 1:
            lines.append(f"  predicted    {name} = {float(arr):.2f}")
    return "\n".join(lines)


@click.command()
def devices() -> None:
    """List the rigs available and, where PortAudio is installed, its devices."""
    click.echo("rigs:")
    click.echo("  sim                 the virtual lab (default): physics, noise, latency, faults")
    click.echo("  replay:FILE.h5      acoustics from an archived measurement file")
    click.echo("  portaudio           a real audio interface (python-sounddevice)")
    from calib.rig.turntables import TURNTABLE_DRIVERS

    click.echo("turntable drivers (station [turntable] driver):")
    for name, note in TURNTABLE_DRIVERS.items():
        click.echo(f"  {name:<19} {note}")
    try:
        from calib.rig.portaudio import format_devices, list_devices

        click.echo("portaudio devices:")
        click.echo(format_devices(list_devices()))
    except CalibError as exc:
        click.echo(f"portaudio: unavailable: {exc}")
