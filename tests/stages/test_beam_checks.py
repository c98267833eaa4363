"""The beam checks on synthetic metrics: which checks exist, their limits and worst bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib.procedure import load_procedure
from calib.stages.checks import beam_checks, evaluate

AURORA5 = Path(__file__).resolve().parents[2] / "procedures" / "aurora5.toml"
BANDS = np.array([500.0, 630.0, 800.0, 1000.0])


def _procedure(**beam):
    proc = load_procedure(str(AURORA5))
    targets = proc.targets.model_copy(update={"beam": proc.targets.beam.model_copy(update=beam)})
    return proc.model_copy(update={"targets": targets})


def _metrics(sector_plus_1k=25.0, wng=True):
    m = {
        "beam/bands_hz": BANDS,
        "beam/null_depth_db": np.array([[30.0, 31.0, 32.0, 33.0], [30.0, 29.0, 32.0, 33.0]]),
        "beam/sector_rejection_db": np.array([[22.0, 23.0, 24.0, sector_plus_1k], [21.0, 20.5, 24.0, 26.0]]),
        "beam/main_lobe_db": np.array([-3.0, -5.5, -4.0, -4.5]),
        "beam/di_db": np.array([3.5, 4.0, 2.2, 5.0]),
    }
    if wng:
        m["beam/wng_db"] = np.array([-9.8, -9.9, -7.0, -4.0])
    return m


def test_every_beam_check_with_its_worst_band():
    proc = _procedure(di_min_db=3.0)
    checks = {c.name: c for c in beam_checks(proc, _metrics())}
    assert list(checks) == [
        "beam null depth at +90 deg", "beam null depth at -90 deg",
        "beam sector +80..+100 deg rejection", "beam sector -80..-100 deg rejection",
        "beam main lobe within +-45 deg", "beam directivity index", "beam white-noise gain",
    ]
    minus = checks["beam sector -80..-100 deg rejection"]
    assert (minus.value, minus.limit, minus.passed, minus.detail) == (20.5, 19.0, True, "worst band 630 Hz")
    di = checks["beam directivity index"]
    assert (di.value, di.limit, di.passed, di.detail) == (2.2, 2.0, True, "worst band 800 Hz")
    wng = checks["beam white-noise gain"]  # a design limit: no tolerance
    assert (wng.value, wng.limit, wng.passed) == (-9.9, -10.0, True)


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (dict(sector=18.9), "beam sector +80..+100 deg rejection"),
        (dict(wng_min_db=-9.85), "beam white-noise gain"),
        (dict(di_min_db=3.5), "beam directivity index"),
    ],
)
def test_a_short_band_fails_its_check(change, failing):
    sector = change.pop("sector", 25.0)
    checks = beam_checks(_procedure(**change), _metrics(sector_plus_1k=sector))
    assert [c.name for c in checks if not c.passed] == [failing]


def test_optional_checks_need_their_target_and_metric():
    names = [c.name for c in beam_checks(_procedure(null_sector_deg=None, wng_min_db=None), _metrics())]
    assert not any("sector" in n or "white-noise" in n or "directivity" in n for n in names)
    # a verification carries no WNG (it has the pattern, not the per-driver plant): no WNG check
    names = [c.name for c in beam_checks(_procedure(), _metrics(wng=False))]
    assert "beam white-noise gain" not in names and "beam sector +80..+100 deg rejection" in names


def test_evaluate_skips_the_beam_without_beam_metrics():
    proc = _procedure()
    metrics = {
        "ctc/bands_hz": np.array([500.0]),
        "ctc/cancellation_db": np.full((2, 9, 1), 20.0),
        "ctc/positions": np.array([p.name for p in proc.positions], dtype=object),
        "effort/max_db": np.array(3.0),
    }
    assert not any(c.name.startswith("beam") for c in evaluate(proc, metrics))
