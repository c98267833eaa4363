"""Verification measures what the checks read: the azimuths derived from the beam target, and its station time."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from calib.capture.schedule import estimate_unit_time_s
from calib.errors import CalibError
from calib.metrics.beam import wrap_deg
from calib.procedure import load_procedure
from calib.procedure.layout import check_azimuths
from calib.stages.product_metrics import product_metrics
from calib.stages.verdict import evaluate

FS = 48000
N_FFT = 256  # 188 Hz bins: every beam band (500 Hz - 4 kHz third octaves) holds at least one


def _beam_check_values(proc, pattern: np.ndarray, azimuths: np.ndarray) -> dict[str, float]:
    """Every beam check's value for a pattern [F, A] (CTC and effort inputs fixed and irrelevant here)."""
    rng = np.random.default_rng(1)
    freqs = np.fft.rfftfreq(N_FFT, 1 / FS)
    ears = np.ones((freqs.size, 1, 2, 2), complex)
    fir = rng.standard_normal((3, len(proc.drivers), 64))
    metrics = product_metrics(proc, freqs, ears, ["centre"], pattern, azimuths, fir, FS)
    return {c.name: c.value for c in evaluate(proc, metrics) if c.name.startswith("beam")}


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # the effort of the random FIR on the coarse grid: not judged here
def test_the_checks_read_exactly_the_derived_azimuths(aurora5):
    grid = aurora5.turntable.grid_deg()
    keep = check_azimuths(aurora5)
    # 0, 5..45 and 80..100 on both sides of the 5-degree grid
    want = np.abs(wrap_deg(grid))
    assert_array_equal(keep, grid[(want <= 45) | ((want >= 80) & (want <= 100))])
    rng = np.random.default_rng(0)
    bins = N_FFT // 2 + 1
    pattern = rng.standard_normal((bins, grid.size)) + 1j * rng.standard_normal((bins, grid.size))
    full = _beam_check_values(aurora5, pattern, grid)
    subset = np.isin(grid, keep)
    # Sufficient: the checks on the subset equal the checks on the whole grid.
    assert_allclose(list(_beam_check_values(aurora5, pattern[:, subset], keep).values()), list(full.values()),
                    rtol=1e-12)
    # Necessary and complete: changing the pattern at one azimuth changes a check iff it is kept.
    for a in range(grid.size):
        changed = False
        for gain in (1e-3, 1e3):
            edited = pattern.copy()
            edited[:, a] *= gain
            values = _beam_check_values(aurora5, edited, grid)
            changed |= any(not np.isclose(values[k], full[k], rtol=1e-9) for k in full)
        assert changed == bool(subset[a]), f"azimuth {grid[a]:g} deg"


def test_directivity_index_needs_the_whole_grid_and_the_front_is_required(aurora5):
    beam = aurora5.targets.beam.model_copy(update={"di_min_db": 3.0})
    with_di = aurora5.model_copy(update={"targets": aurora5.targets.model_copy(update={"beam": beam})})
    assert_array_equal(check_azimuths(with_di), aurora5.turntable.grid_deg())
    no_front = aurora5.model_copy(update={"turntable": aurora5.turntable.model_copy(
        update={"step_deg": None, "azimuths_deg": [5.0, 90.0, -90.0]})})
    with pytest.raises(CalibError, match="turntable: expected an azimuth at 0 deg"):
        check_azimuths(no_front)


def test_verification_measures_the_check_azimuths_and_the_estimate_is_the_time_used(lab, own):
    proc = load_procedure(str(lab["unit"].procedure))
    with h5py.File(own.verification.path, "r") as f:
        assert_array_equal(f["directivity/azimuth_deg"][()], check_azimuths(proc))
        verify_s = float(f.attrs["station_time_s"])
    with h5py.File(lab["unit"].measurement, "r") as f:
        characterize_s = float(f.attrs["station_time_s"])
    # Within 10 % (the target); the model is the simulator's own timing, so it is far closer.
    assert_allclose(estimate_unit_time_s(proc), characterize_s + verify_s, rtol=0.01)
