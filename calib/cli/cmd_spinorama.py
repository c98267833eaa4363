"""``calib spinorama``: CTA-2034-A curves and balloons of a unit measured on the sphere."""

from __future__ import annotations

from pathlib import Path

import click

from calib.cli.validate import check_folder, check_input_file
from calib.errors import CalibError


@click.command()
@click.argument("verification", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="New folder for the CSV curves, the orbits and the driver balloons (CSV, SOFA).")
def spinorama(verification: str, out_dir: str) -> None:
    """Export the spinoramas (C, L, R, drivers) and driver balloons of a VERIFICATION measurement."""
    from calib.export.directivity import export_unit_directivity
    from calib.report.spinorama_page import di_band_table
    from calib.stages.unit_report import build_unit_report

    check_input_file(verification, "verification")
    folder = check_folder(out_dir, "--out")
    if folder.exists():
        raise CalibError(f"--out: {folder}: exists already; nothing was overwritten (choose a new folder)")
    report = build_unit_report(Path(verification))
    written = export_unit_directivity(report, folder)
    click.echo(f"{len(written)} files and folders in {folder}")
    for name, predicted, verified in di_band_table(report):
        click.echo(f"C {name}, beam band mean: predicted {predicted:+.2f} dB, verified {verified:+.2f} dB")
