"""Multiple exponential sweep method: offsets, excitation, recovery of 5 sources."""

import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal

from calib.signals.deconvolve import deconvolve, regularized_inverse
from calib.signals.mesm import contamination_bound_db, mesm_excitation, mesm_offsets, mesm_split
from calib.signals.sweep import synchronized_sweep
from calib.signals.windows import window_ir

FS = 48000
BAND = (50.0, 6000.0)


def brute_force_delta(rate_s, ir_length, n_harmonics, n_sources, fs, guard):
    """Smallest Delta for which no two sources' footprints share a sample (explicit sets)."""
    d = rate_s * np.log(np.arange(1, n_harmonics + 1)) * fs
    starts = -np.ceil(d).astype(int) - guard
    stops = -np.floor(d).astype(int) + ir_length
    for delta in range(1, 100000):
        used = {}
        clash = False
        for k in range(n_sources):
            for a, b in zip(starts, stops, strict=True):
                for s in range(k * delta + a, k * delta + b):
                    if used.setdefault(s, k) != k:
                        clash = True
                        break
                if clash:
                    break
            if clash:
                break
        if not clash:
            return delta
    raise AssertionError("no Delta found")


@pytest.mark.parametrize(
    "rate_s, ir_length_s, n_harmonics, n_sources, guard",
    [
        (0.5, 0.02, 3, 4, 2),  # long L, short IR: interleaving fits
        (0.1, 0.03, 3, 5, 3),  # short L: plain overlap
        (0.3, 0.05, 2, 3, 0),
        (0.2, 0.01, 5, 6, 1),
    ],
)
def test_offsets_match_brute_force(rate_s, ir_length_s, n_harmonics, n_sources, guard):
    fs = 1000  # small numbers keep the brute force fast
    off = mesm_offsets(rate_s, ir_length_s, n_harmonics, n_sources, fs, guard_samples=guard)
    ir_length = int(np.ceil(ir_length_s * fs))
    delta = brute_force_delta(rate_s, ir_length, n_harmonics, n_sources, fs, guard)
    assert_array_equal(off, delta * np.arange(n_sources))


def test_interleaving_beats_plain_overlap():
    # L ln 2 = 347 samples leaves room for other sources' IRs between a
    # source's linear and 2nd-harmonic IR: Delta is far below l + g + L ln 3.
    off = mesm_offsets(0.5, 0.02, 3, 3, 1000, guard_samples=2)
    assert off[1] < 0.5 * (20 + 2 + 0.5 * np.log(3) * 1000)
    assert off[1] >= 22  # never closer than one IR plus guard


def test_total_duration_is_under_half_of_sequential():
    sweep = synchronized_sweep(20.0, 20000.0, 1.0, FS)
    ir_length = int(0.05 * FS)
    off = mesm_offsets(sweep.rate_s, 0.05, 3, 5, FS)
    mesm = sweep.n_samples + off[-1] + ir_length
    sequential = 5 * (sweep.n_samples + ir_length)
    assert mesm < 0.5 * sequential


def test_excitation_rows_are_shifted_sweeps():
    sweep = synchronized_sweep(100.0, 2000.0, 0.1, 8000)
    ex = mesm_excitation(sweep, 3, 50, tail_samples=7)
    assert ex.shape == (3, sweep.n_samples + 100 + 7)
    for k in range(3):
        assert_array_equal(ex[k, 50 * k : 50 * k + sweep.n_samples], sweep.signal)
        assert np.all(ex[k, : 50 * k] == 0) and np.all(ex[k, 50 * k + sweep.n_samples :] == 0)
    assert_array_equal(mesm_excitation(sweep, 3, np.array([0, 50, 100]), 7), ex)


def mesm_capture(a2, a3, n_sources=5, seed=3):
    sweep = synchronized_sweep(25.0, 8000.0, 1.0, FS)  # 3 f2 <= Nyquist: no aliasing of x^3
    ir_length = int(0.05 * FS)
    off = mesm_offsets(sweep.rate_s, 0.05, 3, n_sources, FS)
    rng = np.random.default_rng(seed)
    t = np.arange(1024)
    hs = np.stack(
        [rng.standard_normal(t.size) * np.exp(-t / (60 + 20 * k)) * (t > 20 + 5 * k) for k in range(n_sources)]
    )
    ex = mesm_excitation(sweep, n_sources, off[1], tail_samples=ir_length + 500)
    u = ex + a2 * ex**2 + a3 * ex**3  # each driver distorts its own signal
    y = np.sum(scipy.signal.fftconvolve(u, hs, axes=-1)[:, : ex.shape[1]], axis=0)
    ir = deconvolve(y, ex[0], *BAND, FS)  # the loopback plays source 0's sweep
    parts = mesm_split(ir, off, ir_length, sweep, n_harmonics=3)
    # truth per source: band-limited like the measurement, same window; x^3 adds 3/4 a3 A^2
    n = ir.shape[-1]
    f = np.fft.rfftfreq(n, 1 / FS)
    X = np.fft.rfft(ex[0], n)
    R = (regularized_inverse(X, f, *BAND) * X).real
    c1 = 1 + 0.75 * a3 * sweep.amplitude**2
    truth = window_ir(np.fft.irfft(c1 * np.fft.rfft(hs, n, axis=-1) * R, n, axis=-1), ir_length)
    fk = np.fft.rfftfreq(8192, 1 / FS)
    b = (fk >= BAND[0]) & (fk <= BAND[1])
    E = np.fft.rfft(parts.linear - truth, 8192, axis=-1)[:, b]
    T = np.fft.rfft(truth, 8192, axis=-1)[:, b]
    err_db = 10 * np.log10(np.sum(np.abs(E) ** 2, -1) / np.sum(np.abs(T) ** 2, -1))
    return parts, err_db


def test_five_sources_from_one_capture():
    parts, err_db = mesm_capture(0.0, 0.0)
    assert parts.linear.shape == (5, int(0.05 * FS))
    assert np.all(err_db < -50), err_db


def test_five_sources_with_distortion():
    parts, err_db = mesm_capture(0.04, 0.04)  # ~1 % THD per driver
    assert np.all(err_db < -40), err_db
    assert parts.harmonics.shape[:2] == (5, 2)
    # every source's 2nd harmonic is found where expected: ~ a2 A / 2 of its linear IR
    ratio = np.sqrt(np.sum(parts.harmonics[:, 0] ** 2, -1) / np.sum(parts.linear**2, -1))
    assert_allclose(ratio, 0.04 * 10 ** (-6 / 20) / 2, rtol=0.3)


def test_mesm_errors():
    sweep = synchronized_sweep(100.0, 2000.0, 0.1, 8000)
    with pytest.raises(ValueError, match="n_sources must be >= 1"):
        mesm_offsets(0.1, 0.01, 3, 0, FS)
    with pytest.raises(ValueError, match="ir_length_s must be > 0"):
        mesm_offsets(0.1, 0.0, 3, 2, FS)
    with pytest.raises(ValueError, match="guard_samples must be >= 0"):
        mesm_offsets(0.1, 0.01, 3, 2, FS, guard_samples=-1)
    with pytest.raises(ValueError, match="offset_samples must be"):
        mesm_excitation(sweep, 3, np.array([0, 10]))
    with pytest.raises(ValueError, match="offset_samples must be"):
        mesm_excitation(sweep, 2, -5)
    with pytest.raises(ValueError, match="offset_samples must be"):
        mesm_excitation(sweep, 2, np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match="tail_samples must be >= 0"):
        mesm_excitation(sweep, 2, 10, tail_samples=-1)
    with pytest.raises(ValueError, match="too short"):
        mesm_split(np.zeros(1200), np.array([0, 900]), 200, sweep)
    with pytest.raises(ValueError, match="origins must be a 1-D array of integer"):
        mesm_split(np.zeros(20000), np.array([0.0, 900.5]), 200, sweep)


@pytest.mark.parametrize("taps", [1, 5, 700])
def test_excitation_block_equals_the_convolution_over_all_pairs(taps):
    from scipy.signal import oaconvolve

    from calib.signals.mesm import excitation_block

    rng = np.random.default_rng(11)
    x, feeds = rng.standard_normal((3, 500)), rng.standard_normal((3, 4, taps))
    ref = oaconvolve(x[:, None, :], feeds, axes=-1)[..., :500].sum(axis=0)  # the former code path
    np.testing.assert_allclose(excitation_block(x, feeds), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_excitation_block_shape_error():
    from calib.signals.mesm import excitation_block

    with pytest.raises(ValueError, match=r"must share K, got \(2, 10\) and \(3, 4, 1\)"):
        excitation_block(np.zeros((2, 10)), np.zeros((3, 4, 1)))


def linear_clear_table(rate_s, ir_length, n_harmonics, fs, guard, bound):
    """``ok[x]``: sources at 0 and x (0 < x < bound) keep each other's linear IR clear (sample sets)."""
    d = rate_s * np.log(np.arange(1, n_harmonics + 1)) * fs
    footprints = [set(range(-int(np.ceil(dn)) - guard, -int(np.floor(dn)) + ir_length)) for dn in d]
    everything = set().union(*footprints)

    def clear(x):  # sources at 0 and x > 0
        shifted = {s + x for s in everything}
        lin_shifted = {s + x for s in footprints[0]}
        return not (footprints[0] & shifted) and not (lin_shifted & everything)

    return np.array([False] + [clear(x) for x in range(1, bound)])


def brute_force_linear_span(rate_s, ir_length, n_harmonics, n_sources, fs, guard, bound):
    """Least span of offsets whose linear IRs share no sample with any other source's footprint (sample sets)."""
    ok = linear_clear_table(rate_s, ir_length, n_harmonics, fs, guard, bound)
    best = None
    for offs in _increasing(n_sources - 1, bound):
        o = (0,) + offs
        if all(ok[b - a] for i, a in enumerate(o) for b in o[i + 1 :]):
            if best is None or o[-1] < best[-1]:
                best = o
    return best


def _increasing(k, bound, start=1):
    if k == 0:
        yield ()
        return
    for first in range(start, bound):
        for rest in _increasing(k - 1, bound, first + 1):
            yield (first,) + rest


@pytest.mark.parametrize(
    "rate_s, ir_length_s, n_harmonics, n_sources, guard, bound",
    [
        (0.05, 0.01, 3, 3, 2, 120),  # gap between linear and 2nd harmonic holds a second source
        (0.03, 0.006, 4, 4, 1, 80),
        (0.01, 0.008, 3, 3, 0, 60),  # short L: nothing fits between, plain spacing
    ],
)
def test_linear_clear_offsets_have_the_least_span(rate_s, ir_length_s, n_harmonics, n_sources, guard, bound):
    fs = 1000
    off = mesm_offsets(rate_s, ir_length_s, n_harmonics, n_sources, fs, guard_samples=guard, clear="linear")
    best = brute_force_linear_span(rate_s, int(np.ceil(ir_length_s * fs)), n_harmonics, n_sources, fs, guard, bound)
    assert best is not None
    assert off[0] == 0 and off[-1] == best[-1]
    # the returned set itself is clear: every pair, checked by the same sample sets
    ok = linear_clear_table(rate_s, int(np.ceil(ir_length_s * fs)), n_harmonics, fs, guard, bound)
    assert all(ok[b - a] for i, a in enumerate(off) for b in off[i + 1 :])


def test_linear_clear_is_never_longer_and_shorter_for_the_product():
    # Aurora 5's 2 s sweep (L = 0.28 s), 2048-sample IRs, 5 drivers: three sources fit between a
    # source's linear IR and its 2nd harmonic (L ln 2 fs = 9316 samples vs l + g = 2304).
    all_clear = mesm_offsets(0.28, 2048 / FS, 4, 5, FS)
    linear = mesm_offsets(0.28, 2048 / FS, 4, 5, FS, clear="linear")
    assert linear[-1] < 0.6 * all_clear[-1]
    assert_array_equal(linear[:4], 2304 * np.arange(4))


def test_offsets_reject_unknown_clearance():
    with pytest.raises(ValueError, match="clear must be one of"):
        mesm_offsets(0.28, 0.05, 3, 5, FS, clear="harmonics")


def test_contamination_bound_of_an_exponential_tail_is_exact():
    # Exponential energy decay: the tail beyond l is the geometric series of the last eighth.
    n, tau = 800, 150.0
    t = np.arange(n)
    lin = np.stack([np.exp(-t / tau), 0.1 * np.exp(-t / tau)])  # [S=2, n]
    harm = np.zeros((2, 2, 64))
    harm[0, 0, :] = 0.01  # source 0 has a harmonic; source 1 none
    e = np.exp(-2 * t / tau)
    q = np.exp(-2 * 100 / tau)
    rho = np.sum(e[700:]) * q / (1 - q) / np.sum(e)  # both sources decay alike
    # into source 1: source 0's harmonic and linear tails; into source 0: source 1's linear tail
    assert_allclose(contamination_bound_db(lin, harm), 10 * np.log10(
        [0.01 * np.sum(e) * rho / np.sum(e), (64e-4 + np.sum(e)) * rho / (0.01 * np.sum(e))]), atol=1e-9)
    # and the bound holds: the true tails (same decay) beyond l
    tail = np.sum(np.exp(-2 * np.arange(n, 50 * n) / tau))
    true_leak = 64e-4 * tail / np.sum(e) + tail
    assert 10 * np.log10(true_leak / (0.01 * np.sum(e))) <= contamination_bound_db(lin, harm)[1] + 1e-9
