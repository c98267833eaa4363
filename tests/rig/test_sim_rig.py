"""The simulated rig: exact recovery of the true IRs, latency, noise and faults."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.errors import DeviceNotFoundError, RigError, TurntableError
from calib.geometry import HeadPosition
from calib.rig.sim import LOOPBACK, PLACED_EARS, LabState, SimAudioInterface, SimTurntable, make_sim_rig
from calib.sim.lab import EarReceiver, VirtualLab, mic_arc
from calib.sim.params import DeviceModel, DriverModel, Faults, LatencyModel, NoiseModel

FS, N_IR = 48000, 4096
DEVICE = DeviceModel((
    DriverModel("a", (0.0, 0.08, 0.0), fc_hz=100.0),
    DriverModel("b", (0.0, 0.0, 0.0), fc_hz=100.0),
    DriverModel("c", (0.0, -0.08, 0.0), fc_hz=100.0),
))
MICS = mic_arc(1.0, [0.0, 60.0])
QUIET = NoiseModel(background_spl_db=None, self_noise_dbfs=None, input_fs_per_pa=0.05)


def rig(latency=LatencyModel(100, 100), faults=Faults(), noise=QUIET, receivers=MICS, seed=0, device=DEVICE):
    return make_sim_rig(device, list(receivers), sample_rate=FS, n_ir=N_IR, noise=noise, latency=latency,
                        faults=faults, seed=seed)


def impulse(n_out, drivers, n):
    """Impulse at sample 0 on the given outputs and on the loopback output (the last)."""
    x = np.zeros((n_out, n))
    x[list(drivers) + [n_out - 1], 0] = 1.0
    return x


def test_impulse_recovers_true_irs_through_loopback():
    r = rig(latency=LatencyModel(0, 700))
    n = 3 * N_IR
    y = r.audio.playrec(impulse(4, [1], n))
    # spectral division by the loopback removes the unknown latency
    ir = np.fft.irfft(np.fft.rfft(y[:2]) / np.fft.rfft(y[2]), n=n)[:, :N_IR]
    truth = 0.05 * VirtualLab(DEVICE, FS, N_IR).true_irs(MICS)[:, 1]  # Pa -> FS at 1/20 FS per Pa
    assert_allclose(ir, truth, rtol=0, atol=1e-12 * np.abs(truth).max())
    assert r.name == "sim" and r.simulated
    assert (r.audio.n_outputs, r.audio.n_inputs) == (4, 3)
    assert r.info["loopback"] == "3->2" and r.info["outputs"] == "a,b,c,loopback"


def test_latency_changes_per_call_loopback_exact_and_seeded():
    r = rig(latency=LatencyModel(10, 2000), seed=7)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 6000))
    lats = []
    for _ in range(5):
        y = r.audio.playrec(x)
        lat = r.audio.last_latency
        lats.append(lat)
        assert 10 <= lat <= 2000
        assert np.array_equal(y[2, lat:], x[3, :6000 - lat]) and not y[2, :lat].any()
    assert len(set(lats)) > 1 and r.audio.calls == 5
    r2 = rig(latency=LatencyModel(10, 2000), seed=7)
    assert [r2.audio.playrec(x) is not None and r2.audio.last_latency for _ in range(5)] == lats
    r3 = rig(latency=LatencyModel(10, 2000), seed=8)
    assert [r3.audio.playrec(x) is not None and r3.audio.last_latency for _ in range(5)] != lats


def test_outputs_and_inputs_clip_and_clip_gain_fault():
    x = np.zeros((4, 8000))
    x[3, 10] = 3.0  # beyond full scale on the loopback output: the DAC clips it
    x[1, :4000] = 0.9 * np.sin(2 * np.pi * 1000 * np.arange(4000) / FS)
    healthy = rig().audio.playrec(x)
    assert healthy[2].max() == 1.0
    clipping = rig(faults=Faults(clip_gain_db=40.0)).audio.playrec(x)
    assert np.abs(clipping[:2]).max() == 1.0
    assert np.mean(np.abs(clipping[0]) == 1.0) > 0.1
    ok = np.abs(healthy[:2]) * 100 < 1.0
    assert_allclose(clipping[:2][ok], 100 * healthy[:2][ok], rtol=1e-12, atol=1e-15)  # +40 dB where not clipped
    assert np.abs(healthy[:2]).max() < 0.2


def test_dead_driver_silent_and_reversed_negated():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 6000))
    x[[0, 2]] = 0.0  # only driver "b" plays
    healthy = rig().audio.playrec(x)
    dead = rig(faults=Faults(dead_drivers=("b",))).audio.playrec(x)
    rev = rig(faults=Faults(reversed_drivers=("b",))).audio.playrec(x)
    assert np.abs(healthy[:2]).max() > 1e-3
    assert not dead[:2].any()
    assert_allclose(rev[:2], -healthy[:2], rtol=0, atol=1e-15)
    assert np.array_equal(rev[2], healthy[2]) and np.array_equal(dead[2], healthy[2])  # loopback is electrical


def test_dropout_zeroes_a_stretch_on_listed_calls():
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (4, 20000))
    r = rig(faults=Faults(dropout_calls=(1,), dropout_samples=2048))
    ref = rig().audio.playrec(x)
    first = r.audio.playrec(x)
    assert r.audio.last_dropout is None and np.array_equal(first, ref)
    second = r.audio.playrec(x)
    start, stop = r.audio.last_dropout
    assert stop - start == 2048
    assert not second[:, start:stop].any()
    keep = np.ones(20000, bool)
    keep[start:stop] = False
    assert np.array_equal(second[:, keep], ref[:, keep])


def test_background_and_self_noise_levels():
    noise = NoiseModel(background_spl_db=60.0, self_noise_dbfs=-80.0, input_fs_per_pa=0.05)
    y = rig(noise=noise, latency=LatencyModel(0, 0)).audio.playrec(np.zeros((4, 48000)))
    # mics: 20 uPa * 10^(60/20) = 0.02 Pa rms -> 1e-3 FS, plus 1e-4 self noise (powers add)
    assert_allclose(np.std(y[:2], axis=-1), np.hypot(0.02 * 0.05, 1e-4), rtol=0.03)
    assert_allclose(np.std(y[2]), 1e-4, rtol=0.03)


def test_nonlinearity_before_the_linear_response():
    h2, h3, amp, f0 = 0.05, 0.02, 0.6, 1000.0
    dev = DeviceModel((DriverModel("d", (0.0, 0.0, 0.0), h2=h2, h3=h3, fc_hz=100.0),))
    r = make_sim_rig(dev, MICS[:1], sample_rate=FS, n_ir=N_IR, noise=QUIET, latency=LatencyModel(0, 0))
    n = 20000
    x = np.zeros((2, n))
    x[0] = amp * np.cos(2 * np.pi * f0 * np.arange(n) / FS)
    y = r.audio.playrec(x)[0, 8000:8000 + 4800]  # steady state, 100 periods
    spec = np.abs(np.fft.rfft(y)) * 2 / 4800
    # reference: the DTFT of the true IR the rig convolves with, at f0 and 2 f0
    ir = VirtualLab(dev, FS, N_IR).true_irs(MICS[:1])[0, 0]
    c = np.exp(-2j * np.pi * np.outer([f0, 2 * f0], np.arange(N_IR)) / FS) @ ir
    # The distortion is generated 3x oversampled (no aliasing); the polyphase low-pass
    # passes 1-3 kHz within 0.5 %.
    assert_allclose(spec[100], (amp + 0.75 * h3 * amp**3) * np.abs(c[0]) * 0.05, rtol=5e-3)
    assert_allclose(spec[200], h2 * amp**2 / 2 * np.abs(c[1]) * 0.05, rtol=5e-3)
    assert_allclose(
        spec[300], h3 * amp**3 / 4 * np.abs(np.exp(-2j * np.pi * 3 * f0 * np.arange(N_IR) / FS) @ ir) * 0.05, rtol=5e-3
    )


def test_distortion_above_nyquist_does_not_alias():
    """A 10 kHz tone's 3rd harmonic (30 kHz) is above Nyquist: nothing may fold back to 18 kHz."""
    dev = DeviceModel((DriverModel("d", (0.0, 0.0, 0.0), h2=0.0, h3=0.05, fc_hz=100.0),))
    r = make_sim_rig(dev, MICS[:1], sample_rate=FS, n_ir=N_IR, noise=QUIET, latency=LatencyModel(0, 0))
    n = 20000
    x = np.zeros((2, n))
    x[0] = 0.8 * np.cos(2 * np.pi * 10000.0 * np.arange(n) / FS)
    y = r.audio.playrec(x)[0, 8000:8000 + 4800]
    spec = np.abs(np.fft.rfft(y))
    alias = spec[1800]  # 48 kHz - 30 kHz = 18 kHz, bin width 10 Hz
    assert alias < 1e-3 * spec[1000]


def test_clock_drift_stretches_the_capture():
    ppm = 250.0
    x = np.zeros((4, 80000))
    x[3, 20000] = x[3, 60000] = 0.5
    y = rig(latency=LatencyModel(0, 0, clock_drift_ppm=ppm)).audio.playrec(x)[2]
    # capture[n] = y(n / (1 + eps)): an event at output sample m appears at m (1 + eps)
    peaks = np.sort(np.argsort(np.abs(y))[-2:])
    assert peaks.tolist() == [20005, 60015]
    assert_allclose(y[peaks], 0.5, rtol=1e-6)


def test_ears_follow_the_positioner():
    r = rig(receivers=PLACED_EARS)
    head = HeadPosition("seat", (1.0, 0.0, 0.0), 180.0)
    silent = r.audio.playrec(impulse(4, [0], 2 * N_IR))  # no head placed yet: the ears hear nothing
    assert_allclose(silent[:2], 0.0, atol=0)
    assert_allclose(silent[2, 100], 1.0)
    r.positioner.place(head)
    y = r.audio.playrec(impulse(4, [0], 2 * N_IR))
    truth = VirtualLab(DEVICE, FS, N_IR).true_irs([EarReceiver(head, 0), EarReceiver(head, 1)])[:, 0]
    assert_allclose(y[:2, 100:100 + N_IR], 0.05 * truth, rtol=0, atol=1e-12)
    assert r.info["inputs"] == "head/left,head/right,loopback"


def test_turntable_moves_and_stall():
    state = LabState()
    table = SimTurntable(state, Faults(stall_at_deg=90.0), speed_deg_s=10.0)
    assert table.move_to(45.0) == 45.0 and state.turntable_deg == 45.0
    assert table.move_to(90.0) == 90.0
    assert table.move_to(0.0) == 0.0
    stalled = r"stalled at 90 deg on the way from 0 to 180 deg \(no arrival within 60 s\)"
    with pytest.raises(TurntableError, match=stalled):
        table.move_to(180.0)
    assert table.angle_deg() == 90.0
    with pytest.raises(TurntableError, match="stalled at 90 deg on the way from 90 to 95 deg"):
        table.move_to(95.0)
    assert table.move_to(-30.0) == -30.0  # back towards home is free
    free = SimTurntable(LabState(), speed_deg_s=2.0)
    with pytest.raises(TurntableError, match=r"did not reach 180 deg within 60 s \(needs 90.0 s"):
        free.move_to(180.0)
    assert free.angle_deg() == 120.0
    with pytest.raises(TurntableError, match="finite angle"):
        free.move_to(float("nan"))


def test_turntable_angle_reaches_the_acoustics():
    r = rig()
    x = impulse(4, [0], 2 * N_IR)
    r.turntable.move_to(30.0)
    y = r.audio.playrec(x)
    truth = VirtualLab(DEVICE, FS, N_IR).true_irs(MICS, 30.0)[:, 0]
    assert_allclose(y[:2, 100:100 + N_IR], 0.05 * truth, rtol=0, atol=1e-12)


def test_configuration_errors():
    lab = VirtualLab(DEVICE, FS, N_IR)
    st = LabState()
    with pytest.raises(DeviceNotFoundError, match="unknown driver 'tweeter'; valid: a, b, c, or None"):
        SimAudioInterface(lab, st, FS, ["tweeter"], None, MICS)
    with pytest.raises(DeviceNotFoundError, match="fault names unknown driver 'x'"):
        SimAudioInterface(lab, st, FS, ["a"], None, MICS, faults=Faults(dead_drivers=("x",)))
    with pytest.raises(RigError, match="marks input 1 as 'loopback' but loopback is None"):
        SimAudioInterface(lab, st, FS, ["a"], None, [MICS[0], LOOPBACK])
    with pytest.raises(RigError, match=r"loopback \(0, 5\) out of range"):
        SimAudioInterface(lab, st, FS, ["a"], (0, 5), [MICS[0], LOOPBACK])
    with pytest.raises(RigError, match="input_map\\[0\\] is 'mic'; valid"):
        SimAudioInterface(lab, st, FS, ["a"], None, ["mic"])
    with pytest.raises(RigError, match="sample_rate 44100 differs"):
        SimAudioInterface(lab, st, 44100, ["a"], None, MICS)
    r = rig()
    with pytest.raises(RigError, match=r"signal must have shape \(4, N\), got \(3, 10\)"):
        r.audio.playrec(np.zeros((3, 10)))
    with pytest.raises(RigError, match="NaN or infinite"):
        r.audio.playrec(np.full((4, 10), np.nan))


def test_noise_depends_on_state_and_call_count_not_history():
    """The k-th call at a state draws the same noise and latency whatever came before (resume)."""
    noisy = NoiseModel(background_spl_db=40.0, self_noise_dbfs=-90.0, input_fs_per_pa=0.05)
    x = impulse(4, [0], 2 * N_IR)
    a = rig(latency=LatencyModel(0, 900), noise=noisy, seed=7)
    a.turntable.move_to(30.0)
    first_a = a.audio.playrec(x)
    second_a = a.audio.playrec(x)
    b = rig(latency=LatencyModel(0, 900), noise=noisy, seed=7)
    b.turntable.move_to(-60.0)
    b.audio.playrec(x)  # a different history
    b.turntable.move_to(30.0)
    first_b = b.audio.playrec(x)
    assert_allclose(first_b, first_a, rtol=0, atol=0)
    assert not np.allclose(second_a, first_a)  # a retry at the same state differs
    c = rig(latency=LatencyModel(0, 900), noise=noisy, seed=8)
    c.turntable.move_to(30.0)
    assert not np.allclose(c.audio.playrec(x), first_a)  # another unit (seed) differs
