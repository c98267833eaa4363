"""``calib grid-study``: the production variant's calibration and verdict against the full lab grid."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("grid-study")
@click.argument("procedure", type=click.Path(dir_okay=False, path_type=str))
@click.option("--serial", "serials", multiple=True, required=True, help="Unit(s) to measure on the virtual lab.")
@click.option("--replay", "replays", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="An archived lab characterize file: its unit, replayed (repeatable).")
@click.option("--out", "out_dir", default="measurements/grid-study", show_default=True,
              help="Folder for the lab and production measurements.")
def grid_study(procedure: str, serials: tuple[str, ...], replays: tuple[str, ...], out_dir: str) -> int:
    """Measure PROCEDURE's lab grid and its [production] variant per unit and compare the calibrations.

    Both calibrations are judged on the lab measurement, check by check; exit 1
    if any check moved by more than 0.5 dB or the production verification failed.
    """
    from calib.errors import CalibError
    from calib.procedure import load_procedure
    from calib.serial import check_serial
    from calib.stages.grid_study import MAX_DELTA_DB, compare_grids
    from calib.store.measurement import read_measurement

    proc = load_procedure(procedure)
    if proc.production is None:
        raise CalibError(f"{procedure}: production: expected a [production] table (the variant to study)")
    results = [compare_grids(proc, check_serial(s, "--serial"), Path(out_dir) / s) for s in serials]
    for archive in replays:
        serial = read_measurement(archive, stage="characterize").serial
        results.append(compare_grids(proc, serial, Path(out_dir) / f"replay-{serial}", rig_spec=f"replay:{archive}",
                                     lab_measurement=archive))
    for r in results:
        click.echo("\n".join(r.lines()))
    bad = [r for r in results if r.max_delta_db > MAX_DELTA_DB or r.production_verdict != "PASS"]
    return 1 if bad else 0
