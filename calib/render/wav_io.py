"""WAV input and output in blocks for the streaming render (python-soundfile).

Input is read block by block and refused in one line
(:class:`~calib.errors.FileFormatError`) if it is unreadable, empty, has
the wrong channel count or sample rate, or holds a NaN or infinite sample.
Output goes to a temporary file beside the target, renamed into place only
once complete, so an error midway never leaves a partial file behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from calib.errors import FileFormatError


@dataclass(frozen=True)
class WavInput:
    """A validated WAV file, read in blocks of float64 [channels, b] full-scale (±1) samples."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    def blocks(self, block: int) -> Iterator[np.ndarray]:
        """Yield the samples as [channels, b] blocks; raises FileFormatError at a non-finite sample."""
        with soundfile.SoundFile(self.path) as f:
            start = 0
            for data in f.blocks(blocksize=block, dtype="float64", always_2d=True):
                bad = ~np.isfinite(data)
                if bad.any():
                    i, c = np.argwhere(bad)[0]
                    raise FileFormatError(
                        f"{self.path}: sample {start + i} of channel {c + 1}: expected a finite value, "
                        f"got {data[i, c]}"
                    )
                start += data.shape[0]
                yield data.T


def open_wav(path: Path, *, channels: int, sample_rate: int, meaning: str) -> WavInput:
    """Open and check a WAV header: it exists, is readable, not empty, has ``channels`` at ``sample_rate``.

    Parameters
    ----------
    path
        The file.
    channels, sample_rate
        What the caller needs.
    meaning
        What the channels are, for the message (e.g. ``"stereo L, R"``).
    """
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable WAV file ({exc})") from None
    if info.channels != channels:
        raise FileFormatError(f"{path}: expected {channels} channels ({meaning}), got {info.channels}")
    if info.samplerate != sample_rate:
        raise FileFormatError(
            f"{path}: expected sample rate {sample_rate} Hz (the calibration's), got {info.samplerate} Hz; "
            "resample first"
        )
    if info.frames <= 0:
        raise FileFormatError(f"{path}: expected at least one sample, got an empty file")
    return WavInput(path, int(info.samplerate), int(info.channels), int(info.frames))


@dataclass(frozen=True)
class WrittenWav:
    """What :func:`write_float_wav` wrote: the frame count and the peak (linear, per channel)."""

    path: Path
    frames: int
    peak: np.ndarray
    peak_frame: np.ndarray


#: WAV sample formats ``write_float_wav`` writes (python-soundfile subtypes).
SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")


def write_float_wav(
    path: Path, sample_rate: int, channels: int, blocks: Iterable[np.ndarray], *, gain: float = 1.0,
    subtype: str = "FLOAT",
) -> WrittenWav:
    """Write [channels, b] blocks times ``gain`` to a WAV (32-bit float, or ``subtype``); never overwrites.

    The file appears only when complete: blocks go to ``.<name>.partial``
    beside it, which is removed if anything fails (also an error raised by
    the block iterator, e.g. a NaN found in the input). ``subtype`` is one of
    :data:`SUBTYPES`; integer formats clip at full scale, so a caller checks
    the peak first (``calib render`` does).
    """
    if subtype not in SUBTYPES:
        raise ValueError(f"subtype: expected one of {', '.join(SUBTYPES)}, got {subtype!r}")
    if path.exists():
        raise FileExistsError(17, "exists already", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    peak, peak_frame, frames = np.zeros(channels), np.zeros(channels, dtype=np.int64), 0
    try:
        with soundfile.SoundFile(tmp, "w", sample_rate, channels, subtype=subtype, format="WAV") as f:
            for block in blocks:
                y = (block * gain).astype(np.float32)
                if y.shape[-1]:
                    mag = np.abs(y)
                    at = np.argmax(mag, axis=-1)
                    block_peak = mag[np.arange(channels), at]
                    louder = block_peak > peak
                    peak[louder], peak_frame[louder] = block_peak[louder], frames + at[louder]
                f.write(y.T)
                frames += y.shape[-1]
        if path.exists():  # appeared meanwhile
            raise FileExistsError(17, "exists already", str(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return WrittenWav(path, frames, peak, peak_frame)
