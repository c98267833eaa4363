"""``calib render`` and ``calib export``.

``calib render CALIBRATION IN.wav OUT.wav`` renders a stereo WAV to the
unit's driver feeds (a float32 WAV, one channel per driver in calibration
order). ``calib export FILE --format ...`` writes a calibration's filters as
raw, WAV or a CamillaDSP configuration, or a measurement as SOFA. Errors are
:class:`~calib.errors.CalibError` one-liners (the ``calib`` group turns them
into exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from scipy.io import wavfile

from calib.errors import CalibError, FileFormatError
from calib.store.measurement import file_format

#: Export formats valid for each file kind (root attribute ``format``).
EXPORTS = {"calib-calibration": ("raw", "wav", "camilladsp"), "calib-measurement": ("sofa",)}
_KIND = {"calib-calibration": "a calibration file", "calib-measurement": "a measurement file"}


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Read a WAV file as float64 [channels, N] in full-scale units (±1)."""
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
def render(calibration: Path, in_wav: Path, out_wav: Path) -> None:
    """Render stereo IN.wav through CALIBRATION to OUT.wav (one float channel per driver)."""
    from calib.render.engine import render as render_stereo
    from calib.store.calibration import read_calibration

    cal = read_calibration(calibration)
    rate, x = read_wav(in_wav)
    if x.shape[0] != 2:
        raise FileFormatError(f"{in_wav}: expected 2 channels (stereo L, R), got {x.shape[0]}")
    if rate != cal.sample_rate:
        raise FileFormatError(
            f"{in_wav}: expected sample rate {cal.sample_rate} Hz (the calibration's), got {rate} Hz; resample first"
        )
    if out_wav.exists():
        raise FileExistsError(17, "exists already", str(out_wav))
    feeds = render_stereo(cal, x).astype(np.float32)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with open(out_wav, "xb") as fh:
        wavfile.write(fh, cal.sample_rate, feeds.T)
    peak = float(np.max(np.abs(feeds))) if feeds.size else 0.0
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    click.echo(
        f"wrote {out_wav}: {feeds.shape[0]} channels ({', '.join(cal.drivers)}), "
        f"{feeds.shape[1]} samples, peak {peak_dbfs:.1f} dBFS"
    )
    if peak > 1.0:
        click.echo(f"calib: warning: {out_wav}: peak above full scale; lower the input level before playback", err=True)


def file_kind(path: Path) -> str:
    """The ``format`` attribute of a calib HDF5 file (``calib-calibration``, ``calib-measurement``)."""
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
