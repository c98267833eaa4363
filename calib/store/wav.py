"""WAV files read whole (a sound calibrator's recording): float64 in full-scale units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import wavfile

from calib.errors import FileFormatError


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Read a WAV file as ``(sample_rate, float64 [channels, N])`` in full-scale units (±1)."""
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
