"""Reflection detection and gate windows against synthetic IRs with known arrivals."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.signal import butter, sosfilt

from calib.signals.gate import detect_arrivals, gate_window, lowest_supported_hz

FS = 48000


def driver_ir(n: int = 4096, fc_hz: float = 80.0, lowpass_hz: float = 6000.0) -> np.ndarray:
    """A loudspeaker-like IR at t = 0: 2nd-order high-pass (long low-frequency ring) and low-pass."""
    x = np.zeros(n)
    x[0] = 1.0
    x = sosfilt(butter(2, fc_hz, "highpass", fs=FS, output="sos"), x)
    return sosfilt(butter(2, lowpass_hz, "lowpass", fs=FS, output="sos"), x)


def room_ir(direct_s: float, reflections: list[tuple[float, float]], noise_db: float = -70.0, seed: int = 0,
            n: int = 4096) -> np.ndarray:
    """The driver IR delayed to ``direct_s`` plus copies at ``(time_s, gain)``, plus white noise."""
    base = driver_ir(n)
    out = np.zeros(n)
    for t, g in [(direct_s, 1.0), *reflections]:
        shift = int(round(t * FS))
        out[shift:] += g * base[: n - shift]
    rng = np.random.default_rng(seed)
    return out + 10 ** (noise_db / 20) * np.max(np.abs(out)) * rng.standard_normal(n)


@pytest.mark.parametrize("gap_ms, gain", [(1.5, 0.4), (3.3, 0.1), (6.0, 0.03), (3.0, -0.5)])
def test_reflection_free_time_is_the_path_difference(gap_ms, gain):
    """Within one sample (21 us) of the true delay, whatever the sign and level of the reflection."""
    ir = room_ir(0.006, [(0.006 + gap_ms * 1e-3, gain), (0.006 + gap_ms * 2e-3, 0.5 * gain)])
    a = detect_arrivals(ir, FS)
    assert_allclose(a.reflection_free_s, gap_ms * 1e-3, atol=1.0 / FS)
    assert_allclose(a.direct_s, 0.006, atol=1.0 / FS)  # the raw IR's -20 dB onset
    assert_allclose(a.reflection_db, 20 * np.log10(abs(gain)), atol=1.5)


def test_free_field_ir_has_no_reflection():
    """A long low-frequency ring-down and noise are not arrivals (rows of a batch are independent)."""
    irs = np.stack([room_ir(0.003 + 0.001 * k, [], seed=k) for k in range(6)])
    a = detect_arrivals(irs, FS)
    assert a.reflection_s.shape == (6,)
    assert np.all(np.isnan(a.reflection_s))
    assert np.all(np.isinf(a.reflection_free_s))


def test_threshold_and_min_delay_decide_what_counts():
    weak = room_ir(0.004, [(0.007, 10 ** (-46 / 20))], noise_db=-90)
    assert np.isnan(detect_arrivals(weak, FS, threshold_db=-40).reflection_s)
    assert_allclose(detect_arrivals(weak, FS, threshold_db=-50).reflection_free_s, 3e-3, atol=1.0 / FS)
    close = room_ir(0.004, [(0.0047, 0.3)])
    assert np.isnan(detect_arrivals(close, FS, min_delay_s=1e-3).reflection_s)
    assert_allclose(detect_arrivals(close, FS, min_delay_s=0.3e-3).reflection_free_s, 0.7e-3, atol=1.0 / FS)


def test_a_reflection_buried_in_noise_is_not_reported():
    ir = room_ir(0.004, [(0.008, 10 ** (-35 / 20))], noise_db=-30)
    assert np.isnan(detect_arrivals(ir, FS).reflection_s)


def test_gate_window_is_flat_then_half_hann_then_zero():
    w = gate_window(480, FS, end_s=0.006, fade_s=0.001)
    t = np.arange(480) / FS
    assert_allclose(w[t <= 0.005], 1.0)
    assert_allclose(w[t >= 0.006], 0.0, atol=1e-12)
    mid = t[(t > 0.005) & (t < 0.006)]
    assert_allclose(w[(t > 0.005) & (t < 0.006)], 0.5 * (1 + np.cos(np.pi * (mid - 0.005) / 0.001)), atol=1e-12)


def test_lowest_supported_frequency_is_one_over_the_effective_length():
    assert lowest_supported_hz(0.0045, 0.001) == pytest.approx(250.0)
    assert lowest_supported_hz(np.inf, 0.0005) == 0.0
    assert lowest_supported_hz(0.0004, 0.001) == np.inf


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ir": np.zeros(16)}, "at least 32 samples"),
        ({"ir": np.r_[np.zeros(63), np.nan]}, "NaN or infinite"),
        ({"sample_rate": 0.0}, "sample_rate must be > 0"),
        ({"highpass_hz": 30000.0}, r"highpass_hz must be in \(0, 24000\)"),
        ({"rise_db": 0.0}, "rise_db > 0"),
    ],
)
def test_detect_arrivals_refuses_bad_input(kwargs, match):
    args = {"ir": np.zeros(256), "sample_rate": FS, **kwargs}
    with pytest.raises(ValueError, match=match):
        detect_arrivals(args.pop("ir"), args.pop("sample_rate"), **args)


def test_gate_window_refuses_a_fade_longer_than_the_gate():
    with pytest.raises(ValueError, match="end_s > fade_s"):
        gate_window(100, FS, end_s=0.001, fade_s=0.002)
