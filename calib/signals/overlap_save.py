"""FFT overlap-save convolution of K input streams with a [K, S, L] FIR matrix, block by block.

Each FFT of ``nfft`` samples yields ``nfft - L + 1`` new outputs; the last
L - 1 inputs are the state carried between blocks. The sum over the inputs
is taken in the frequency domain, so a block costs K forward and S inverse
FFTs. Used by the render (:mod:`calib.render.stream`) and by the capture
(:func:`calib.signals.mesm.excitation_block`: a sweep through a calibration's filters).
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["OverlapSave", "best_fft_length", "convolve_fir_matrix", "cost_per_sample"]


class OverlapSave:
    """FFT overlap-save convolution of K input streams with a [K, S, L] FIR matrix.

    Output s is sum over k of h[k, s] * x[k], the same as
    :func:`scipy.signal.oaconvolve` per pair, with the last L - 1 inputs of
    each block carried over as state. The sum over the inputs is taken in the
    frequency domain, so a block costs K forward and S inverse FFTs (3 + 5 for
    the render, not 15) and K S complex multiply-adds per bin.

    Parameters
    ----------
    fir
        [K, S, L] filters.
    nfft
        FFT length; by default the fast length (:func:`scipy.fft.next_fast_len`)
        with the least work per output sample, :func:`cost_per_sample`.
    dtype
        Precision of the transforms: ``numpy.float64`` (default), or
        ``numpy.float32`` (complex64 spectra), about twice as fast: the error of a
        float32 FFT convolution is a few 1e-7 of the output peak, the rounding of
        the float32 WAV the render writes anyway (bench/bench_render.py prints it).
    """

    def __init__(self, fir: np.ndarray, nfft: int | None = None, dtype: type[np.floating] = np.float64) -> None:
        h = np.asarray(fir, dtype=np.float64)
        if h.ndim != 3 or h.shape[-1] == 0:
            raise ValueError(f"fir: expected shape [K, S, L >= 1], got {list(h.shape)}")
        n_k, n_s, n_taps = h.shape
        if nfft is None:
            nfft = best_fft_length(n_k, n_s, n_taps)
        if nfft < n_taps:
            raise ValueError(f"nfft: expected >= the filter length {n_taps}, got {nfft}")
        self.nfft, self.taps, self.step = nfft, n_taps, nfft - n_taps + 1
        self.dtype = np.dtype(dtype)
        self.spectra = scipy.fft.rfft(h, nfft, axis=-1).astype(np.result_type(self.dtype, np.complex64))  # [K, S, F]
        self.buf = np.zeros((n_k, n_taps - 1), self.dtype)  # the state: last L - 1 inputs, then unprocessed input
        self.n_in = 0

    def fork(self, state: np.ndarray) -> OverlapSave:
        """Return a convolver with these filters (spectra shared, read-only) that carries ``state``.

        ``state`` is [K, L - 1]: the last L - 1 inputs, as if it had run all along; nothing is emitted yet.
        """
        if np.shape(state) != self.buf[:, : self.taps - 1].shape:
            raise ValueError(
                f"state: expected shape {list(self.buf[:, : self.taps - 1].shape)}, got {list(np.shape(state))}"
            )
        conv = copy.copy(self)
        conv.buf, conv.n_in = np.array(state, dtype=self.dtype), 0
        return conv

    def push(self, x: np.ndarray) -> np.ndarray:
        """Convolve the next [K, b] inputs; returns the [S, b'] outputs now complete."""
        self.buf = np.concatenate([self.buf, x], axis=-1, dtype=self.dtype)
        self.n_in += x.shape[-1]
        return self._run()

    def finish(self) -> np.ndarray:
        """Return the remaining outputs, up to n_in + L - 1 in all (the filters' tails)."""
        done = self.n_in - (self.buf.shape[-1] - (self.taps - 1))  # outputs emitted so far
        remaining = self.n_in + self.taps - 1 - done
        n_blocks = -(-remaining // self.step)
        self.buf = np.pad(self.buf, ((0, 0), (0, n_blocks * self.step + self.taps - 1 - self.buf.shape[-1])))
        return self._run()[:, :remaining]

    def _run(self) -> np.ndarray:
        n_blocks = (self.buf.shape[-1] - (self.taps - 1)) // self.step
        n_k, n_s = self.spectra.shape[:2]
        if n_blocks <= 0:
            return np.zeros((n_s, 0))
        frames = sliding_window_view(self.buf, self.nfft, axis=-1)[:, :: self.step][:, :n_blocks]
        spec = scipy.fft.rfft(frames, axis=-1)  # [K, B, F]
        out = np.empty((n_s, *spec.shape[1:]), dtype=spec.dtype)
        term = np.empty(spec.shape[1:], dtype=spec.dtype)
        for s in range(n_s):  # the sum over inputs per driver, in place: one [B, F] temporary in all
            np.multiply(spec[0], self.spectra[0, s], out=out[s])
            for k in range(1, n_k):
                out[s] += np.multiply(spec[k], self.spectra[k, s], out=term)
        y = scipy.fft.irfft(out, self.nfft, axis=-1, overwrite_x=True)
        self.buf = self.buf[:, n_blocks * self.step :]
        feeds = np.empty((n_s, n_blocks * self.step))  # float64 out, whatever the transforms' precision
        feeds.reshape(n_s, n_blocks, self.step)[...] = y[..., self.taps - 1 :]  # drop the wrapped part
        return feeds


#: Relative cost of one complex multiply-add per bin against one real FFT's n log2(n) (numpy, measured on x86-64).
_MAC_PER_FFT_UNIT = 6.0


def cost_per_sample(n_inputs: int, n_outputs: int, taps: int, nfft: int) -> float:
    """Work of overlap-save per output sample, in units of n log2(n) of a real FFT.

    Per block: ``n_inputs`` forward and ``n_outputs`` inverse FFTs of ``nfft`` and
    ``n_inputs * n_outputs`` complex multiply-adds per bin, for ``nfft - taps + 1`` new outputs.
    """
    ffts = (n_inputs + n_outputs) * nfft * np.log2(nfft)
    macs = _MAC_PER_FFT_UNIT * n_inputs * n_outputs * (nfft // 2 + 1)
    return float(ffts + macs) / (nfft - taps + 1)


def best_fft_length(n_inputs: int, n_outputs: int, taps: int) -> int:
    """Return the FFT length with the least :func:`cost_per_sample`: 2^a or 3 * 2^a, from 2 to 8 filter lengths.

    Lengths of other factors are slower per n log2(n) in pocketfft, and past about 8 filter
    lengths the transforms outgrow the core's cache for a gain of a few percent on paper
    (measured with bench/bench_render.py: 12288 and 16384 at 2303 taps within 5 %, 32768
    10 % slower, 34992 = 2^4 3^7 60 % slower).
    """
    low, high = 2 * taps, 8 * taps
    sizes = [n for a in range(int(np.log2(high)) + 1) for n in (2**a, 3 * 2**a) if low <= n <= high]
    return min(sorted(sizes), key=lambda n: cost_per_sample(n_inputs, n_outputs, taps, n))


def convolve_fir_matrix(x: np.ndarray, fir: np.ndarray, n_out: int) -> np.ndarray:
    """Return ``y_s = sum_k x_k * fir[k, s]`` (linear convolution), its first ``n_out`` samples.

    Parameters
    ----------
    x
        [K, N] inputs.
    fir
        [K, S, L] filters.
    n_out
        Output samples kept (from sample 0), ``<= N + L - 1``.

    Returns
    -------
    numpy.ndarray
        [S, n_out], float64.
    """
    n_max = x.shape[-1] + np.shape(fir)[-1] - 1
    if not 0 <= n_out <= n_max:
        raise ValueError(f"n_out: expected 0 <= n_out <= N + L - 1 = {n_max}, got {n_out}")
    conv = OverlapSave(fir)
    out = [conv.push(x)]
    done = out[0].shape[-1]
    if done < n_out:
        out.append(conv.finish())
    return np.concatenate(out, axis=-1)[:, :n_out]
