"""The chain as a Python API (calib.chain): events, resume reuse, and what a fit not written refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calib
from calib.chain import ChainEvents, fit_unit, verify_unit
from calib.errors import FitError
from calib.stages.fit import FitResult
from calib.store.calibration import read_calibration


class Recorder(ChainEvents):
    """Keeps what the chain reports; the methods not overridden do nothing (the protocol's defaults)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def reused(self, path: Path) -> None:
        self.calls.append(("reused", path))

    def fitted(self, result: FitResult) -> None:
        self.calls.append(("fitted", result.calibration_path))


def test_fit_unit_writes_reports_and_matches_the_fit_file(lab, tmp_path):
    events = Recorder()
    result = fit_unit(lab["unit"].measurement, tmp_path / "cal.h5", events)
    assert events.calls == [("fitted", tmp_path / "cal.h5")]
    # the same measurement fitted twice gives the same filters, bit for bit
    written, original = read_calibration(result.calibration_path), read_calibration(lab["calibration"])
    np.testing.assert_array_equal(written.fir, original.fir)
    with pytest.raises(FileExistsError, match="cal.h5"):
        fit_unit(lab["unit"].measurement, tmp_path / "cal.h5", events)


def test_verify_unit_with_resume_reuses_the_finished_verification(lab, own):
    # `own` verified unit A through its calibration; resuming finds that file and measures nothing
    events = Recorder()
    path = verify_unit(lab["calibration"], out_dir=lab["out"], resume=True, progress=False, events=events)
    assert events.calls == [("reused", path)]
    assert path == own.files["verification"]


def test_a_fit_that_was_not_written_has_no_calibration_path():
    result = FitResult(calibration=None, metrics=None, checks=[])  # type: ignore[arg-type]  # only path matters
    with pytest.raises(FitError, match="not written to a calibration file"):
        result.calibration_path  # noqa: B018 - the property access is what raises


def test_the_public_api_is_the_chain():
    assert calib.run_unit is calib.chain.run_unit and calib.fit_file is calib.stages.fit.fit_file
