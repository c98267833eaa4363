"""One step at a time: capture length, dropout detection, clipping flag, measuring without a loopback."""

from __future__ import annotations

import numpy as np
import pytest

from calib.capture.schedule import (
    LATENCY_MARGIN_S,
    capture_seconds,
    capture_step,
    estimate_unit_time_s,
    source_offsets,
    sweep_for,
    turntable_travel_deg,
)
from calib.procedure.spec import SimFaults
from calib.sim.params import NoiseModel


@pytest.mark.parametrize("schedule", ["sequential", "mesm"])
def test_capture_seconds_is_the_time_played(new_run, cap, schedule):
    run = new_run(cap.aurora_text(schedule, azimuths_deg=(0.0,), positions=("centre",)))
    capture_step(run.plan, run.rig.audio, run.plan.mic_inputs, run.plan.level_dbfs)
    played_s = sum(run.block_samples) / run.plan.sample_rate
    sweep = sweep_for(run.plan)
    # Analytic: sequential S (sweep + tail), MESM one sweep + (S - 1) Delta + tail;
    # tail = IR length + feed length + the latency margin.
    tail = run.plan.ir_length + run.plan.feeds.shape[-1] + LATENCY_MARGIN_S * run.plan.sample_rate
    n_src = len(run.plan.sources)
    if schedule == "mesm":
        want = (sweep.n_samples + source_offsets(run.plan, sweep)[-1] + tail) / run.plan.sample_rate
        assert len(run.block_samples) == 1
    else:
        want = n_src * (sweep.n_samples + tail) / run.plan.sample_rate
        assert len(run.block_samples) == n_src
    np.testing.assert_allclose(capture_seconds(run.plan), want, rtol=1e-12)
    np.testing.assert_allclose(played_s, want, atol=len(run.block_samples) / run.plan.sample_rate)


def test_turntable_travel_is_the_path_the_engine_drives(new_run, cap):
    # Device turned to minus each azimuth in measurement order, no wrap (-180: turntable +180),
    # then home for the head positions: 0 -> 0 -> -90 -> +90 -> +180 -> 0 = 540 degrees in 4 moves
    # that turn (each settles; the first, 0 -> 0, does not).
    run = cap.measure(new_run(cap.aurora_text("mesm", azimuths_deg=(0.0, 90.0, -90.0, -180.0), positions=("centre",))))
    table = run.rig.turntable
    assert turntable_travel_deg(run.plan.azimuths_deg) == 540.0
    np.testing.assert_allclose(table.elapsed_s, 540.0 / table.speed_deg_s + 4 * run.proc.turntable.settle_s, rtol=1e-12)
    # Aurora 5's full circle (0, 5, .., 175, -180, .., -5): 175 + 355 + 180 degrees to characterize; the
    # verification drives the checks' azimuths (0..45, 80..100, -100..-80, -45..-5: 100 + 200 + 95 + 5 =
    # 400 degrees): doubling the speed saves (710 + 400) / 60 s.
    full = run.proc.turntable.model_copy(update={"azimuths_deg": None, "step_deg": 5.0, "speed_deg_s": 30.0})
    proc = run.proc.model_copy(update={"turntable": full})
    fast = run.proc.model_copy(update={"turntable": full.model_copy(update={"speed_deg_s": 60.0})})
    assert turntable_travel_deg(proc.turntable.grid_deg()) == 710.0
    np.testing.assert_allclose(estimate_unit_time_s(proc) - estimate_unit_time_s(fast), 1110.0 / 60.0, rtol=1e-9)


class _LoseSamples:
    """Wraps an interface: every input loses ``length`` samples starting ``at`` samples after the latency."""

    def __init__(self, audio, at: int, length: int = 256) -> None:
        self.audio, self.at, self.length = audio, at, length
        self.n_outputs, self.n_inputs, self.sample_rate = audio.n_outputs, audio.n_inputs, audio.sample_rate

    def playrec(self, signal: np.ndarray) -> np.ndarray:
        out = self.audio.playrec(signal)
        start = self.audio.last_latency + self.at
        out[:, start : start + self.length] = 0.0
        return out


@pytest.mark.parametrize("where", ["sweep start", "mid sweep", "response tail", "after the response"])
def test_lost_samples_anywhere_after_the_latency_are_a_dropout(new_run, cap, where):
    run = new_run(cap.aurora_text("mesm", azimuths_deg=(0.0,), positions=("centre",)))
    plan, audio = run.plan, run.rig.audio
    sweep = sweep_for(plan)
    end = sweep.n_samples + int(source_offsets(plan, sweep)[-1])  # the last sweep ends here (loopback)
    at = {"sweep start": 0, "mid sweep": end // 2, "response tail": end + 100,
          "after the response": end + plan.ir_length + 400}[where]
    clean = capture_step(plan, audio, plan.mic_inputs, plan.level_dbfs)
    lossy = capture_step(plan, _LoseSamples(audio, at), plan.mic_inputs, plan.level_dbfs)
    assert not clean.dropout
    assert lossy.dropout


@pytest.mark.parametrize("schedule", ["sequential", "mesm"])
def test_noise_free_inputs_are_no_dropout_and_give_the_deterministic_floor(new_run, cap, schedule):
    # A digital stand-in device (or a digital loopback) records exact zeros before the sound arrives,
    # after the reference sweep ends (MESM: sources 1.. play on) and on idle inputs (the ears without
    # a head): only zeros between non-zero samples, or inside the reference sweep, are lost samples.
    run = new_run(cap.aurora_text(schedule, azimuths_deg=(90.0,), positions=("centre",)))
    run.rig.audio.noise = NoiseModel(None, None, run.rig.audio.noise.input_fs_per_pa)
    run.rig.turntable.move_to(-90.0)
    plan = run.plan
    step = capture_step(plan, run.rig.audio, plan.mic_inputs, plan.level_dbfs)
    idle = capture_step(plan, run.rig.audio, list(plan.ear_inputs), plan.level_dbfs)  # no head placed: silence
    assert not step.dropout and not idle.dropout
    err = cap.band_error_db(step.ir, cap.truth_fs(run, "directivity", 0), plan.band_hz, plan.sample_rate)
    print(f"\n{schedule}: noise-free IR error {err.min():.1f}..{err.max():.1f} dB")
    assert err.max() <= -50.0  # measured -57 dB (the woofer at 90 deg), -68..-74 dB the others


def test_clipping_is_flagged_until_the_level_is_low_enough(new_run, cap):
    run = new_run(cap.aurora_text("mesm", azimuths_deg=(0.0,), positions=("centre",)),
                  faults=SimFaults(clip_gain_db=40.0))
    plan, audio = run.plan, run.rig.audio
    # Unclipped peak at -6 dBFS out is +7.4 dBFS in (measured): clipped at -6 and -12, clean at -18.
    flags = [capture_step(plan, audio, plan.mic_inputs, level).clipped for level in (-6.0, -12.0, -18.0)]
    assert flags == [True, True, False]


@pytest.mark.parametrize("schedule", ["sequential", "mesm"])
def test_without_a_loopback_the_ir_keeps_the_latency(new_run, cap, schedule):
    text = cap.aurora_text(schedule, azimuths_deg=(0.0,), positions=("centre",))
    text = text.replace("loopback = { output = 8, input = 8 }", "allow_no_loopback = true")
    run = cap.measure(new_run(text))
    m = run.m
    assert m.complete and run.plan.loopback is None
    assert np.all(m.quality["directivity"]["latency_samples"] == -1)
    # The IR origin is the start of the recording: truth delayed by each call's latency.
    truth = cap.truth_fs(run, "directivity", 0)
    n = truth.shape[-1]
    calls = np.asarray(run.latencies).reshape(-1)
    lat = np.full(len(m.sources), calls[0]) if schedule == "mesm" else calls[: len(m.sources)]
    shifted = np.stack([np.pad(truth[:, s], ((0, 0), (lat[s], 0)))[:, :n] for s in range(len(m.sources))], axis=1)
    err = cap.band_error_db(m.directivity_ir[0], shifted, run.plan.band_hz, run.plan.sample_rate)
    print(f"\n{schedule}: latencies {lat}, worst error {err.max():.1f} dB")
    assert err.max() <= -30.0


def test_mesm_step_unchanged_by_the_matrix_product_excitation(new_run, cap, monkeypatch):
    import scipy.signal

    import calib.capture.schedule as schedule

    def step():
        run = new_run(cap.aurora_text("mesm", azimuths_deg=(0.0,), positions=("centre",)))
        return capture_step(run.plan, run.rig.audio, run.plan.mic_inputs, run.plan.level_dbfs)

    fast = step()
    # The former excitation: an FFT convolution of every (source, output) pair with its one-tap feed.
    monkeypatch.setattr(schedule, "excitation_block", lambda x, feeds: scipy.signal.oaconvolve(
        x[:, None, :], feeds, axes=-1)[..., : x.shape[-1]].sum(axis=0))
    ref = step()
    np.testing.assert_allclose(fast.ir, ref.ir, rtol=0, atol=1e-9 * np.abs(ref.ir).max())
    np.testing.assert_allclose(fast.snr_db, ref.snr_db, atol=1e-6)
    np.testing.assert_allclose(fast.thd_percent, ref.thd_percent, rtol=1e-6, atol=1e-9)
    assert np.array_equal(fast.latency_samples, ref.latency_samples)
