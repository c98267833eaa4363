"""Synchronized exponential sine sweep (Novák et al. 2015).

The sweep is

    x(t) = A sin(2 pi f1 L (exp(t / L) - 1)),   0 <= t < T,   T = L ln(f2 / f1),

with instantaneous frequency f(t) = f1 exp(t / L). Novák et al. round the rate
parameter so that f1 L is an integer,

    L = round(f1 T_target / ln(f2 / f1)) / f1,

which makes every harmonic synchronized: sin(n phi(t)) = x(t + L ln n) / A, so
after deconvolution the n-th harmonic impulse response sits exactly at
t = -L ln n (and the phase at the instants where f(t) = k f1 is a multiple of
2 pi).

Reference: A. Novák, L. Simon, P. Lotton, "Synchronized swept-sine: theory,
application, and implementation", J. Audio Eng. Soc. 63(10), 786-798 (2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calib.signals.windows import fade

__all__ = ["Sweep", "synchronized_sweep", "extended_range"]


@dataclass(frozen=True, eq=False)
class Sweep:
    """A synchronized exponential sweep and its parameters.

    Attributes
    ----------
    signal : numpy.ndarray
        The sweep samples ``[N]`` (float64, read-only), faded, peak ``10**(level_dbfs/20)``.
    sample_rate : float
        Sample rate in Hz.
    f1_hz, f2_hz : float
        Start and stop frequencies in Hz.
    duration_s : float
        Synchronized duration ``T = L ln(f2/f1)`` in seconds (``N = floor(T fs)``).
    rate_s : float
        Rate parameter ``L`` in seconds; ``f1_hz * rate_s`` is an integer.
    level_dbfs : float
        Peak level in dBFS (before fades).
    fade_in_s, fade_out_s : float
        Half-Hann fade lengths in seconds.
    """

    signal: NDArray[np.float64]
    sample_rate: float
    f1_hz: float
    f2_hz: float
    duration_s: float
    rate_s: float
    level_dbfs: float
    fade_in_s: float
    fade_out_s: float

    @property
    def amplitude(self) -> float:
        """Linear peak amplitude ``A = 10**(level_dbfs / 20)``."""
        return float(10.0 ** (self.level_dbfs / 20.0))

    @property
    def n_samples(self) -> int:
        """Length of :attr:`signal` in samples."""
        return int(self.signal.shape[-1])

    def phase(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """Analytic phase ``phi(t) = 2 pi f1 L (exp(t/L) - 1)`` in radians."""
        t = np.asarray(t_s, dtype=np.float64)
        return 2.0 * np.pi * self.f1_hz * self.rate_s * np.expm1(t / self.rate_s)

    def instantaneous_frequency_hz(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """Instantaneous frequency ``f1 exp(t/L)`` in Hz."""
        return self.f1_hz * np.exp(np.asarray(t_s, dtype=np.float64) / self.rate_s)

    def spectrum(self, n_fft: int) -> NDArray[np.complex128]:
        """Analytic DFT of the sweep on the ``rfft`` bins of length ``n_fft``.

        Novák et al. (2015, eq. 42) give, by the stationary-phase approximation,

            X(f) = 1/2 sqrt(L/f) exp(j 2 pi f L (1 - ln(f/f1)) - j pi/4),

        for a unit-amplitude sweep. The DFT of the samples is ``fs A X(f)``.
        Bins outside ``[f1, f2]`` are set to 0 (the sweep has no energy there).
        The fades enter through the same approximation: frequency f is swept at
        ``t_f = L ln(f/f1)``, so ``X(f)`` is multiplied by the fade envelope at
        ``t_f`` (valid while the fades last many periods).
        """
        f = np.fft.rfftfreq(n_fft, 1.0 / self.sample_rate)
        inside = (f >= self.f1_hz) & (f <= self.f2_hz)
        fs = np.where(inside, f, self.f1_hz)  # avoid log(0) outside
        L = self.rate_s
        x = 0.5 * np.sqrt(L / fs) * np.exp(1j * (2 * np.pi * fs * L * (1.0 - np.log(fs / self.f1_hz)) - np.pi / 4))
        return np.where(
            inside, self.sample_rate * self.amplitude * self._envelope(L * np.log(fs / self.f1_hz)) * x, 0.0
        )

    def _envelope(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Half-Hann fade envelope at times ``t_s`` (continuous-time version of the fades)."""
        u_in = np.clip(t_s / self.fade_in_s, 0.0, 1.0) if self.fade_in_s > 0 else np.ones_like(t_s)
        left = self.duration_s - t_s
        u_out = np.clip(left / self.fade_out_s, 0.0, 1.0) if self.fade_out_s > 0 else np.ones_like(t_s)
        return 0.25 * (1.0 - np.cos(np.pi * u_in)) * (1.0 - np.cos(np.pi * u_out))

    def inverse_spectrum(self, n_fft: int) -> NDArray[np.complex128]:
        """Analytic inverse filter on the ``rfft`` bins (Novák et al. 2015, eq. 43).

            X~(f) = 2 sqrt(f/L) exp(-j 2 pi f L (1 - ln(f/f1)) + j pi/4),

        divided by ``fs A`` so that ``irfft(rfft(y) * inverse_spectrum)`` is the
        impulse response of a system excited by :attr:`signal`. Defined for
        every ``f > 0`` (0 at DC); it is valid only inside ``[f1, f2]``.
        """
        f = np.fft.rfftfreq(n_fft, 1.0 / self.sample_rate)
        fpos = np.where(f > 0, f, 1.0)
        L = self.rate_s
        inv = 2.0 * np.sqrt(fpos / L) * np.exp(
            -1j * (2 * np.pi * fpos * L * (1.0 - np.log(fpos / self.f1_hz)) - np.pi / 4)
        )
        return np.where(f > 0, inv / (self.sample_rate * self.amplitude), 0.0)


def synchronized_sweep(
    f1_hz: float,
    f2_hz: float,
    duration_s: float,
    sample_rate: float,
    level_dbfs: float = -6.0,
    fade_in_s: float | None = None,
    fade_out_s: float | None = None,
) -> Sweep:
    """Build a synchronized exponential sweep (Novák et al. 2015).

    Parameters
    ----------
    f1_hz, f2_hz : float
        Start and stop frequency, ``0 < f1 < f2 <= sample_rate / 2``.
    duration_s : float
        Target duration; the actual one is ``T = L ln(f2/f1)`` with
        ``L = round(f1 duration / ln(f2/f1)) / f1`` (so ``f1 L`` is an integer).
    sample_rate : float
        Sample rate in Hz.
    level_dbfs : float
        Peak level in dBFS (``<= 0``).
    fade_in_s, fade_out_s : float, optional
        Half-Hann fade lengths. Defaults: the time the sweep takes to rise half an
        octave (fade-in) and an eighth of an octave (fade-out), i.e.
        ``L ln(2)/2`` and ``L ln(2)/8``. Put them in the extension of the sweep
        range beyond the band of interest (see :func:`extended_range`).

    Returns
    -------
    Sweep
    """
    f1, f2, fs = float(f1_hz), float(f2_hz), float(sample_rate)
    if not fs > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    if not 0 < f1 < f2:
        raise ValueError(f"need 0 < f1_hz < f2_hz, got f1_hz={f1_hz!r}, f2_hz={f2_hz!r}")
    if f2 > fs / 2:
        raise ValueError(f"f2_hz={f2_hz!r} is above the Nyquist frequency {fs / 2:g} Hz")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    if level_dbfs > 0:
        raise ValueError(f"level_dbfs must be <= 0 dBFS, got {level_dbfs!r}")
    log_ratio = float(np.log(f2 / f1))
    cycles = round(f1 * duration_s / log_ratio)  # f1 L, an integer number of cycles
    if cycles < 1:
        raise ValueError(
            f"duration_s={duration_s!r} is too short to synchronize a {f1:g}-{f2:g} Hz sweep "
            f"(need at least {log_ratio / f1 / 2:.3g} s)"
        )
    L = cycles / f1
    T = L * log_ratio
    fade_in_s = float(L * np.log(2) / 2 if fade_in_s is None else fade_in_s)
    fade_out_s = float(L * np.log(2) / 8 if fade_out_s is None else fade_out_s)
    if fade_in_s < 0 or fade_out_s < 0 or fade_in_s + fade_out_s > T:
        raise ValueError(
            f"fades fade_in_s={fade_in_s:g} + fade_out_s={fade_out_s:g} do not fit the "
            f"synchronized duration {T:g} s"
        )
    n = int(np.floor(T * fs))
    t = np.arange(n) / fs
    amplitude = 10.0 ** (level_dbfs / 20.0)
    x = amplitude * np.sin(2 * np.pi * f1 * L * np.expm1(t / L))
    x = fade(x, int(round(fade_in_s * fs)), int(round(fade_out_s * fs)))
    x.flags.writeable = False
    return Sweep(
        signal=x,
        sample_rate=fs,
        f1_hz=f1,
        f2_hz=f2,
        duration_s=T,
        rate_s=L,
        level_dbfs=float(level_dbfs),
        fade_in_s=fade_in_s,
        fade_out_s=fade_out_s,
    )


def extended_range(
    band_lo_hz: float,
    band_hi_hz: float,
    sample_rate: float,
    octaves_below: float = 1.0,
    octaves_above: float = 1.0,
    max_fraction_of_nyquist: float = 0.9,
) -> tuple[float, float]:
    """Sweep range extended past the band of interest.

    The sweep's fades and its abrupt start/stop disturb the response near f1 and
    f2 (edge ringing); extending the sweep keeps that outside the band.

    Returns ``(f1, f2)`` with ``f1 = band_lo / 2**octaves_below`` and
    ``f2 = min(band_hi * 2**octaves_above, max_fraction_of_nyquist * fs/2)``, but
    never below ``band_hi`` (then there is no extension at the top).

    Parameters
    ----------
    band_lo_hz, band_hi_hz : float
        Band of interest, ``0 < band_lo < band_hi <= fs/2``.
    sample_rate : float
        Sample rate in Hz.
    octaves_below, octaves_above : float
        Extension in octaves (>= 0).
    max_fraction_of_nyquist : float
        Upper limit of f2 as a fraction of the Nyquist frequency, in (0, 1].
    """
    nyquist = float(sample_rate) / 2
    if not 0 < band_lo_hz < band_hi_hz:
        raise ValueError(f"need 0 < band_lo_hz < band_hi_hz, got {band_lo_hz!r}, {band_hi_hz!r}")
    if band_hi_hz > nyquist:
        raise ValueError(f"band_hi_hz={band_hi_hz!r} is above the Nyquist frequency {nyquist:g} Hz")
    if octaves_below < 0 or octaves_above < 0:
        raise ValueError(f"octave extensions must be >= 0, got {octaves_below!r}, {octaves_above!r}")
    if not 0 < max_fraction_of_nyquist <= 1:
        raise ValueError(f"max_fraction_of_nyquist must be in (0, 1], got {max_fraction_of_nyquist!r}")
    f1 = band_lo_hz / 2.0**octaves_below
    f2 = min(band_hi_hz * 2.0**octaves_above, max_fraction_of_nyquist * nyquist)
    return float(f1), float(max(f2, band_hi_hz))
