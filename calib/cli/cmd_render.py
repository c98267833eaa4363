"""``calib render`` and ``calib export``.

``calib render CALIBRATION IN.wav OUT.wav`` renders a stereo WAV to the
unit's driver feeds (a float32 WAV, one channel per driver in calibration
order); ``--track head.csv`` steers a listening area's CTC bank by head
position (:mod:`calib.render.tracked`). ``calib export FILE --format ...`` writes a calibration's filters as
raw, WAV or a CamillaDSP configuration, or a measurement as SOFA. Errors are
:class:`~calib.errors.CalibError` one-liners (the ``calib`` group turns them
into exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import click

from calib.errors import CalibError, FileFormatError

#: Export formats valid for each file kind (root attribute ``format``).
EXPORTS = {"calib-calibration": ("raw", "wav", "camilladsp"), "calib-measurement": ("sofa",)}
_KIND = {"calib-calibration": "a calibration file", "calib-measurement": "a measurement file"}


def read_wav(path: Path):  # noqa: ANN201 - (int, numpy.ndarray); numpy is imported on use
    """Read a WAV file as float64 [channels, N] in full-scale units (±1)."""
    import numpy as np
    from scipy.io import wavfile

    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise FileFormatError(f"{path}: not a readable WAV file ({exc})") from None
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, offset 128
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):  # 24-bit arrives left-justified in int32
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        x = data.astype(np.float64)
    return int(rate), x.T if x.ndim == 2 else x[None, :]


@click.command()
@click.argument("calibration", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("in_wav", metavar="IN.wav", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_wav", metavar="OUT.wav", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gain", "gain_db", type=float, default=0.0, show_default=True,
              help="Gain applied to the driver feeds, dB (negative for headroom, e.g. -6).")
@click.option("--track", "track_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Head positions (CSV: time_s, x_m, y_m, z_m, yaw_deg): steer the listening area's CTC bank.")
@click.option("--block", "track_block", type=click.IntRange(min=16), default=1024, show_default=True,
              help="With --track: samples per block (cells switch per block, with a one-block crossfade).")
def render(calibration: Path, in_wav: Path, out_wav: Path, gain_db: float, track_csv: Path | None,
           track_block: int) -> None:
    """Render stereo IN.wav through CALIBRATION to OUT.wav (one float channel per driver).

    Streams in blocks: memory stays bounded whatever the length of IN.wav.
    With --track, the CTC filters follow the head through the listening
    area's cells (a calibration fitted with [listening_area]).
    """
    import numpy as np

    from calib.render.stream import BLOCK, render_blocks
    from calib.render.wav_io import open_wav, write_float_wav
    from calib.store.calibration import read_calibration

    cal = read_calibration(calibration)
    wav = open_wav(in_wav, channels=2, sample_rate=cal.sample_rate, meaning="stereo L, R")
    if out_wav.exists():
        raise FileExistsError(17, "exists already", str(out_wav))
    if track_csv is None:
        feeds = render_blocks(cal, lambda: wav.blocks(BLOCK))
    else:
        from calib.render.tracked import read_track, render_tracked

        track = read_track(track_csv)
        if cal.area is None:
            raise CalibError(f"{calibration}: --track needs a calibration with a listening area bank "
                             f"(fit a procedure with [listening_area])")
        feeds = render_tracked(cal, lambda: wav.blocks(BLOCK), track, block=track_block)
    out = write_float_wav(out_wav, cal.sample_rate, len(cal.drivers), feeds, gain=10.0 ** (gain_db / 20.0))
    loudest = int(np.argmax(out.peak))
    peak = float(out.peak[loudest])
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    click.echo(
        f"wrote {out_wav}: {len(cal.drivers)} channels ({', '.join(cal.drivers)}), {out.frames} samples, "
        f"gain {gain_db:+.1f} dB, peak {peak_dbfs:.1f} dBFS ({cal.drivers[loudest]} at "
        f"{out.peak_frame[loudest] / cal.sample_rate:.3f} s)"
    )
    if peak > 1.0:
        click.echo(
            f"calib: warning: {out_wav}: peak {peak_dbfs:+.1f} dBFS is above full scale; render again with "
            f"--gain {gain_db - peak_dbfs - 1.0:.1f} for 1 dB of headroom",
            err=True,
        )


def file_kind(path: Path) -> str:
    """The ``format`` attribute of a calib HDF5 file (``calib-calibration``, ``calib-measurement``)."""
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
    type=click.Choice(["raw", "wav", "camilladsp", "sofa"]),
    help="raw, wav, camilladsp (calibration files) or sofa (measurement files).",
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
def export(file: Path, fmt: str, out_dir: Path | None, camilladsp_version: str) -> None:
    """Export FILE: a calibration's filters, or a measurement as SOFA."""
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
        click.echo(f"wrote {target}")
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
    click.echo(f"exported {fmt} for unit {cal.serial} to {written[0].parent} ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.name}")
    if fmt == "camilladsp" and cal.area is not None:  # the tracked bank: one configuration per cell
        from calib.render.tracked_export import export_camilladsp_bank

        cells = export_camilladsp_bank(cal, written[0].parent / "cells", version=int(camilladsp_version))
        click.echo(f"  cells/: the listening area's bank, {cal.area.n_cells} configurations "
                   f"({cells[0].name} maps head positions to them; switch with SetConfigFilePath + Reload)")
