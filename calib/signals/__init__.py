"""calib.signals: sweeps, deconvolution, harmonic separation, MESM, quality checks.

Pure numpy/scipy (no I/O). Channels first, samples last (``axis=-1``).
scipy.signal is imported inside the functions that filter, on first use:
importing it costs about 1.4 s (it pulls in scipy.stats), paid by every
command start, and the commands that only read, report or print never filter.
Typical single-sweep chain::

    f1, f2 = extended_range(band_lo, band_hi, fs)
    sweep = synchronized_sweep(f1, f2, 2.0, fs, level_dbfs=-12)
    ir = deconvolve(mic, loopback, band_lo, band_hi, fs)        # circular IR
    parts = separate(ir, sweep, ir_length, n_harmonics=3)        # linear + harmonics
    thd = thd_percent(parts.linear, parts.harmonics, band_lo, band_hi / 3, fs, f_max_hz=band_hi)
    snr = snr_db(ir, ir_length, noise_window(ir.shape[-1], ir_length, sweep.rate_s, fs))
"""

from calib.signals.convolve import fft_convolve, next_pow2
from calib.signals.deconvolve import band_weight, deconvolve, deconvolve_with_sweep, regularized_inverse
from calib.signals.harmonics import (
    HarmonicIRs,
    extract,
    harmonic_delays_s,
    harmonic_length_samples,
    separate,
    thd_percent,
)
from calib.signals.mesm import mesm_excitation, mesm_offsets, mesm_split
from calib.signals.quality import estimate_latency_samples, is_clipped, noise_window, peak_dbfs, snr_db
from calib.signals.smoothing import smooth_fractional_octave
from calib.signals.sweep import Sweep, extended_range, synchronized_sweep
from calib.signals.windows import fade, half_hann, window_ir

__all__ = [
    "HarmonicIRs",
    "Sweep",
    "band_weight",
    "deconvolve",
    "deconvolve_with_sweep",
    "estimate_latency_samples",
    "extended_range",
    "extract",
    "fade",
    "fft_convolve",
    "half_hann",
    "harmonic_delays_s",
    "harmonic_length_samples",
    "is_clipped",
    "mesm_excitation",
    "mesm_offsets",
    "mesm_split",
    "next_pow2",
    "noise_window",
    "peak_dbfs",
    "regularized_inverse",
    "separate",
    "smooth_fractional_octave",
    "snr_db",
    "synchronized_sweep",
    "thd_percent",
    "window_ir",
]
