"""Microphone calibration files, REW style, and their application to IRs.

File format (as Room EQ Wizard reads it)
---------------------------------------
A plain text file of lines ``freq_hz gain_db [phase_deg]``: the microphone's
own response, which is *removed* from measurements (divided out). Values are
separated by spaces, tabs, commas or semicolons; frequencies must increase
strictly from line to line; at least two points. Like REW:

- blank lines are skipped;
- lines before the first data line that do not begin with a number are a
  header (e.g. ``Microphone calibration data``), kept in
  :attr:`MicCalibration.header`;
- lines starting with ``*``, ``#``, ``"`` or ``;`` are comments anywhere.

Unlike REW, which skips any line that does not begin with a number, a
non-comment line that does not parse *after* the data has begun is an
error (:class:`FileFormatError` with file, line number and what was
expected): a damaged file should not quietly lose points.

``Sens Factor``: miniDSP UMIK cal files start with a header such as
``"Sens Factor =-1.378dB, AGain =18dB, SERNO: 7000001"``. It is the
microphone's sensitivity offset, which REW uses for the absolute SPL
calibration and does *not* apply to the frequency response. calib does the
same: the value is kept as :attr:`MicCalibration.sens_factor_db` and the
response correction never includes it. Absolute level comes from the 94 dB
calibrator recording (:mod:`calib.signals.level`), which measures the whole
input chain, this factor included.

Interpolation: gain (dB) and unwrapped phase (degrees) are interpolated
linearly over log-frequency and held constant beyond the first and last
points (REW interpolates linearly too); without a phase column the
correction is zero-phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from calib.errors import FileFormatError

COMMENT_PREFIXES = ("*", "#", '"', ";")
_NUMBER_START = re.compile(r"^[+-]?(\d|\.\d)")
_SEPARATORS = re.compile(r"\s*[,;]\s*|\s+")
_SENS_FACTOR = re.compile(r"sens\s*factor\s*=\s*([+-]?\d+(?:\.\d*)?)\s*db", re.IGNORECASE)
_EXPECTED = "expected 'freq_hz gain_db [phase_deg]'"


@dataclass(frozen=True, eq=False)
class MicCalibration:
    """A microphone's response as read from a calibration file.

    Attributes
    ----------
    path : str
        The file it was read from.
    freqs_hz : ndarray, shape (F,)
        Strictly increasing, > 0.
    gain_db : ndarray, shape (F,)
        The microphone's response in dB (divided out of measurements).
    phase_deg : ndarray, shape (F,) or None
        Its phase in degrees, if the file has a third column.
    sens_factor_db : float or None
        miniDSP ``Sens Factor`` from the header (not applied to the response).
    header : tuple of str
        Header and comment lines as read.
    """

    path: str
    freqs_hz: NDArray[np.float64]
    gain_db: NDArray[np.float64]
    phase_deg: NDArray[np.float64] | None
    sens_factor_db: float | None
    header: tuple[str, ...]


def _parse_data_line(path: str, lineno: int, line: str, n_columns: int | None) -> list[float]:
    fields = [f for f in _SEPARATORS.split(line) if f]
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise FileFormatError(f"{path}:{lineno}: {_EXPECTED}, got {line!r}") from None
    if len(values) not in (2, 3):
        raise FileFormatError(f"{path}:{lineno}: {_EXPECTED}, got {len(values)} values in {line!r}")
    if n_columns is not None and len(values) != n_columns:
        raise FileFormatError(
            f"{path}:{lineno}: expected {n_columns} columns like the first data line, got {line!r}"
        )
    if not all(np.isfinite(values)):
        raise FileFormatError(f"{path}:{lineno}: {_EXPECTED} with finite values, got {line!r}")
    return values


def read_mic_calibration(path: str | Path) -> MicCalibration:
    """Read a REW-style microphone calibration file.

    Parameters
    ----------
    path : str or Path
        The text file.

    Returns
    -------
    MicCalibration

    Raises
    ------
    FileFormatError
        If the file cannot be read, a data line does not parse, frequencies
        do not increase strictly or are not positive, or it has fewer than
        two points. The message names the file and the line.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FileFormatError(f"cannot read mic calibration file {name}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older Windows tools write cp1252/latin-1 headers

    header: list[str] = []
    rows: list[list[float]] = []
    last_lineno = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not _NUMBER_START.match(stripped):
            if rows and not stripped.startswith(COMMENT_PREFIXES):
                raise FileFormatError(
                    f"{name}:{lineno}: {_EXPECTED} or a comment (* # \" ;), got {stripped!r}"
                )
            header.append(stripped)
            continue
        values = _parse_data_line(name, lineno, stripped, len(rows[0]) if rows else None)
        if values[0] <= 0:
            raise FileFormatError(f"{name}:{lineno}: expected a frequency > 0 Hz, got {values[0]!r}")
        if rows and values[0] <= rows[-1][0]:
            raise FileFormatError(
                f"{name}:{lineno}: expected a frequency above {rows[-1][0]:g} Hz (line {last_lineno}), "
                f"got {values[0]:g} Hz"
            )
        rows.append(values)
        last_lineno = lineno
    if len(rows) < 2:
        raise FileFormatError(
            f"{name}: expected at least 2 data lines 'freq_hz gain_db [phase_deg]', found {len(rows)}"
        )

    data = np.asarray(rows, dtype=np.float64)
    sens = next((m for m in map(_SENS_FACTOR.search, header) if m), None)
    return MicCalibration(
        path=name,
        freqs_hz=data[:, 0],
        gain_db=data[:, 1],
        phase_deg=data[:, 2] if data.shape[1] == 3 else None,
        sens_factor_db=float(sens.group(1)) if sens else None,
        header=tuple(header),
    )


def mic_correction(cal: MicCalibration, freqs_hz: ArrayLike) -> NDArray[np.complex128]:
    """Return the microphone's complex response at ``freqs_hz``: divide a measurement by it.

    ``H(f) = 10^(g(f)/20) · exp(j·φ(f)·π/180)`` with ``g`` and the unwrapped
    phase ``φ`` interpolated linearly over log-frequency, held beyond the
    file's first and last points; ``φ = 0`` without a phase column and at
    f <= 0 (so the correction stays real at DC).

    Parameters
    ----------
    cal : MicCalibration
    freqs_hz : array_like
        Any shape.

    Returns
    -------
    ndarray, complex128, same shape as ``freqs_hz``
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    log_f = np.log(np.maximum(f, cal.freqs_hz[0]))  # f <= 0 holds the first point
    log_cal = np.log(cal.freqs_hz)
    gain_db = np.interp(log_f, log_cal, cal.gain_db)
    if cal.phase_deg is None:
        return (10.0 ** (gain_db / 20.0)).astype(np.complex128)
    phase_deg = np.interp(log_f, log_cal, np.unwrap(cal.phase_deg, period=360.0))
    phase_deg = np.where(f > 0, phase_deg, 0.0)
    return 10.0 ** (gain_db / 20.0) * np.exp(1j * np.deg2rad(phase_deg))


def apply_mic_calibration(ir: ArrayLike, sample_rate: float, cal: MicCalibration) -> NDArray[np.float64]:
    """Remove the microphone's response from impulse responses.

    The IR is zero-padded to at least twice its length, its spectrum divided
    by :func:`mic_correction` and the result cut back to the input length, so
    the (short, smooth) correction does not wrap the tail onto the start.
    A zero-phase correction is non-causal: its pre-ringing lands before the
    direct sound, which in calib IRs follows the acoustic delay.

    Parameters
    ----------
    ir : array_like, shape (..., N)
        Impulse responses, samples last.
    sample_rate : float
        Sample rate in Hz.
    cal : MicCalibration

    Returns
    -------
    ndarray, float64, shape (..., N)
    """
    x = np.asarray(ir, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"ir needs a non-empty samples axis (last), got shape {x.shape}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    n = x.shape[-1]
    n_fft = scipy.fft.next_fast_len(2 * n, real=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    spectrum = scipy.fft.rfft(x, n_fft, axis=-1) / mic_correction(cal, freqs)
    return scipy.fft.irfft(spectrum, n_fft, axis=-1)[..., :n]
