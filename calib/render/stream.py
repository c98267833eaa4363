r"""Streaming render: :func:`calib.render.in_memory.render`, block by block, in bounded memory.

The whole-file render takes a spectrogram of the entire signal and convolves
the full length at once, so memory grows with the audio. Here every stage
keeps only the state it needs between blocks:

- :class:`StreamingUpmix`: the upmix of :mod:`calib.render.upmix` with the
  same STFT frames (Hann, 75 % overlap, frame p centred on sample p * hop),
  the recursive smoothing carried across blocks as its last value (the
  same recursion as the whole-file :func:`scipy.signal.lfilter`), and the inverse STFT by overlap-add of the
  dual window (the pending three quarters of a frame carried over).
- :class:`calib.signals.overlap_save.OverlapSave`: convolution of K inputs with a
  [K, S, L] FIR matrix by FFT overlap-save, the last L - 1 inputs carried as state.
- :func:`render_blocks`: both, fed from an iterator of stereo blocks.

The upmix's power floor is a fraction of the mean smoothed power over the
whole signal, so the render makes one cheap first pass over the input
(:func:`upmix_floor`): by Parseval, the one-sided power of a frame needs only
its windowed energy and its DC and Nyquist bins, no FFT,

.. math:: \sum_{f=0}^{N/2} |X_p(f)|^2 = \tfrac12\Big(N \sum_n (w x_p)^2 + X_p(0)^2 + X_p(N/2)^2\Big),

and the mean of the first-order recursive average y[p] = a y[p-1] + (1 - a) r[p]
(zero start) over P frames is :math:`\frac1P\sum_q r[q]\,(1 - a^{P-q})`.
The output equals the whole-file render to rounding (tests: 1e-6 of the peak).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from calib.render.in_memory import effective_fir
from calib.render.upmix import _REL_FLOOR, _stft, centre_spectrum
from calib.signals.overlap_save import OverlapSave
from calib.store.calibration import Calibration

#: Input samples per block (1.4 s at 48 kHz): large enough for batched FFTs, small in memory.
BLOCK = 1 << 16
#: STFT frames per chunk of the upmix's spectral work (32 frames x 1025 bins: 260 kB per array).
CHUNK = 32


class _Framer:
    """Cut a stream into the STFT frames of :func:`calib.render.upmix._stft`.

    Frame p covers samples [p * hop - mid, p * hop - mid + m) of the signal,
    zero before sample 0 and after its end; frames run from ``p_min`` to
    ``p_max(n_pad)`` (exclusive) as in :class:`scipy.signal.ShortTimeFFT`.
    """

    def __init__(self, sample_rate: float, frame_s: float, channels: int = 2) -> None:
        self.sft = _stft(sample_rate, frame_s)
        self.m, self.hop, self.mid = self.sft.m_num, self.sft.hop, self.sft.m_num_mid
        self.p_next = self.sft.p_min  # next frame to cut
        self.buf = np.zeros((channels, -self.start(self.p_next)))  # the zeros before sample 0
        self.buf_start = self.start(self.p_next)  # absolute index of buf[:, 0]
        self.n_in = 0  # samples received

    def start(self, p: int) -> int:
        """Absolute index of the first sample of frame p."""
        return p * self.hop - self.mid

    def push(self, block: np.ndarray) -> np.ndarray:
        """Append [C, b] samples; return the frames now complete, [C, P, m] (unwindowed)."""
        self.buf = np.concatenate([self.buf, block], axis=-1)
        self.n_in += block.shape[-1]
        return self._cut(self.buf_start + self.buf.shape[-1])

    def finish(self) -> tuple[np.ndarray, int]:
        """Return the remaining frames (zeros after the end) and the signal length the STFT used."""
        n_pad = max(self.n_in, self.m)  # as upmix: at least one frame
        end = self.start(self.sft.p_max(n_pad) - 1) + self.m
        pad = end - (self.buf_start + self.buf.shape[-1])
        self.buf = np.pad(self.buf, ((0, 0), (0, max(pad, 0))))
        return self._cut(end), n_pad

    def _cut(self, end: int) -> np.ndarray:
        count = max((end - self.m - self.start(self.p_next)) // self.hop + 1, 0)
        if count == 0:
            return np.zeros((self.buf.shape[0], 0, self.m))
        off = self.start(self.p_next) - self.buf_start
        frames = sliding_window_view(self.buf[:, off:], self.m, axis=-1)[:, :: self.hop][:, :count]
        self.p_next += count
        keep = self.start(self.p_next) - self.buf_start
        self.buf, self.buf_start = self.buf[:, keep:], self.buf_start + keep
        return frames


def upmix_floor(
    blocks: Iterable[np.ndarray], sample_rate: float, *, time_constant_s: float = 0.1, frame_s: float = 0.04
) -> float:
    """Return the power floor :func:`calib.render.upmix.upmix` derives from the whole signal, in one pass.

    Parameters
    ----------
    blocks
        The stereo signal as [2, b] blocks.
    sample_rate, time_constant_s, frame_s
        As for :func:`~calib.render.upmix.upmix`.

    Returns
    -------
    float
        ``1e-12 * mean(E|L|^2 + E|R|^2) + tiny`` over all frames and bins.
    """
    framer = _Framer(sample_rate, frame_s)
    m, hop = framer.m, framer.hop
    r = m // hop  # hops per frame
    w = framer.sft.win
    alt = w * (-1.0) ** np.arange(m)  # Nyquist bin: the window times (-1)^n
    # Frame p is hop segments p .. p + r - 1: each sum over a frame is r partial sums over segments,
    # one matrix product for all segments (per sample 3 r multiply-adds, no [P, m] temporaries).
    seg_w2 = (w**2).reshape(r, hop).T  # [hop, r]
    seg_lin = np.concatenate([w.reshape(r, hop), alt.reshape(r, hop)]).T  # [hop, 2 r]: DC and Nyquist
    per_frame: list[np.ndarray] = []

    def power(frames: np.ndarray) -> np.ndarray:  # [2, P, m] -> [P]: one-sided power, L + R
        n_p = frames.shape[1]
        if n_p == 0:
            return np.zeros(0)
        segs = np.concatenate([frames[:, :, :hop], frames[:, -1, hop:].reshape(2, r - 1, hop)], axis=1)  # [2, Q, hop]
        parts_e, parts_l = (segs * segs) @ seg_w2, segs @ seg_lin  # [2, Q, r], [2, Q, 2 r]
        energy, dc, nyq = parts_e[:, :n_p, 0].copy(), parts_l[:, :n_p, 0].copy(), parts_l[:, :n_p, r].copy()
        for j in range(1, r):
            energy += parts_e[:, j : j + n_p, j]
            dc += parts_l[:, j : j + n_p, j]
            nyq += parts_l[:, j : j + n_p, r + j]
        return (m * energy.sum(0) + (dc**2).sum(0) + (nyq**2).sum(0)) / 2.0

    for block in blocks:
        per_frame.append(power(framer.push(block)))
    per_frame.append(power(framer.finish()[0]))
    raw = np.concatenate(per_frame)
    a = np.exp(-hop / (time_constant_s * sample_rate))
    n_frames, n_bins = raw.size, m // 2 + 1
    weights = 1.0 - a ** (n_frames - np.arange(n_frames))
    return _REL_FLOOR * float(raw @ weights) / (n_frames * n_bins) + np.finfo(float).tiny


class StreamingUpmix:
    """:func:`calib.render.upmix.upmix` block by block (see the module docstring).

    Parameters
    ----------
    sample_rate
        Sample rate in Hz.
    floor
        The power floor from :func:`upmix_floor` over the same signal.
    time_constant_s, frame_s
        As for :func:`~calib.render.upmix.upmix`.
    """

    def __init__(
        self, sample_rate: float, floor: float, *, time_constant_s: float = 0.1, frame_s: float = 0.04
    ) -> None:
        if time_constant_s <= 0:
            raise ValueError(f"time_constant_s: expected > 0, got {time_constant_s}")
        self.framer = _Framer(sample_rate, frame_s)
        sft = self.framer.sft
        if self.framer.m % self.framer.hop:
            raise ValueError("frame_s: the frame must be a whole number of hops")
        self.floor = floor
        self.a = np.exp(-sft.hop / (time_constant_s * sample_rate))
        self.state = np.zeros((3, self.framer.m // 2 + 1))  # [3, F] smoothing state across frames
        self.tail = np.zeros(self.framer.m - self.framer.hop)  # overlap-add still pending
        self.windowed = np.empty((2, CHUNK, self.framer.m))  # buffers of the spectral work on a chunk
        n_bins = self.framer.m // 2 + 1
        self.spec = np.empty((2, CHUNK, n_bins), dtype=complex)
        self.products = np.empty((3, CHUNK, 2 * n_bins))
        self.raw = np.empty((CHUNK, 3, n_bins))
        self.centre_frames = np.empty((CHUNK, self.framer.m))
        self.out_start = self.framer.start(sft.p_min)  # absolute index of the next centre sample
        self.stereo = np.zeros((2, 0))  # input not yet emitted, from absolute index `emitted`
        self.emitted = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """Upmix the next [2, b] samples; returns the [3, b'] (L', R', C) now final."""
        self.stereo = np.concatenate([self.stereo, block], axis=-1)
        return self._emit(self._centre(self.framer.push(block)), self.framer.n_in)

    def finish(self) -> np.ndarray:
        """Return the remaining (L', R', C) up to the end of the signal."""
        frames, _ = self.framer.finish()
        return self._emit(self._centre(frames), self.framer.n_in)

    def _centre(self, frames: np.ndarray) -> np.ndarray:
        """Centre samples made final by these frames (absolute start ``out_start``)."""
        fr = self.framer
        n_p, hop, r = frames.shape[1], fr.hop, fr.m // fr.hop
        if n_p == 0:
            return np.zeros(0)
        # Spectral work in chunks of CHUNK frames (every per-bin temporary stays in cache), each chunk
        # overlap-added at once: frame i starts i hops after the first; r = m / hop segments per frame.
        ola = np.zeros((n_p + r - 1, hop))
        for i in range(0, n_p, CHUNK):
            y = self._centre_frames(frames[:, i : i + CHUNK])
            for j in range(r):
                ola[i + j : i + j + y.shape[0]] += y[:, j * hop : (j + 1) * hop]
        ola = ola.reshape(-1)
        ola[: self.tail.size] += self.tail
        final, self.tail = ola[: n_p * hop], ola[n_p * hop :].copy()
        start = self.out_start
        self.out_start += final.size
        return final[max(-start, 0) :] if start < 0 else final

    def _centre_frames(self, frames: np.ndarray) -> np.ndarray:
        """[2, P, m] frames -> [P, m] windowed centre frames, ready for the overlap-add."""
        fr = self.framer
        n_p = frames.shape[1]
        # numpy's FFTs (pocketfft too) write into the buffers kept across chunks: no fresh pages per chunk.
        windowed = np.multiply(frames, fr.sft.win, out=self.windowed[:, :n_p])
        spec = np.fft.rfft(windowed, axis=-1, out=self.spec[:, :n_p])  # [2, P, F]
        # |L|^2, |R|^2, Re L R* per bin: products of the interleaved (re, im) pairs, then the pairs' sums.
        pairs, products = spec.view(np.float64), self.products[:, :n_p]  # [2, P, 2F], [3, P, 2F]
        np.multiply(pairs, pairs, out=products[:2])
        np.multiply(pairs[0], pairs[1], out=products[2])
        raw = self.raw[:n_p]  # [P, 3, F]: one row per frame for the smoothing
        np.add(products[..., 0::2], products[..., 1::2], out=raw.transpose(1, 0, 2))
        smooth = self._smooth(raw)
        y = np.fft.irfft(centre_spectrum(spec[0], spec[1], smooth[:, 0], smooth[:, 1], smooth[:, 2], self.floor),
                         fr.m, axis=-1, out=self.centre_frames[:n_p])
        y *= fr.sft.dual_win
        return y

    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        """E[.][p] = a E[.][p-1] + (1 - a) raw[p] over the frames (axis 0), from the carried state, in place.

        The recursion of :func:`scipy.signal.lfilter` with ``b = [1 - a]``, ``a = [1, -a]``
        (which the whole-file upmix uses), frame by frame on whole [3, F] rows: two
        passes per frame (a running sum along axis 0 in numpy is several times slower).
        """
        raw *= 1.0 - self.a
        prev, term = self.state, np.empty_like(self.state)
        for row in raw:
            row += np.multiply(prev, self.a, out=term)
            prev = row
        self.state = raw[-1].copy()
        return raw

    def _emit(self, centre: np.ndarray, n_total: int) -> np.ndarray:
        """(L - C, R - C, C) for the final samples below the signal's end."""
        n = min(centre.size, n_total - self.emitted)  # the STFT's zero padding ends past the signal
        c = centre[:n]
        x, self.stereo = self.stereo[:, :n], self.stereo[:, n:]
        self.emitted += n
        return np.stack([x[0] - c, x[1] - c, c])


def render_blocks(
    cal: Calibration,
    stereo_blocks: Callable[[], Iterable[np.ndarray]],
    *,
    time_constant_s: float = 0.1,
    frame_s: float = 0.04,
    dtype: type[np.floating] = np.float32,
) -> Iterator[np.ndarray]:
    """Render stereo to driver feeds block by block: :func:`calib.render.in_memory.render` streamed.

    Parameters
    ----------
    cal
        The unit's calibration.
    stereo_blocks
        Called twice (the first pass finds the upmix's power floor); each call
        returns the same stereo signal as an iterable of [2, b] float blocks at
        ``cal.sample_rate``.
    time_constant_s, frame_s
        Upmix options (see :func:`calib.render.upmix.upmix`).
    dtype
        Precision of the filter stage's transforms (:class:`OverlapSave`): float32 by
        default, within a few 1e-7 of the output peak of float64 and twice as fast; the
        upmix stays float64 (its statistics cancel: float32 would amplify rounding).

    Yields
    ------
    numpy.ndarray
        [S, b'] driver feeds in ``cal.drivers`` order; N + T + Tv - 2 samples in all.
    """

    def checked() -> Iterator[np.ndarray]:
        for block in stereo_blocks():
            x = np.asarray(block, dtype=np.float64)
            if x.ndim != 2 or x.shape[0] != 2:
                raise ValueError(f"stereo: expected blocks of shape [2, b], got {list(x.shape)}")
            yield x

    floor = upmix_floor(checked(), cal.sample_rate, time_constant_s=time_constant_s, frame_s=frame_s)
    up = StreamingUpmix(cal.sample_rate, floor, time_constant_s=time_constant_s, frame_s=frame_s)
    conv = OverlapSave(effective_fir(cal), dtype=dtype)
    for x in checked():
        out = conv.push(up.push(x))
        if out.shape[-1]:
            yield out
    yield conv.push(up.finish())
    yield conv.finish()
