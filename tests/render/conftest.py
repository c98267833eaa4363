"""A small in-memory calibration for the render tests (no dependency on the fit)."""

from __future__ import annotations

import numpy as np
import pytest

from calib.store.calibration import Calibration


def make_calibration(
    *,
    n_drivers: int = 3,
    taps: int = 64,
    virtualizer_taps: int = 1,
    delay_samples: int = 0,
    sample_rate: int = 48000,
    seed: int = 0,
) -> Calibration:
    """Random FIRs [3, S, T]; a unit-impulse virtualizer unless ``virtualizer_taps`` > 1."""
    rng = np.random.default_rng(seed)
    fir = rng.standard_normal((3, n_drivers, taps)) * np.exp(-np.arange(taps) / (taps / 4))
    if virtualizer_taps == 1:
        virtualizer = np.eye(2)[:, :, None]
    else:
        virtualizer = 0.3 * rng.standard_normal((2, 2, virtualizer_taps))
        virtualizer[0, 0, delay_samples] += 1.0
        virtualizer[1, 1, delay_samples] += 1.0
    return Calibration(
        serial="SN-TEST-1",
        product_id="duo2",
        sample_rate=sample_rate,
        drivers=[f"drv{s}" for s in range(n_drivers)],
        output_channels=list(range(1, n_drivers + 1)),
        fir=fir,
        virtualizer=virtualizer,
        virtualizer_delay_samples=delay_samples,
        modeling_delay_s=0.008,
        measurement_sha256="ab" * 32,
        procedure_sha256="cd" * 32,
        procedure_text='[product]\nid = "duo2"\n',
    )


@pytest.fixture
def cal() -> Calibration:
    return make_calibration()


@pytest.fixture
def make_cal():
    """The factory :func:`make_calibration` (tests call it with their own options)."""
    return make_calibration
