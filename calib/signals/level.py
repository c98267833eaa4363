"""Microphone sensitivity from a sound-calibrator recording.

A sound calibrator (IEC 60942) produces a sine of known level, typically
94 dB SPL (1.002 Pa RMS) or 114 dB at 1 kHz (250 Hz for pistonphones), in a
cavity around the microphone. Recording it through the interface gives the
sensitivity of the whole input chain in digital full scale per pascal:

    S = x_rms / p_rms,      p_rms = p_ref · 10^(L_cal / 20),  p_ref = 20 µPa,

where x_rms is the RMS of the tone in full-scale units. The same S is what
the virtual lab calls ``input_fs_per_pa``; a pressure is recovered from a
recording as ``p = x / S``.

Levels in dBFS follow AES17: 0 dBFS is the RMS of a full-scale sine, so a
tone of RMS x_rms reads ``20 log10(sqrt(2) x_rms)`` dBFS.

Method
------
1. Detection (Welch spectrum of the raw recording): the strongest component
   inside the analysis band (``bandwidth_oct`` wide, centred on the nominal
   frequency) must lie within ``freq_tolerance`` of the nominal frequency
   and stand ``min_snr_db`` above the band's noise. Otherwise there is no
   calibrator tone and :class:`CalibratorError` is raised.
2. Band-pass (Butterworth, zero-phase ``sosfiltfilt``) around the calibrator
   frequency, so hum, its harmonics and broadband noise do not bias the RMS.
3. Steady part: the filtered signal is cut into blocks of at least 50 ms
   (25 periods), clear of the filter's edge transients; blocks within
   ``steady_db`` of the loud (90th-percentile) block level are the
   calibrator on the microphone. Seating the calibrator
   at the start, removing it at the end and filter edge transients fall
   outside. At least ``min_steady_s`` of steady tone is required.
4. RMS over the steady blocks, corrected by the filter's gain at the
   measured tone frequency (a calibrator may be off by 1-2 %), minus the
   expected in-band noise power (noise density x the filter's equivalent
   noise bandwidth), which removes the small noise bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from calib.errors import MeasurementError
from calib.signals.convolve import next_pow2

#: Reference sound pressure, Pa RMS (0 dB SPL in air).
P_REF_PA = 20e-6


class CalibratorError(MeasurementError, ValueError):
    """A calibrator recording holds no usable calibrator tone."""


@dataclass(frozen=True)
class CalibratorReading:
    """Result of :func:`sensitivity_from_calibrator`.

    Attributes
    ----------
    sensitivity_fs_per_pa : float
        RMS full-scale units per RMS pascal.
    dbfs_at_94_db : float
        The level (AES17 dBFS) a 94 dB SPL tone reads with this sensitivity.
    level_dbfs : float
        The level of the recorded tone, AES17 dBFS.
    tone_freq_hz : float
        Measured frequency of the calibrator tone.
    snr_db : float
        Tone power over the noise power in the analysis band.
    steady_s : float
        Duration of the steady part the RMS was taken over.
    """

    sensitivity_fs_per_pa: float
    dbfs_at_94_db: float
    level_dbfs: float
    tone_freq_hz: float
    snr_db: float
    steady_s: float


@overload
def spl_to_pa(spl_db: float) -> float: ...
@overload
def spl_to_pa(spl_db: np.ndarray) -> np.ndarray: ...
def spl_to_pa(spl_db: float | np.ndarray) -> float | np.ndarray:
    """Return the RMS pressure in pascal of a sound pressure level in dB re 20 µPa (element-wise)."""
    return P_REF_PA * 10.0 ** (np.asarray(spl_db, dtype=float) / 20.0)


@overload
def pa_to_spl(pa_rms: float) -> float: ...
@overload
def pa_to_spl(pa_rms: np.ndarray) -> np.ndarray: ...
def pa_to_spl(pa_rms: float | np.ndarray) -> float | np.ndarray:
    """Return the sound pressure level in dB re 20 µPa of an RMS pressure in pascal (element-wise)."""
    return 20.0 * np.log10(np.asarray(pa_rms, dtype=float) / P_REF_PA)


def _detect_tone(
    x: np.ndarray, sample_rate: float, f_lo: float, f_hi: float
) -> tuple[float, float, float]:
    """Strongest in-band component: (frequency, SNR in dB, noise density per Hz)."""
    nperseg = min(x.size, next_pow2(sample_rate / 4.0))  # ~2-4 Hz bins
    from scipy.signal import welch  # on first use: see calib.signals (import cost)

    freqs, psd = welch(x, fs=sample_rate, window="hann", nperseg=nperseg)
    df = freqs[1] - freqs[0]
    band = np.flatnonzero((freqs >= f_lo) & (freqs <= f_hi))
    peak = band[np.argmax(psd[band])]
    # a Hann-windowed sine spreads over ~+-2 bins; +-3 keeps > 99.9 % of its power
    near = np.arange(max(peak - 3, 0), min(peak + 4, freqs.size))
    tone_power = psd[near].sum() * df
    tone_freq = float(np.sum(freqs[near] * psd[near]) / np.sum(psd[near]))
    rest = np.setdiff1d(band, near)
    noise_density = float(np.median(psd[rest])) if rest.size else 0.0
    noise_power = noise_density * (f_hi - f_lo)
    snr_db = 10.0 * np.log10(tone_power / noise_power) if noise_power > 0 else np.inf
    return tone_freq, float(snr_db), noise_density


def sensitivity_from_calibrator(
    recording: ArrayLike,
    sample_rate: float,
    calibrator_spl_db: float = 94.0,
    calibrator_freq_hz: float = 1000.0,
    *,
    bandwidth_oct: float = 1.0 / 3.0,
    freq_tolerance: float = 0.05,
    min_snr_db: float = 15.0,
    steady_db: float = 1.0,
    min_steady_s: float = 0.5,
) -> CalibratorReading:
    """Input sensitivity (FS per pascal) from a recording of a sound calibrator.

    Parameters
    ----------
    recording : array_like, shape (N,)
        One microphone channel in full scale, calibrator seated for most of it.
    sample_rate : float
        Sample rate in Hz.
    calibrator_spl_db : float
        The calibrator's level, dB SPL (94 or 114 typically).
    calibrator_freq_hz : float
        Its nominal frequency (1000 Hz; 250 Hz for pistonphones).
    bandwidth_oct : float
        Width of the analysis band-pass, octaves.
    freq_tolerance : float
        Accepted relative deviation of the tone from the nominal frequency.
    min_snr_db : float
        Least tone-to-band-noise ratio accepted as a calibrator tone.
    steady_db : float
        Blocks within this many dB of the calibrator level count as steady.
    min_steady_s : float
        Least duration of steady tone, seconds.

    Returns
    -------
    CalibratorReading

    Raises
    ------
    ValueError
        On invalid arguments (shape, rates, frequencies).
    CalibratorError
        If the recording clips, holds no tone near the calibrator frequency,
        or holds too little steady tone.
    """
    x = np.asarray(recording, dtype=np.float64)
    fs = float(sample_rate)
    if x.ndim != 1:
        raise ValueError(f"recording must be one channel [N], got shape {x.shape}")
    if not fs > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    half_band = 2.0 ** (bandwidth_oct / 2.0)
    f_lo, f_hi = calibrator_freq_hz / half_band, calibrator_freq_hz * half_band
    if not (calibrator_freq_hz > 0 and f_hi < 0.45 * fs):
        raise ValueError(
            f"calibrator_freq_hz={calibrator_freq_hz!r} must be > 0 with its band below 0.45 x the "
            f"sample rate ({0.45 * fs:g} Hz)"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("recording contains NaN or infinite samples")
    if x.size < min_steady_s * fs:
        raise CalibratorError(
            f"calibrator recording of {x.size / fs:.3g} s is shorter than "
            f"min_steady_s={min_steady_s:g} s"
        )
    if np.max(np.abs(x)) >= 0.999:
        raise CalibratorError("calibrator recording clips (peak >= 0.999 FS); lower the input gain")

    tone_freq, snr_db, noise_density = _detect_tone(x, fs, f_lo, f_hi)
    if abs(tone_freq / calibrator_freq_hz - 1.0) > freq_tolerance or snr_db < min_snr_db:
        raise CalibratorError(
            f"no calibrator tone near {calibrator_freq_hz:g} Hz: the strongest component in "
            f"[{f_lo:.0f}, {f_hi:.0f}] Hz is at {tone_freq:.1f} Hz, {snr_db:.1f} dB above the band "
            f"noise (need within {100 * freq_tolerance:g} % and >= {min_snr_db:g} dB)"
        )

    from scipy.signal import butter, sosfiltfilt, sosfreqz  # on first use: see calib.signals (import cost)

    sos = butter(4, [f_lo, f_hi], btype="bandpass", fs=fs, output="sos")
    y = sosfiltfilt(sos, x)
    # blocks clear of the filter's edge transients (~4 time constants 1/bandwidth at each end)
    block = max(round(0.05 * fs), round(25.0 * fs / calibrator_freq_hz))
    edge = int(np.ceil(4.0 * fs / (f_hi - f_lo)))
    n_blocks = max((y.size - 2 * edge) // block, 0)
    if n_blocks == 0:
        raise CalibratorError(f"calibrator recording of {x.size / fs:.3g} s is too short to analyse")
    power = np.mean(y[edge : edge + n_blocks * block].reshape(n_blocks, block) ** 2, axis=-1)
    level_db = 10.0 * np.log10(np.maximum(power, 1e-30))
    steady = np.abs(level_db - np.percentile(level_db, 90)) <= steady_db
    steady_s = steady.sum() * block / fs
    if steady_s < min_steady_s:
        raise CalibratorError(
            f"only {steady_s:.2f} s of the calibrator tone is steady within {steady_db:g} dB "
            f"(need {min_steady_s:g} s); keep the calibrator seated while recording"
        )

    # filtfilt applies |H|^2: correct the gain at the tone, and its noise bandwidth
    grid = np.linspace(0.0, fs / 2.0, 8192)
    _, h = sosfreqz(sos, worN=np.append(grid, tone_freq), fs=fs)
    gain2 = np.abs(h) ** 4
    noise_bw_hz = float(np.sum(gain2[:-1]) * (grid[1] - grid[0]))
    tone_power = (np.mean(power[steady]) - noise_density * noise_bw_hz) / gain2[-1]
    tone_rms = float(np.sqrt(max(tone_power, 0.0)))
    sensitivity = tone_rms / spl_to_pa(calibrator_spl_db)
    return CalibratorReading(
        sensitivity_fs_per_pa=sensitivity,
        dbfs_at_94_db=float(20.0 * np.log10(np.sqrt(2.0) * sensitivity * spl_to_pa(94.0))),
        level_dbfs=float(20.0 * np.log10(np.sqrt(2.0) * tone_rms)),
        tone_freq_hz=tone_freq,
        snr_db=snr_db,
        steady_s=float(steady_s),
    )
