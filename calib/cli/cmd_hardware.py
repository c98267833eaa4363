"""``calib calibrate-mic``: microphone sensitivity from a sound-calibrator recording.

Prints the input chain's sensitivity (FS/Pa and the dBFS a 94 dB SPL tone
reads) and the TOML to paste into a station file's ``[[mics]]``. It never
writes the station file: user files are the user's. Errors are one
:class:`~calib.errors.CalibError` line (exit code 2 through the ``calib``
group).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from calib.errors import CalibError


@click.command("calibrate-mic")
@click.argument("recording", metavar="RECORDING.wav", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--spl", "spl_db", type=click.FloatRange(min=40.0, max=160.0), default=94.0, show_default=True,
              help="Calibrator level, dB SPL.")
@click.option("--freq", "freq_hz", type=click.FloatRange(min=10.0, min_open=False), default=1000.0,
              show_default=True, help="Calibrator frequency, Hz (250 for pistonphones).")
@click.option("--channel", type=click.IntRange(min=1), default=None,
              help="1-based channel of RECORDING.wav (required if it has more than one).")
@click.option("--mic", "mic_name", default=None,
              help="Station mic name (or ears.left / ears.right): print a [[mics]] entry for it.")
@click.option("--station", "station_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Station file to say whether --mic has an entry there already (the file is only read).")
def calibrate_mic(
    recording: Path, spl_db: float, freq_hz: float, channel: int | None, mic_name: str | None,
    station_file: Path | None,
) -> None:
    """Measure a microphone's sensitivity from RECORDING.wav of a sound calibrator."""
    from calib.procedure.station_file import MIC_NAME_PATTERN  # here: pydantic/scipy only when run
    from calib.signals.level import sensitivity_from_calibrator
    from calib.store.wav import read_wav

    if station_file is not None and mic_name is None:
        raise click.UsageError("--station needs --mic NAME (the entry to look up)")
    if mic_name is not None and not re.match(MIC_NAME_PATTERN, mic_name):
        raise click.BadParameter(f"expected a mic name matching {MIC_NAME_PATTERN}, got {mic_name!r}",
                                 param_hint="--mic")
    rate, x = read_wav(recording)
    n_channels = x.shape[0]
    if channel is None:
        if n_channels != 1:
            raise CalibError(f"{recording}: --channel: expected a channel 1..{n_channels} for a "
                             f"{n_channels}-channel file, got none")
        channel = 1
    if channel > n_channels:
        raise CalibError(f"{recording}: --channel: expected 1..{n_channels} (channels in the file), got {channel}")
    try:
        reading = sensitivity_from_calibrator(x[channel - 1], rate, spl_db, freq_hz)
    except CalibError as exc:
        raise type(exc)(f"{recording}: {exc}") from None
    except ValueError as exc:  # invalid arguments for this file, e.g. --freq above the band
        raise CalibError(f"{recording}: {exc}") from None

    click.echo(
        f"{recording} channel {channel}: tone {reading.tone_freq_hz:.1f} Hz at {reading.level_dbfs:.2f} dBFS, "
        f"SNR {reading.snr_db:.1f} dB, steady {reading.steady_s:.2f} s"
    )
    click.echo(
        f"sensitivity: {reading.sensitivity_fs_per_pa:.6g} FS/Pa ({reading.dbfs_at_94_db:.2f} dBFS at 94 dB SPL)"
    )
    line = f"sensitivity_fs_per_pa = {reading.sensitivity_fs_per_pa:.6g}"
    if mic_name is None:
        click.echo(f"station [[mics]] line: {line}")
        return
    if station_file is not None:
        click.echo(_where(station_file, mic_name))
    click.echo(f"\n[[mics]]\nname = {json.dumps(mic_name)}\n{line}")


def _where(station_file: Path, mic_name: str) -> str:
    """Where the printed entry goes in ``station_file``."""
    from calib.procedure.station_file import load_station

    station = load_station(station_file)
    for i, mic in enumerate(station.mics):
        if mic.name == mic_name:
            return (
                f"{station_file}: replace the sensitivity of mics[{i}] (name = {json.dumps(mic_name)}) with the "
                "line below; the file was not changed"
            )
    return f"{station_file}: no [[mics]] entry for {json.dumps(mic_name)} yet; append the entry below"
