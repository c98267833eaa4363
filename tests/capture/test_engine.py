"""Measurement engine on the virtual lab: IR accuracy, harmonic separation, latency, quality and retries.

Aurora 5 (5 drivers, 2 arc mics, dummy head) at azimuths 0 and 90 deg (90:
the left mid fires away from the mic, the hardest case) and two head
positions; default noise (25 dB SPL background, -110 dBFS self noise), a
1 s sweep at -6 dBFS.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from calib.capture.schedule import quality_bands
from calib.errors import CaptureGlitchError, MeasurementError, RigError
from calib.procedure.spec import SimFaults
from calib.rig.virtual_lab import mic_receivers
from calib.sim.driver import driver_response
from calib.sim.lab import rotation_z

SCHEDULES = ("sequential", "mesm")
MAX_ERROR_DB = -40.0


def _table(errors: dict[str, np.ndarray], sources: list[str]) -> str:
    """Worst error per group and driver, for the test log."""
    rows = [f"{'':12s}" + "".join(f"{s:>10s}" for s in sources)]
    for group, e in errors.items():
        rows.append(f"{group:12s}" + "".join(f"{v:10.1f}" for v in e.max(axis=(0, 1))))
    return "\n".join(rows)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_irs_match_the_lab_within_minus_40_db(baseline, cap, schedule):
    run = baseline(schedule)
    m = run.m
    assert m.complete and m.directivity_done.all() and m.binaural_done.all()
    errors = cap.step_errors_db(run)
    print(f"\n{schedule}: worst IR error (dB) per driver over steps and receivers\n" + _table(errors, m.sources))
    # Measured (sequential and mesm alike): -41.1 dB worst (mid_left at 90 deg, SNR-limited),
    # -44..-57 dB at 0 deg, -51..-63 dB at the ears.
    for group, e in errors.items():
        assert e.max() <= MAX_ERROR_DB, f"{group}: {e.max():.1f} dB at {np.unravel_index(e.argmax(), e.shape)}"
    assert np.all(m.quality["directivity"]["retries"] == 0) and np.all(m.quality["binaural"]["retries"] == 0)
    assert not np.any(m.quality["directivity"]["clipped"]) and not np.any(m.quality["binaural"]["clipped"])


def test_product_sweep_keeps_every_azimuth_within_minus_40_db(new_run, cap):
    """With the product's own sweep (2 s, -3 dBFS) even the rear of the front tweeter is within -40 dB.

    At 180 deg the forward drivers are 25-30 dB down, so their IRs are noise-limited: the 1 s,
    -6 dBFS sweep of the other tests reaches only about -37 dB there.
    """
    run = cap.measure(new_run(cap.aurora_text("mesm", azimuths_deg=(-180.0, 135.0), positions=("centre",),
                                              sweep={"duration_s": 2.0, "level_dbfs": -3.0})))
    errors = cap.step_errors_db(run)
    print("\nproduct sweep, worst IR error (dB): " + ", ".join(f"{g} {e.max():.1f}" for g, e in errors.items()))
    for group, e in errors.items():
        assert e.max() <= MAX_ERROR_DB, f"{group}: {e.max():.1f} dB at {np.unravel_index(e.argmax(), e.shape)}"


def test_mesm_and_sequential_agree_within_their_noise(baseline, cap):
    # Independent noise: E|a - b|^2 = E|a - t|^2 + E|b - t|^2. A systematic MESM error (harmonic or
    # cross-source leakage) would add to the difference; measured excess <= 0.4 dB.
    seq, mesm = baseline("sequential"), baseline("mesm")
    e_seq, e_mesm = cap.step_errors_db(seq), cap.step_errors_db(mesm)
    for group, a, b in (("directivity", seq.m.directivity_ir, mesm.m.directivity_ir),
                        ("binaural", seq.m.binaural_ir, mesm.m.binaural_ir)):
        truth = np.stack([cap.truth_fs(seq, group, i) for i in range(a.shape[0])])
        diff = cap.band_error_db(a - b + truth, truth, seq.plan.band_hz, 48000)  # |a - b| over |truth|
        both = 10 * np.log10(10 ** (e_seq[group] / 10) + 10 ** (e_mesm[group] / 10))
        print(f"{group}: max excess of |seq - mesm| over the combined noise {np.max(diff - both):+.2f} dB")
        assert np.all(diff <= both + 1.5)


def _expected_thd_percent(run, h2: float, h3: float, lower_hz=None, upper_hz=None) -> np.ndarray:
    """THD a Hammerstein driver shows at the arc mics, from the true transfer functions.

    For x = A cos(wt) the static nonlinearity x + h2 x^2 + h3 x^3 adds harmonic 2 with
    amplitude h2 A^2 / 2 and harmonic 3 with h3 A^3 / 4; both then pass the linear path H at
    n f. Averaged as :func:`calib.signals.harmonics.thd_bands_percent` does (inputs f_k in a band,
    default [f_lo, f_hi / n_harmonics], weights 1 / f_k, order n only where n f_k <= f_hi):
    THD^2 = sum_k w_k sum_n c_n^2 |H(n f_k)|^2 / sum_k w_k |H(f_k)|^2, c_2 = h2 A / 2, c_3 = h3 A^2 / 4.
    Returns [A, Rm, S] percent, or [A, Rm, S, B] for band edges.
    """
    plan, lab = run.plan, run.rig.audio.lab
    amp = 10 ** (plan.level_dbfs / 20)
    lo, hi = plan.band_hz
    edges = [(lo, hi / plan.n_harmonics)] if lower_hz is None else list(zip(lower_hz, upper_hz, strict=True))
    freqs = lab.freqs_hz
    out = []
    for az in plan.azimuths_deg:
        h = np.fft.rfft(lab.true_irs(mic_receivers(run.proc), -float(az)), axis=-1)  # [Rm, S, F]
        bands = []
        for f_lo, f_hi in edges:
            k = np.flatnonzero((freqs >= f_lo) & (freqs <= f_hi))
            w = 1.0 / freqs[k]
            num = sum(c**2 * np.abs(h[..., np.minimum(n * k, freqs.size - 1)]) ** 2 * (n * freqs[k] <= hi)
                      for n, c in ((2, h2 * amp / 2), (3, h3 * amp**2 / 4)))
            bands.append(100 * np.sqrt(np.sum(w * num, -1) / np.sum(w * np.abs(h[..., k]) ** 2, -1)))
        out.append(np.stack(bands, axis=-1))
    out = np.stack(out)
    return out[..., 0] if lower_hz is None else out


def _fundamental_band_db(run, lower_hz, upper_hz) -> np.ndarray:
    """Band power of the true IRs [A, Rm, S, B], dB re each IR's loudest band."""
    freqs = run.rig.audio.lab.freqs_hz
    out = []
    for az in run.plan.azimuths_deg:
        p = np.abs(np.fft.rfft(run.rig.audio.lab.true_irs(mic_receivers(run.proc), -float(az)), axis=-1)) ** 2
        out.append(np.stack([np.mean(p[..., (freqs >= a) & (freqs <= b)], -1)
                             for a, b in zip(lower_hz, upper_hz, strict=True)], axis=-1))
    db = 10 * np.log10(np.stack(out))
    return db - np.max(db, axis=-1, keepdims=True)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_one_percent_thd_leaves_the_linear_ir_unaffected(baseline, cap, schedule):
    # h2 = 0.04 is 1.0 % electrically at -6 dBFS (A = 0.5: h2 A / 2). h3 stays nominal: the cubic term
    # also raises the fundamental by 3/4 h3 A^2 (a true change of the linear response, not an error).
    h2, h3 = 0.04, 0.002
    run = baseline(schedule, drivers={"h2": h2, "h3": h3})
    clean = cap.step_errors_db(baseline(schedule))
    dist = cap.step_errors_db(run)
    thd = run.m.quality["directivity"]["thd_percent"]
    expected = _expected_thd_percent(run, h2, h3)
    print(f"\n{schedule}: THD stored {thd.min():.2f}..{thd.max():.2f} %, expected {expected.min():.2f}.."
          f"{expected.max():.2f} %; worst IR error {max(e.max() for e in dist.values()):.1f} dB, "
          f"largest change vs nominal h2, h3: {max(np.max(dist[g] - clean[g]) for g in dist):+.2f} dB")
    assert np.all((thd > 1.0 / 1.5) & (thd < 1.0 * 1.5)), thd
    print(f"max |stored / expected - 1| = {np.max(np.abs(thd / expected - 1)):.3f}")
    np.testing.assert_allclose(thd, expected, rtol=0.1)  # measured <= 6 % (noise in the harmonic windows)
    # THD against frequency, per 1/3-octave band, where the 2nd harmonic is measurable (2 f below the band top)
    bands = quality_bands(run.plan)
    got = run.m.quality["directivity"]["thd_band_percent"]
    np.testing.assert_allclose(run.m.band_centre_hz, bands.centre_hz)
    inside = 2 * bands.upper_hz <= run.plan.band_hz[1]
    assert np.all(np.isnan(got[..., 2 * bands.lower_hz > run.plan.band_hz[1]]))
    want = _expected_thd_percent(run, h2, h3, bands.lower_hz[inside], bands.upper_hz[inside])
    # compared where the harmonics stand out of the noise in their windows: a predicted THD >= 0.5 % (the
    # harmonics >= -46 dB re the fundamental) in the driver's pass band at that microphone (fundamental within
    # 25 dB of its loudest band); elsewhere (a tweeter at 50 Hz, the drivers' low-pass taking the harmonics
    # down) the noise sets a floor the estimate shows, as every swept THD measurement does
    clear = (want >= 0.5) & (_fundamental_band_db(run, bands.lower_hz[inside], bands.upper_hz[inside]) > -25.0)
    clear[run.plan.azimuths_deg != 0.0] = False  # on axis; at 90 deg the 5-8 kHz harmonics fall into the noise
    error = got[..., inside][clear] / want[clear] - 1
    print(f"THD per band: max |stored / expected - 1| = {np.max(np.abs(error)):.3f} over {clear.sum()} of "
          f"{clear.size} band values ({bands.nominal_hz[inside][0]:g}..{bands.nominal_hz[inside][-1]:g} Hz)")
    assert clear.mean() > 0.3 and np.all(np.abs(error) <= 0.15), error
    for group in dist:
        assert dist[group].max() <= MAX_ERROR_DB
        assert np.all(np.abs(dist[group] - clean[group]) <= 3.0)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_noise_floor_per_band_matches_the_lab_noise(baseline, schedule):
    """The stored background noise per band against the lab's white noise (30 dB SPL + -110 dBFS self noise).

    White noise of variance sigma^2 (FS^2) has the band mean square 2 sigma^2 (f_hi - f_lo) / fs, which is
    10 log10(2 ms) dBFS (re a full-scale sine). Power mean over every step and receiver within 1 dB per band
    inside the sweep band, 1.5 dB below 200 Hz (measured: 0.6 dB sequential, 1.06 dB MESM at 63 Hz, one capture
    per step), 2 dB for the edge bands (the 50 Hz band: half of it below the band, few bins; -1.9 dB seen). Two
    causes: a band of few periodogram bins scatters, and the recording's zero padding to the FFT length leaves a
    noise-free stretch of the IR whose place depends on the frequency (the sweep's time there); inside the noise
    window it reads low.
    """
    run = baseline(schedule)
    noise = run.rig.audio.noise
    sigma2 = (20e-6 * 10 ** (noise.background_spl_db / 20) * noise.input_fs_per_pa) ** 2 \
        + 10 ** (noise.self_noise_dbfs / 10)
    bands = quality_bands(run.plan)
    fs = run.plan.sample_rate
    expected_db = 10 * np.log10(2 * 2 * sigma2 * (bands.upper_hz - bands.lower_hz) / fs)
    assert run.m.noise_unit == {"directivity": "dBFS", "binaural": "dBFS"}
    got = run.m.quality["directivity"]["noise_band_db"]  # [A, Rm, S, B]
    mean_db = 10 * np.log10(np.mean(10 ** (got / 10), axis=(0, 1, 2)))
    print(f"{schedule}: noise per band, stored - analytic: {np.round(mean_db - expected_db, 2)} dB")
    inner = (bands.lower_hz >= run.plan.band_hz[0]) & (bands.upper_hz <= run.plan.band_hz[1])
    tolerance = np.where(bands.centre_hz < 200.0, 1.5, 1.0)  # below 200 Hz a band holds few bins: more scatter
    assert np.all(np.abs(mean_db - expected_db)[inner] <= tolerance[inner]), mean_db - expected_db
    np.testing.assert_allclose(mean_db, expected_db, atol=2.0)  # edge bands: scaled from their part inside


def _arrival_samples(ir: np.ndarray, driver, fs: int, band_hz=(1000.0, 3000.0)) -> float:
    """Propagation delay of one IR: phase slope of H / (driver's own response) in the mid band.

    The lab's transfer is directivity (real, positive below the piston's first null) x
    e^{-j 2 pi f r / c} / (4 pi r) x the driver's minimum-phase response; dividing the latter
    out leaves a pure delay whose phase is -2 pi f r / c.
    """
    n = ir.shape[-1] * 4
    freqs = np.fft.rfftfreq(n, 1 / fs)
    k = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    h = np.fft.rfft(ir, n=n)[k] / driver_response(freqs[k], driver.fc_hz, driver.q, driver.lowpass_hz)
    slope = np.polyfit(2 * np.pi * freqs[k], np.unwrap(np.angle(h)), 1)[0]
    return -slope * fs


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_latency_changes_every_call_and_the_ir_starts_at_r_over_c(baseline, schedule):
    run = baseline(schedule)
    m = run.m
    lat = m.quality["directivity"]["latency_samples"], m.quality["binaural"]["latency_samples"]
    recorded = np.concatenate(lat)  # [steps, S]
    # The engine estimated exactly the latency the simulator applied on each call.
    per_call = np.asarray(run.latencies)
    if schedule == "mesm":
        assert_array_equal(recorded, np.repeat(per_call[:, None], len(m.sources), axis=1))
    else:
        assert_array_equal(recorded, per_call.reshape(recorded.shape))
        assert np.all(np.ptp(recorded, axis=1) > 0)  # differs between the sources of one step
    assert len(np.unique(recorded[:, 0])) == recorded.shape[0]  # and between steps
    assert recorded.max() - recorded.min() > 100

    fs, c = run.plan.sample_rate, run.proc.sim.speed_of_sound
    devs = []
    for i, az in enumerate(run.plan.azimuths_deg):
        for r, mic in enumerate(mic_receivers(run.proc)):
            for s, drv in enumerate(run.rig.audio.lab.device.drivers):
                pos = rotation_z(-az) @ np.asarray(drv.position_m)
                want = np.linalg.norm(np.asarray(mic.xyz_m) - pos) / c * fs
                devs.append(_arrival_samples(m.directivity_ir[i, r, s], drv, fs) - want)
    devs = np.asarray(devs)
    print(f"\n{schedule}: arrival - r/c: {devs.min():+.3f}..{devs.max():+.3f} samples; latencies {recorded[:, 0]}")
    assert np.all(np.abs(devs) < 1.0)  # measured: |dev| < 0.02 samples


def test_clipping_backs_off_the_level_and_succeeds(new_run, cap):
    # +40 dB input gain: at -6 dBFS the mics peak near +7 dBFS, the ears higher. Two 6 dB back-offs
    # at most are needed at the mics.
    text = cap.aurora_text("mesm", azimuths_deg=(0.0,), positions=("centre",), sweep={"retries": 4})
    run = cap.measure(new_run(text, faults=SimFaults(clip_gain_db=40.0)))
    m = run.m
    assert m.complete
    for group in ("directivity", "binaural"):
        q = m.quality[group]
        print(f"\n{group}: retries {q['retries']}, peak {q['peak_dbfs'].max():.1f} dBFS")
        assert np.all(q["retries"] > 0) and np.all(q["clipped"])  # backed off, and says so
        assert np.all(q["peak_dbfs"] < -0.1)
    # The IR does not depend on the level: after the back-off it is the truth x 40 dB, down to the
    # lower SNR (measured -36 dB worst, 12 dB above the -6 dBFS runs' -48).
    errors = cap.step_errors_db(run)
    assert max(e.max() for e in errors.values()) <= -30.0


def test_clipping_that_stays_raises_naming_the_step(new_run, cap):
    text = cap.aurora_text("mesm", azimuths_deg=(0.0,), positions=("centre",), sweep={"retries": 1})
    run = new_run(text, faults=SimFaults(clip_gain_db=40.0))
    with pytest.raises(MeasurementError, match=r"azimuth \+0 deg: still bad after 1 retries "
                       r"\(clipped at -6 dBFS; clipped at -12 dBFS\)"):
        cap.measure(run)
    m = run.m
    assert not m.complete and not m.directivity_done.any()
    assert np.all(np.isnan(m.directivity_ir))  # nothing silently bad was written


@pytest.mark.parametrize(("schedule", "call", "step"), [("mesm", 1, 1), ("sequential", 7, 1)])
def test_dropout_is_retried_and_the_retry_recorded(new_run, cap, schedule, call, step):
    # MESM plays one call per step, sequential 5 (one per driver): call 7 belongs to step 1.
    run = cap.measure(new_run(cap.aurora_text(schedule), faults=SimFaults(dropout_calls=[call])))
    assert run.dropouts[call] is not None
    retries = run.m.quality["directivity"]["retries"]
    assert_array_equal(retries, np.eye(2, dtype=int)[step])
    assert_array_equal(run.m.quality["binaural"]["retries"], [0, 0])
    n_calls = 1 if schedule == "mesm" else 5
    assert len(run.latencies) == (4 + 1) * n_calls  # 4 steps and one repeated
    assert cap.step_errors_db(run)["directivity"].max() <= MAX_ERROR_DB


def _fail_on_calls(run, calls, error):
    """Make the interface raise ``error`` on the given playrec call indices (an xrun, a lost device)."""
    play, count = run.rig.audio.playrec, [0]

    def playrec(signal):
        count[0] += 1
        if count[0] - 1 in calls:
            raise error
        return play(signal)

    run.rig.audio.playrec = playrec


def test_capture_glitch_is_retried_but_a_lost_device_stops_the_run(new_run, cap):
    run = new_run(cap.aurora_text("mesm"))
    _fail_on_calls(run, {1}, CaptureGlitchError("xrun during playrec on device 'x'; retry the step"))
    cap.measure(run)
    assert_array_equal(run.m.quality["directivity"]["retries"], [0, 1])
    assert run.m.complete
    lost = new_run(cap.aurora_text("mesm"), serial="SN-LOST")
    _fail_on_calls(lost, {1}, RigError("the stream on device 'x' stopped (device or server lost?)"))
    with pytest.raises(RigError, match="device or server lost"):
        cap.measure(lost)
    assert_array_equal(lost.m.directivity_done, [True, False])


def test_a_step_that_stays_bad_stops_the_run_and_keeps_the_steps_before(new_run, cap):
    # MESM: calls 0, 1 are the two azimuths; calls 2, 3, 4 are the first head position and its retries.
    run = new_run(cap.aurora_text("mesm"), faults=SimFaults(dropout_calls=[2, 3, 4]))
    with pytest.raises(MeasurementError, match=r"characterize head at centre: still bad after 2 retries "
                       r"\(dropout in the capture; dropout in the capture; dropout in the capture\).*--resume"):
        cap.measure(run)
    m = run.m
    assert not m.complete
    assert_array_equal(m.directivity_done, [True, True])
    assert_array_equal(m.binaural_done, [False, False])
    assert np.all(np.isfinite(m.directivity_ir)) and np.all(np.isnan(m.binaural_ir))
    assert cap.step_errors_db(run)["directivity"].max() <= MAX_ERROR_DB
