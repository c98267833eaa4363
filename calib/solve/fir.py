"""FIR synthesis from per-bin filters, and delay alignment of filter sets.

The filters ``H(f)`` already contain the modeling delay (the target delay
``tau_m`` of the design), so their impulse responses are causal up to the
pre-ringing the inverse needs before the main peak. Synthesis:

1. ``h = irfft(H, n_fft)`` (circular; anything acausal wraps to the end);
2. keep the first ``n_taps`` samples (causal truncation);
3. window: half-Hann fade-in over ``[0, n_in)`` and half-Hann fade-out over
   the last ``n_out`` samples, flat in between. By default ``n_in`` is half
   the bulk delay (peak of the summed energy, :func:`bulk_delay_samples`):
   the fade only touches the start of the pre-ringing, never the main peak;
   ``n_out = n_taps // 8`` tames the truncation of the tail.

The truncation error is small when ``n_taps`` covers the pre-ringing
(modeling delay) plus the decay of the filters; choose ``n_fft >= n_taps``
with enough frequency resolution for the plant (``n_fft`` is the plant's
rfft length).
"""

from __future__ import annotations

import numpy as np

__all__ = ["align_delays", "arrival_delay_s", "bulk_delay_samples", "half_hann_window", "synthesize_fir"]


def half_hann_window(n_taps: int, n_in: int, n_out: int) -> np.ndarray:
    """Flat window of ``n_taps`` with half-Hann fade-in of ``n_in`` and fade-out of ``n_out`` samples."""
    if n_in < 0 or n_out < 0 or n_in + n_out > n_taps:
        raise ValueError(f"need 0 <= n_in, n_out and n_in + n_out <= n_taps={n_taps}, got n_in={n_in}, n_out={n_out}")
    w = np.ones(n_taps)
    if n_in:
        w[:n_in] = np.sin(0.5 * np.pi * (np.arange(n_in) + 0.5) / n_in) ** 2
    if n_out:
        w[n_taps - n_out :] = np.cos(0.5 * np.pi * (np.arange(n_out) + 0.5) / n_out) ** 2
    return w


def bulk_delay_samples(fir: np.ndarray) -> int:
    """Bulk delay of a filter set: index of the peak of ``sum |fir|^2`` over all but the last axis."""
    fir = np.asarray(fir)
    if fir.ndim < 1 or fir.shape[-1] == 0:
        raise ValueError(f"fir must have samples on its last axis, got shape {fir.shape}")
    energy = np.sum(np.abs(fir.reshape(-1, fir.shape[-1])) ** 2, axis=0)
    return int(np.argmax(energy))


def arrival_delay_s(plant: np.ndarray, freqs_hz: np.ndarray) -> float:
    """Bulk acoustic delay of a plant on a full rfft grid, seconds.

    The plant's impulse responses (``irfft`` along the frequency axis, length
    ``n_fft = 2 (F - 1)``, ``sample_rate = 2 f_max``) are summed in energy
    over all channels; the peak is the bulk arrival (direct sound). Use it to
    choose modeling delays: the design's ``modeling_delay_s`` counts from the
    plant's time origin, so ``arrival_delay_s(plant) + latency`` gives the
    filters ``latency`` seconds of pre-ringing room, and equal latencies for
    the CTC (ears) and beam (arc) plants align both paths at the listener.

    Parameters
    ----------
    plant : array_like, complex [F, ...]
    freqs_hz : array_like [F]
        ``np.fft.rfftfreq(n_fft, 1 / sample_rate)`` with even ``n_fft``.
    """
    plant = np.asarray(plant)
    freqs = np.asarray(freqs_hz, dtype=float)
    n_freqs = freqs.size
    if plant.ndim < 1 or plant.shape[0] != n_freqs or n_freqs < 2:
        raise ValueError(f"plant must have F={n_freqs} >= 2 bins on axis 0, got shape {plant.shape}")
    n_fft = 2 * (n_freqs - 1)
    sample_rate = 2.0 * freqs[-1]
    if not np.allclose(freqs, np.fft.rfftfreq(n_fft, 1.0 / sample_rate), rtol=1e-9, atol=1e-9 * sample_rate):
        raise ValueError("freqs_hz must be a full rfft grid 0, df, ..., sample_rate / 2 (even n_fft)")
    ir = np.moveaxis(np.fft.irfft(plant, n=n_fft, axis=0), 0, -1)
    return bulk_delay_samples(ir) / sample_rate


def synthesize_fir(
    H: np.ndarray,
    n_fft: int,
    n_taps: int,
    sample_rate: float,
    fade_in_s: float | None = None,
    fade_out_s: float | None = None,
) -> np.ndarray:
    """Causal, windowed FIR filters from per-bin responses.

    Parameters
    ----------
    H : array_like, complex [F, ...]
        Responses on the rfft grid of ``n_fft`` (``F = n_fft // 2 + 1``),
        frequency first as the solvers return them.
    n_fft : int
        FFT length of the grid.
    n_taps : int
        FIR length, ``<= n_fft``.
    sample_rate : float
        Hz; converts the fade lengths.
    fade_in_s, fade_out_s : float, optional
        Fade lengths in seconds (defaults: half the bulk delay; ``n_taps // 8``).

    Returns
    -------
    ndarray, float [..., n_taps]
        Channels first, samples last.
    """
    H = np.asarray(H)
    if n_fft < 2 or H.ndim < 1 or H.shape[0] != n_fft // 2 + 1:
        raise ValueError(
            f"H must have F = n_fft // 2 + 1 = {n_fft // 2 + 1} bins on axis 0 for n_fft={n_fft}, got shape {H.shape}"
        )
    if not 2 <= n_taps <= n_fft:
        raise ValueError(f"n_taps must be in [2, n_fft={n_fft}], got {n_taps!r}")
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be > 0, got {sample_rate!r}")
    if not np.all(np.isfinite(H)):
        raise ValueError("H contains NaN or infinite values")
    h = np.moveaxis(np.fft.irfft(H, n=n_fft, axis=0), 0, -1)[..., :n_taps]
    n_in = bulk_delay_samples(h) // 2 if fade_in_s is None else int(round(fade_in_s * sample_rate))
    n_out = n_taps // 8 if fade_out_s is None else int(round(fade_out_s * sample_rate))
    return h * half_hann_window(n_taps, n_in, n_out)


def align_delays(
    *firs: np.ndarray, delays_samples: list[int] | np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Pad filter sets with leading zeros so that their bulk delays coincide.

    Parameters
    ----------
    *firs : array_like [..., T_i]
        Filter sets (e.g. the CTC filters [2, S, T] and the beam filters
        [1, S, T]).
    delays_samples : sequence of int, optional
        Delay of each set to align; default :func:`bulk_delay_samples` of
        each. Give them explicitly when the paths must align at a listener
        rather than at their filter peaks (e.g. with acoustic delays added).

    Returns
    -------
    aligned : list of ndarray [..., L]
        Each set delayed by ``max(d) - d_i`` samples and zero-padded at the
        end to the common length ``L = max(T_i + max(d) - d_i)``.
    shifts : ndarray of int [n]
        The delay added to each set.
    """
    if not firs:
        raise ValueError("align_delays needs at least one filter set")
    sets = [np.asarray(f) for f in firs]
    if delays_samples is None:
        delays = np.array([bulk_delay_samples(f) for f in sets])
    else:
        delays = np.asarray(delays_samples)
        if delays.shape != (len(sets),) or not np.all(delays == np.round(delays)):
            raise ValueError(f"delays_samples must be {len(sets)} integers, got {delays_samples!r}")
        delays = delays.astype(int)
    shifts = delays.max() - delays
    length = max(f.shape[-1] + s for f, s in zip(sets, shifts, strict=True))
    aligned = []
    for f, s in zip(sets, shifts, strict=True):
        pad = [(0, 0)] * (f.ndim - 1) + [(int(s), int(length - f.shape[-1] - s))]
        aligned.append(np.pad(f, pad))
    return aligned, shifts
