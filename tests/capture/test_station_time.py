"""MESM with only the linear IRs clear, the dedicated THD sweep, and the station time a run records."""

from __future__ import annotations

import h5py
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from calib.capture.schedule import estimate_plan_time_s

LINEAR = {"mesm_clear": "linear", "thd_sweep_s": 1.0}


def test_linear_clear_mesm_irs_thd_and_station_time(baseline, new_run, cap):
    run = cap.measure(new_run(cap.aurora_text("mesm", positions=("centre", "left_1cm"), sweep=LINEAR)))
    ref = baseline("sequential")  # same grid, sweep and level, one driver at a time
    m = run.m
    # Linear IRs as accurate as the sequential ones: the same -40 dB bound as test_engine's.
    for group, e in cap.step_errors_db(run).items():
        assert e.max() <= -40.0, f"{group}: {e.max():.1f} dB"
    # THD: NaN at every step but the on-axis one, which played the dedicated 1 s sweeps: the
    # same captures as the sequential schedule's (other noise), so the same THD.
    thd = m.quality["directivity"]["thd_percent"]
    assert run.plan.thd_step == ("directivity", 0)
    assert np.all(np.isnan(thd[1])) and np.all(np.isnan(m.quality["binaural"]["thd_percent"]))
    assert_allclose(thd[0], ref.m.quality["directivity"]["thd_percent"][0], rtol=0.05)
    # THD against frequency too: from the dedicated sweeps at that step only. The nominal drivers' THD per band
    # is mostly the noise in the harmonic windows (two independent draws, 1 s sweeps here): the same as the
    # sequential schedule's within a factor of 1.6 per band and 10 % in the median; the noise from every step
    bands = m.quality["directivity"]["thd_band_percent"]
    seq = ref.m.quality["directivity"]["thd_band_percent"][0]
    assert np.all(np.isnan(bands[1])) and np.all(np.isnan(m.quality["binaural"]["thd_band_percent"]))
    assert_array_equal(np.isnan(bands[0]), np.isnan(seq))
    ratio = bands[0][np.isfinite(seq)] / seq[np.isfinite(seq)]
    assert ratio.size > 100 and np.all((ratio > 1 / 1.6) & (ratio < 1.6)) and abs(np.median(ratio) - 1) < 0.1
    assert np.all(np.isfinite(m.quality["directivity"]["noise_band_db"]))
    with h5py.File(run.path, "r") as f:
        attrs = dict(f.attrs)
    # The contamination bound is recorded per source and far below the IR error.
    assert attrs["mesm_contamination_bound_db"].shape == (5,)
    assert np.all(attrs["mesm_contamination_bound_db"] < -20.0)
    # Station time: the estimate is the simulated time to one sample per capture (4 steps,
    # one MESM capture each, plus 5 THD captures): turntable 0 -> 0 -> -90 -> 0 (180 deg in
    # 2 moves that settle) and playback.
    plan, tt = run.plan, run.proc.turntable
    assert_allclose(attrs["station_time_turntable_s"], 180.0 / tt.speed_deg_s + 2 * tt.settle_s, rtol=1e-12)
    assert_allclose(attrs["station_time_s"], estimate_plan_time_s(plan), atol=9 / plan.sample_rate)
    assert attrs["station_time_clock"] == "simulated"
