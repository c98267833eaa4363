"""Partial reads of measurement files: one microphone, a block of azimuths, float32."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from calib.errors import FileFormatError
from calib.geometry import HeadPosition
from calib.store.measurement import LazyDataset, StepQuality, create_measurement, read_measurement, write_step


@pytest.fixture
def meas_path(tmp_path):
    path = create_measurement(
        tmp_path / "m.h5", serial="SN", stage="characterize", sample_rate=48000, rig="sim", simulated=True,
        procedure_text="", procedure_sha256="0" * 64, sources=["a", "b", "c"], azimuth_deg=np.arange(4) * 90.0 - 180.0,
        receivers=["m0", "m1"], positions=[HeadPosition("centre", (1.0, 0.0, 0.0), 180.0)], ir_length=16,
    )
    rng = np.random.default_rng(0)
    q = StepQuality(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), np.zeros(3, int))
    for a in range(4):
        write_step(path, "directivity", a, rng.standard_normal((2, 3, 16)), q)
    write_step(path, "binaural", 0, rng.standard_normal((2, 3, 16)), q)
    return path


def test_lazy_slabs_equal_the_eager_arrays(meas_path):
    eager = read_measurement(meas_path)
    lazy = read_measurement(meas_path, lazy=True, dtype=np.float32)
    ir = lazy.directivity_ir
    assert isinstance(ir, LazyDataset) and ir.shape == (4, 2, 3, 16) and ir.ndim == 4 and len(ir) == 4
    assert lazy.ir_length == 16
    one_mic = ir[1:3, 1]
    assert one_mic.dtype == np.float32 and one_mic.shape == (2, 3, 16)
    assert_array_equal(one_mic, eager.directivity_ir[1:3, 1])  # stored float32: nothing lost
    assert_array_equal(np.asarray(lazy.binaural_ir), eager.binaural_ir)
    assert np.asarray(ir, dtype=np.float64).dtype == np.float64
    assert eager.directivity_ir.dtype == np.float64 and isinstance(eager.directivity_ir, np.ndarray)


def test_lazy_read_reports_missing_datasets(meas_path):
    with h5py.File(meas_path, "r+") as f:
        del f["directivity/ir"]
    with pytest.raises(FileFormatError, match=r"m\.h5: /directivity/ir: expected a dataset, got none"):
        read_measurement(meas_path, lazy=True)
