"""``calib render`` and ``calib export``.

``calib render CALIBRATION IN.wav OUT.wav`` renders a stereo WAV to the
unit's driver feeds (one channel per driver in calibration order; 32-bit
float, 24- or 16-bit PCM), with the output peak kept below full scale;
``--track head.csv`` steers a listening area's CTC bank by head position
(:mod:`calib.render.tracked`). ``calib export FILE --format ...`` writes a calibration's filters as
raw, WAV or a CamillaDSP configuration, or a measurement as SOFA. Errors are
:class:`~calib.errors.CalibError` one-liners (the ``calib`` group turns them
into exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import click

from calib.cli.output import say
from calib.errors import CalibError, FileFormatError

#: Export formats valid for each file kind (root attribute ``format``).
EXPORTS = {"calib-calibration": ("raw", "wav", "camilladsp"), "calib-measurement": ("sofa", "ir-wav", "frd")}
_KIND = {"calib-calibration": "a calibration file", "calib-measurement": "a measurement file"}


HEADROOM_DBFS = -1.0  # calib.render.wav_render.HEADROOM_DBFS, here so that ``calib --help`` imports no numpy


@click.command()
@click.argument("calibration", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("in_wav", metavar="IN.wav", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_wav", metavar="OUT.wav", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gain", "gain_db", type=float, default=None,
              help="Gain applied to the driver feeds, dB. Default: 0 dB, lowered just enough to keep the output "
                   f"peak at {HEADROOM_DBFS:g} dBFS (never raised). An explicit gain that puts the peak above "
                   "0 dBFS is refused and nothing is written.")
@click.option("--subtype", type=click.Choice(["FLOAT", "PCM_24", "PCM_16"]), default="FLOAT", show_default=True,
              help="Sample format of OUT.wav: 32-bit float, 24-bit or 16-bit integer PCM.")
@click.option("--track", "track_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Head positions (CSV: time_s, x_m, y_m, z_m, yaw_deg): steer the listening area's CTC bank.")
@click.option("--block", "track_block", type=click.IntRange(min=16), default=1024, show_default=True,
              help="With --track: samples per block (cells switch per block, with a one-block crossfade).")
def render(calibration: Path, in_wav: Path, out_wav: Path, gain_db: float | None, subtype: str,
           track_csv: Path | None, track_block: int) -> None:
    """Render stereo IN.wav through CALIBRATION to OUT.wav (one channel per driver).

    Streams in blocks: memory stays bounded whatever the length of IN.wav.
    The filters can amplify (a CTC boosts where the ears are hard to
    separate), so the render never clips silently: it renders once to a
    hidden float file, measures the peak, then writes OUT.wav scaled (see
    --gain) and prints the output peak in dBFS. With --track, the CTC filters
    follow the head through the listening area's cells (a calibration fitted
    with [listening_area]).
    """
    from calib.render.wav_render import render_wav

    out = render_wav(calibration, in_wav, out_wav, gain_db, subtype, track_csv, track_block)
    how = "" if not out.gain_chosen else (" (lowered for headroom)" if out.gain_db < 0 else " (headroom kept)")
    say(f"wrote {out_wav}: {len(out.drivers)} channels ({', '.join(out.drivers)}), {subtype}, {out.frames} samples, "
        f"gain {out.gain_db:+.1f} dB{how}, peak {out.peak_dbfs:.1f} dBFS ({out.loudest} at {out.peak_at_s:.3f} s)")


def file_kind(path: Path) -> str:
    """Return the ``format`` attribute of a calib HDF5 file (``calib-calibration``, ``calib-measurement``)."""
    from calib.store.measurement import file_format

    fmt = file_format(path)
    if fmt not in EXPORTS:
        raise FileFormatError(f"{path}: format: expected one of {', '.join(map(repr, EXPORTS))}, got {fmt!r}")
    return str(fmt)


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["raw", "wav", "camilladsp", "sofa", "ir-wav", "frd"]),
    help="raw, wav, camilladsp (calibration files); sofa, ir-wav, frd (measurement files).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: next to FILE; raw and camilladsp in a new <stem>-<format> folder).",
)
@click.option(
    "--camilladsp-version",
    type=click.Choice(["3", "4"]),
    default="4",
    show_default=True,
    help="CamillaDSP major version the config is for (sample format FLOAT32LE in 3, F32_LE in 4).",
)
@click.option("--gated", is_flag=True,
              help="ir-wav, frd: apply the room gate (each IR windowed before its first reflection, as the fit "
                   "does); without it the raw IRs are written and the gate is named in the manifest.")
def export(file: Path, fmt: str, out_dir: Path | None, camilladsp_version: str, gated: bool) -> None:
    """Export FILE: a calibration's filters, or a measurement's IRs.

    \b
    Calibration files (the effective filters: the virtualizer is folded in,
    so they have T + Tv - 1 taps, see calib inspect):
      raw         one float32 file per filter + manifest.json
      wav         one multichannel float WAV + manifest
      camilladsp  raw filters + camilladsp.yml taking L', R', C (see below)
    Measurement files:
      sofa        SOFA GeneralFIR-E
      ir-wav      one float32 WAV IR per driver, mic and azimuth, and per
                  driver, ear and head position (REW, ARTA) + manifest.csv
      frd         the same as FRD text: Hz, dB, degrees (REW, VituixCAD);
                  dB SPL at 0 dBFS where the station calibrates the mics

    CamillaDSP and plain stereo: the configuration takes calib's upmix
    (L', R', C), not stereo. The upmix is time-varying (per-bin gains from
    100 ms running averages of the signal), which CamillaDSP's constant-gain
    mixers and linear time-invariant filters cannot express. For files, run
    `calib render` (stereo in, driver feeds out); for CamillaDSP, run calib's
    upmix (calib.render.upmix) and feed its 3 channels to the capture.
    """  # noqa: D301 - "\b" is click's no-rewrap marker: it must stay a backspace character
    kind = file_kind(file)
    if fmt not in EXPORTS[kind]:
        raise CalibError(
            f"{file}: --format {fmt} is not valid for {_KIND[kind]}; valid: {', '.join(EXPORTS[kind])}"
        )
    stem = file.stem
    if fmt == "sofa":
        try:
            from calib.store.sofa import export_sofa
        except ImportError:
            raise CalibError("SOFA export is unavailable in this installation (calib.store.sofa is missing)") from None
        target = (out_dir or file.parent) / f"{stem}.sofa"
        export_sofa(file, target)
        say(f"wrote {target}")
        return
    if fmt in ("ir-wav", "frd"):
        from calib.export.measurements import export_measurement

        written = export_measurement(file, out_dir or file.parent / f"{stem}-{fmt}", fmt.removeprefix("ir-"),
                                     gated=gated)
        say(f"exported {len(written) - 1} {fmt} files{' (gated)' if gated else ''} to {written[-1].parent}, "
            f"listed in {written[-1].name}")
        return

    from calib.render import export as ex
    from calib.store.calibration import read_calibration

    cal = read_calibration(file)
    if fmt == "wav":
        written = ex.export_wav(cal, (out_dir or file.parent) / f"{stem}-filters.wav")
    elif fmt == "raw":
        written = ex.export_raw(cal, out_dir or file.parent / f"{stem}-raw")
    else:
        written = ex.export_camilladsp(
            cal, out_dir or file.parent / f"{stem}-camilladsp", version=int(camilladsp_version)
        )
    say(f"exported {fmt} for unit {cal.serial} to {written[0].parent} ({len(written)} files):")
    for path in written:
        say(f"  {path.name}")
    if fmt == "camilladsp" and cal.area is not None:  # the tracked bank: one configuration per cell
        from calib.render.tracked_export import export_camilladsp_bank

        cells = export_camilladsp_bank(cal, written[0].parent / "cells", version=int(camilladsp_version))
        say(f"  cells/: the listening area's bank, {cal.area.n_cells} configurations "
            f"({cells[0].name} maps head positions to them; switch with SetConfigFilePath + Reload)")
