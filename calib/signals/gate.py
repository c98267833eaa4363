"""Reflection detection and time gating of impulse responses (quasi-anechoic measurement).

A loudspeaker measured in a room is heard first directly, then by way of the
floor, the walls, the turntable, the stands. Everything before the first
reflection is the free-field response; a *gate* (a time window that ends
before the first reflection, with a smooth fade) keeps only that part. The
price is frequency resolution: a response known over ``T`` seconds after the
direct sound says nothing reliable about detail finer than ``1 / T`` Hz, so
the lowest frequency a gate supports is taken as :func:`lowest_supported_hz`
``= 1 / T`` (the usual quasi-anechoic rule, e.g. in REW and ARTA).

Detection (:func:`detect_arrivals`) works on the envelope of the IR
high-passed (zero phase) above ``highpass_hz``: there a driver's own
low-frequency ringing is gone and every arrival is a compact pulse. The
direct sound is the envelope's peak; the first reflection is the first later
local peak that

- comes at least ``min_delay_s`` after the direct peak (closer "arrivals" are
  the receiver's own structure: the creeping waves around a dummy head, a
  microphone's body),
- reaches ``threshold_db`` relative to the direct peak (weaker reflections
  move the response by less than ``20 log10(1 + 10^(threshold/20))`` dB),
- stands ``rise_db`` above the envelope's minimum between it and the direct
  sound (a new arrival, not the direct sound's own decay), and
- stands ``noise_margin_db`` above the noise (the envelope's 90th percentile
  before the direct sound, or in the IR's last tenth when the direct sound
  comes too early to tell).

The direct sound starts where the raw IR first reaches -20 dB of its peak
(the zero-phase high-pass would smear the envelope backwards); the
reflection starts the envelope's peak-to-peak delay later, so the difference
between them is the path difference over ``c`` whatever the drivers' and
filters' group delay.
Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Arrivals", "detect_arrivals", "gate_window", "lowest_supported_hz"]

ONSET_DB = -20.0
"""Level re the raw IR's peak that marks the direct sound's onset."""


@dataclass(frozen=True)
class Arrivals:
    """Arrival times of the direct sound and of the first reflection (seconds from the IR's time origin).

    Attributes
    ----------
    direct_s : ndarray [...]
        Onset of the direct sound.
    reflection_s : ndarray [...]
        Onset of the first reflection; NaN where none was found in the IR.
    reflection_db : ndarray [...]
        Level of the first reflection's envelope peak relative to the direct peak (NaN: none).
    """

    direct_s: np.ndarray
    reflection_s: np.ndarray
    reflection_db: np.ndarray

    @property
    def reflection_free_s(self) -> np.ndarray:
        """Time between the direct sound and the first reflection (inf where none was found)."""
        return np.where(np.isnan(self.reflection_s), np.inf, self.reflection_s - self.direct_s)


def _peak_offset(env: np.ndarray, i: int) -> float:
    """Sub-sample offset of the peak at ``i`` (parabola through three samples)."""
    if i <= 0 or i >= env.size - 1:
        return 0.0
    a, b, c = env[i - 1], env[i], env[i + 1]
    den = a - 2 * b + c
    return float(0.5 * (a - c) / den) if den < 0 else 0.0


def _detect_one(raw: np.ndarray, env: np.ndarray, fs: float, min_delay: int, smear: int, threshold_db: float,
                rise_db: float, noise_margin_db: float) -> tuple[float, float, float]:
    # The onset from the raw IR (the zero-phase high-pass smears the envelope backwards);
    # the direct peak is the envelope's peak just after it, not the global one: a driver
    # facing away can hear a wall louder than itself.
    magnitude = np.abs(raw)
    if not magnitude.max() > 0:
        return np.nan, np.nan, np.nan
    onset = int(np.argmax(magnitude >= magnitude.max() * 10 ** (ONSET_DB / 20)))
    direct_s = onset / fs
    peak = onset + int(np.argmax(env[onset : onset + max(smear // 4, 2)]))
    top = env[peak]
    if not top > 0:
        return direct_s, np.nan, np.nan
    level = 20 * np.log10(np.maximum(env, top * 1e-12) / top)
    peak_s = (peak + _peak_offset(env, peak)) / fs
    # Noise: before the direct sound, clear of the zero-phase high-pass's pre-echo (2 periods
    # of its corner); with too little of that, the last tenth of the IR.
    pre = level[: max(onset - smear, 0)]
    noise = pre if pre.size >= 32 else level[-max(level.size // 10, 32):]
    noise_db = float(np.percentile(noise, 90))
    floor_db = max(threshold_db, noise_db + noise_margin_db)
    start = peak + min_delay
    if start >= env.size - 1:
        return direct_s, np.nan, np.nan
    tail = level[start:]
    # Local maxima above the floor, each compared with the deepest dip before it.
    running_min = np.minimum.accumulate(np.r_[level[peak:start].min() if start > peak else 0.0, tail])[:-1]
    is_peak = np.r_[False, (tail[1:-1] >= tail[:-2]) & (tail[1:-1] > tail[2:]), False]
    hits = np.flatnonzero(is_peak & (tail >= floor_db) & (tail - running_min >= rise_db))
    if hits.size == 0:
        return direct_s, np.nan, np.nan
    # Climb to the arrival's own top (its rising edge, smeared backwards by the zero-phase
    # filter, can ripple above the floor first): the running maximum up to where the
    # envelope has fallen 6 dB below it, so that a later arrival is not merged in.
    first = start + int(hits[0])
    ahead = level[first : first + 2 * smear]
    top_so_far = np.maximum.accumulate(ahead)
    fallen = np.flatnonzero(ahead < top_so_far - 6.0)
    stop = int(fallen[0]) if fallen.size else ahead.size
    i = first + int(np.argmax(ahead[:stop]))
    # Peak to peak on the envelope is the path difference; the reflection starts that long after the direct sound.
    return direct_s, direct_s + (i + _peak_offset(env, i)) / fs - peak_s, float(level[i])


def detect_arrivals(
    ir: np.ndarray,
    sample_rate: float,
    *,
    highpass_hz: float = 1000.0,
    min_delay_s: float = 1e-3,
    threshold_db: float = -40.0,
    rise_db: float = 10.0,
    noise_margin_db: float = 10.0,
) -> Arrivals:
    """Direct sound and first reflection of impulse responses (see the module docstring).

    Parameters
    ----------
    ir : array_like [..., N]
        Impulse responses, time origin at the excitation (samples last).
    sample_rate : float
        Hz.
    highpass_hz : float
        Corner of the 4th-order Butterworth high-pass (applied forward and
        backward: zero phase) before the envelope.
    min_delay_s, threshold_db, rise_db, noise_margin_db : float
        Acceptance rules for a reflection.

    Returns
    -------
    Arrivals
        Arrays of shape ``ir.shape[:-1]``.
    """
    x = np.asarray(ir, dtype=float)
    if x.ndim < 1 or x.shape[-1] < 32:
        raise ValueError(f"ir must have at least 32 samples on its last axis, got shape {x.shape}")
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be > 0, got {sample_rate!r}")
    if not 0 < highpass_hz < sample_rate / 2:
        raise ValueError(f"highpass_hz must be in (0, {sample_rate / 2:g}), got {highpass_hz!r}")
    if not (min_delay_s >= 0 and rise_db > 0 and np.isfinite(threshold_db)):
        raise ValueError(f"need min_delay_s >= 0, rise_db > 0, finite threshold_db; got {min_delay_s!r}, {rise_db!r}, "
                         f"{threshold_db!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("ir contains NaN or infinite samples")
    shape = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    from scipy.signal import butter, hilbert, sosfiltfilt  # on first use: see calib.signals (import cost)

    sos = butter(4, highpass_hz, btype="highpass", fs=sample_rate, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, flat, axis=-1), axis=-1))
    min_delay = int(round(min_delay_s * sample_rate))
    smear = int(round(2.0 / highpass_hz * sample_rate))
    found = np.array([_detect_one(r, e, sample_rate, min_delay, smear, threshold_db, rise_db, noise_margin_db)
                      for r, e in zip(flat, env, strict=True)])
    found = found.reshape(*shape, 3)
    return Arrivals(found[..., 0], found[..., 1], found[..., 2])


def gate_window(n: int, sample_rate: float, end_s: float, fade_s: float) -> np.ndarray:
    """Return a right-sided gate: 1 up to ``end_s - fade_s``, a half-Hann fade to 0 at ``end_s``, 0 after.

    Everything before the direct sound is kept (it is the deconvolution's
    noise, not a reflection). ``end_s = inf`` gives all ones.

    Returns
    -------
    ndarray [n]
    """
    if n < 1 or not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"need n >= 1 and sample_rate > 0, got {n!r}, {sample_rate!r}")
    if not fade_s > 0 or np.isnan(end_s) or end_s <= fade_s:
        raise ValueError(f"need fade_s > 0 and end_s > fade_s, got end_s={end_s!r}, fade_s={fade_s!r}")
    t = np.arange(n) / sample_rate
    x = np.clip((t - (end_s - fade_s)) / fade_s, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def lowest_supported_hz(reflection_free_s: float, fade_s: float) -> float:
    """``1 / T`` with ``T`` the gate's effective length after the direct sound (to the middle of its fade)."""
    length = float(reflection_free_s) - 0.5 * float(fade_s)
    if not np.isfinite(length):
        return 0.0
    if length <= 0:
        return np.inf
    return 1.0 / length
