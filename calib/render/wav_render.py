"""Render a stereo WAV file through a calibration to a WAV of driver feeds, in bounded memory.

The filters can amplify (a CTC boosts where the ears are hard to separate),
so the render never clips silently: it renders once to a hidden float file,
measures the peak, then writes the output scaled by the gain
:func:`choose_gain` picks and reports the output peak. With a head track,
the CTC filters follow the head through the listening area's cells
(:mod:`calib.render.tracked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.errors import CalibError
from calib.render.stream import BLOCK, render_blocks
from calib.render.wav_io import open_wav, write_float_wav
from calib.store.calibration import read_calibration

HEADROOM_DBFS = -1.0
"""Output peak a render keeps without an explicit gain: 1 dB below full scale."""


@dataclass(frozen=True)
class RenderedWav:
    """What :func:`render_wav` wrote."""

    path: Path
    drivers: tuple[str, ...]
    subtype: str
    frames: int
    gain_db: float
    gain_chosen: bool
    """True when the gain was chosen for headroom (no explicit gain given)."""
    peak_dbfs: float
    loudest: str
    """The driver whose feed peaks highest."""
    peak_at_s: float


def dbfs(peak: float) -> float:
    """Convert a linear peak to dB re full scale (``-inf`` for silence)."""
    return float(20 * np.log10(peak)) if peak > 0 else float("-inf")


def choose_gain(peak_dbfs: float, gain_db: float | None, out_wav: Path, driver: str, at_s: float) -> float:
    """Return the render's gain in dB for an unscaled output peak of ``peak_dbfs``.

    Without ``gain_db``: 0 dB, or less so that the peak is :data:`HEADROOM_DBFS`.
    With it: ``gain_db``, refused (:class:`CalibError`) if the peak would exceed 0 dBFS.
    """
    fits = HEADROOM_DBFS - peak_dbfs
    if gain_db is None:
        return min(0.0, fits)
    if peak_dbfs + gain_db > 0.0:
        raise CalibError(
            f"{out_wav}: --gain {gain_db:+.1f} dB puts the peak at {peak_dbfs + gain_db:+.1f} dBFS ({driver} at "
            f"{at_s:.3f} s), above full scale; nothing written; use --gain {fits:.1f} (peak {HEADROOM_DBFS:g} dBFS) "
            "or leave --gain out"
        )
    return gain_db


def render_wav(calibration: str | Path, in_wav: str | Path, out_wav: str | Path, gain_db: float | None = None,
               subtype: str = "FLOAT", track_csv: str | Path | None = None, track_block: int = 1024) -> RenderedWav:
    """Render stereo ``in_wav`` through ``calibration`` to ``out_wav`` (one channel per driver, never overwritten).

    Parameters
    ----------
    gain_db : float, optional
        Gain on the driver feeds, dB. Default: 0 dB, lowered just enough to
        keep the peak at :data:`HEADROOM_DBFS`; an explicit gain that puts
        the peak above 0 dBFS is refused and nothing is written.
    subtype : str
        ``"FLOAT"``, ``"PCM_24"`` or ``"PCM_16"``.
    track_csv : path, optional
        Head positions (``time_s, x_m, y_m, z_m, yaw_deg``) that steer the
        listening area's CTC bank; cells switch per ``track_block`` samples.
    """
    out_wav = Path(out_wav)
    cal = read_calibration(calibration)
    wav = open_wav(Path(in_wav), channels=2, sample_rate=cal.sample_rate, meaning="stereo L, R")
    if out_wav.exists():
        raise FileExistsError(17, "exists already", str(out_wav))
    if track_csv is None:
        feeds = render_blocks(cal, lambda: wav.blocks(BLOCK))
    else:
        from calib.render.tracked import read_track, render_tracked

        track = read_track(Path(track_csv))
        if cal.area is None:
            raise CalibError(f"{calibration}: --track needs a calibration with a listening area bank "
                             f"(fit a procedure with [listening_area])")
        feeds = render_tracked(cal, lambda: wav.blocks(BLOCK), track, block=track_block)
    n = len(cal.drivers)
    unscaled = out_wav.with_name(f".{out_wav.name}.unscaled.wav")
    unscaled.unlink(missing_ok=True)  # left by a killed render
    try:
        first = write_float_wav(unscaled, cal.sample_rate, n, feeds)
        raw_db = dbfs(float(first.peak.max()))
        gain = choose_gain(raw_db, gain_db, out_wav, cal.drivers[int(first.peak.argmax())],
                           first.peak_frame[int(first.peak.argmax())] / cal.sample_rate)
        scaled = open_wav(unscaled, channels=n, sample_rate=cal.sample_rate, meaning="driver feeds")
        out = write_float_wav(out_wav, cal.sample_rate, n, scaled.blocks(BLOCK), gain=10.0 ** (gain / 20.0),
                              subtype=subtype)
    finally:
        unscaled.unlink(missing_ok=True)
    loudest = int(out.peak.argmax())
    return RenderedWav(out_wav, tuple(cal.drivers), subtype, int(out.frames), float(gain), gain_db is None,
                       dbfs(float(out.peak[loudest])), cal.drivers[loudest],
                       float(out.peak_frame[loudest] / cal.sample_rate))
