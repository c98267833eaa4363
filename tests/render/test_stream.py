"""The streaming render equals the whole-file render (calib.render.in_memory / upmix) block by block."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import ShortTimeFFT, lfilter
from scipy.signal.windows import hann

from calib.render.in_memory import render
from calib.render.stream import (
    StreamingUpmix,
    render_blocks,
    upmix_floor,
)
from calib.render.upmix import upmix


def _blocks(x: np.ndarray, size: int):
    return lambda: (x[:, i : i + size] for i in range(0, x.shape[-1], size))


def _stereo(n: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((2, n))
    x[1] += 0.7 * x[0]  # a correlated part, so the centre is not empty
    return x


@pytest.mark.parametrize(
    ("n", "block", "tv", "delay"),
    [(3000, 700, 1, 0), (100, 37, 1, 0), (2048, 2048, 3, 1), (1, 1, 1, 0), (20017, 4096, 5, 2), (9000, 20000, 1, 0)],
)
def test_render_blocks_equals_whole_file_render(make_cal, n, block, tv, delay):
    cal = make_cal(virtualizer_taps=tv, delay_samples=delay)
    x = _stereo(n)
    ref = render(cal, x)
    got = np.concatenate(list(render_blocks(cal, _blocks(x, block))), axis=-1)  # float32 filter transforms
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    # In float64 throughout, the stream is the whole-file render to rounding: the blocking changes nothing.
    exact = np.concatenate(list(render_blocks(cal, _blocks(x, block), dtype=np.float64)), axis=-1)
    np.testing.assert_allclose(exact, ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_streaming_upmix_equals_upmix_with_silence_and_other_options():
    x = _stereo(30000, seed=4)
    x[:, 10000:14000] = 0.0  # silence mid-stream: the power floor decides the centre there
    opts = {"time_constant_s": 0.03, "frame_s": 0.01}
    ref = upmix(x, 44100, **opts)
    up = StreamingUpmix(44100, upmix_floor(_blocks(x, 999)(), 44100, **opts), **opts)
    got = np.concatenate([*(up.push(b) for b in _blocks(x, 999)()), up.finish()], axis=-1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_upmix_floor_is_the_mean_smoothed_power_of_the_whole_stft():
    # Independent reference: the spectrogram and the smoothing of the whole signal, as the upmix does it.
    x, rate = _stereo(12345, seed=7), 48000
    sft = ShortTimeFFT(hann(2048, sym=False), hop=512, fs=rate)
    spec = sft.stft(x)
    a = np.exp(-512 / (0.1 * rate))
    smoothed = lfilter([1 - a], [1, -a], np.abs(spec) ** 2, axis=-1).sum(axis=0)
    expected = 1e-12 * smoothed.mean()
    np.testing.assert_allclose(upmix_floor(_blocks(x, 1000)(), rate), expected, rtol=1e-12)


def test_stream_errors(make_cal):
    with pytest.raises(ValueError, match="time_constant_s: expected > 0, got 0"):
        StreamingUpmix(48000, 1e-12, time_constant_s=0)
    with pytest.raises(ValueError, match=r"stereo: expected blocks of shape \[2, b\], got \[3, 10\]"):
        list(render_blocks(make_cal(), lambda: iter([np.zeros((3, 10))])))
