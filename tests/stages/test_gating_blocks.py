"""Arrival detection over a whole receiver group, read a block of steps at a time (bounded memory)."""

from __future__ import annotations

import h5py
import numpy as np
from numpy.testing import assert_array_equal

from calib.procedure.spec import GateSection
from calib.signals.gate import detect_arrivals
from calib.stages import gating

FS = 48000


def group_irs(steps: int = 7, receivers: int = 2, drivers: int = 3, n: int = 2048) -> np.ndarray:
    """[steps, receivers, drivers, n]: a direct impulse and one reflection per IR, each at its own time, in noise."""
    rng = np.random.default_rng(4)
    ir = 1e-4 * rng.standard_normal((steps, receivers, drivers, n))
    direct = rng.integers(100, 300, ir.shape[:-1])
    gap = rng.integers(60, 400, ir.shape[:-1])
    idx = np.indices(ir.shape[:-1])
    ir[(*idx, direct)] += 1.0
    ir[(*idx, direct + gap)] += rng.uniform(-0.5, 0.5, ir.shape[:-1])
    return ir


def test_detect_group_by_blocks_equals_the_whole_group_at_once(tmp_path, monkeypatch):
    ir = group_irs()
    settings = GateSection()
    ref = detect_arrivals(ir.astype(np.float32), FS, highpass_hz=settings.highpass_hz,
                          min_delay_s=settings.mic_min_delay_ms * 1e-3, threshold_db=settings.threshold_db)
    assert np.isfinite(ref.reflection_s).mean() > 0.9  # the test detects something to compare
    monkeypatch.setattr(gating, "BLOCK_SAMPLES", 2 * int(np.prod(ir.shape[1:])))  # 2 steps a block: 4 blocks
    assert [b.indices(7) for b in gating.step_blocks(ir)] == [(0, 2, 1), (2, 4, 1), (4, 6, 1), (6, 7, 1)]
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["ir"] = ir.astype(np.float32)
        from_file = gating.detect_group(f["ir"], FS, "directivity", settings)  # read from the file block by block
    in_memory = gating.detect_group(ir.astype(np.float32), FS, "directivity", settings)
    for field in ("direct_s", "reflection_s", "reflection_db"):
        assert_array_equal(getattr(from_file, field), getattr(in_memory, field))
    for field in ("direct_s", "reflection_s", "reflection_db"):
        assert_array_equal(getattr(in_memory, field), getattr(ref, field))


def test_a_step_larger_than_the_block_is_its_own_block(monkeypatch):
    monkeypatch.setattr(gating, "BLOCK_SAMPLES", 10)
    assert [b.indices(3) for b in gating.step_blocks(np.zeros((3, 4, 100)))] == [(0, 1, 1), (1, 2, 1), (2, 3, 1)]
