"""The per-band THD and noise of a measurement file: written per step, read back; older files without them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from calib.errors import FileFormatError
from calib.geometry import HeadPosition
from calib.store.measurement import StepQuality, create_measurement, read_measurement, write_step

BANDS = [100.0, 125.0, 160.0]


def _file(tmp_path, **kw):
    path = create_measurement(
        tmp_path / "m.h5", serial="SN", stage="characterize", sample_rate=48000, rig="sim", simulated=True,
        procedure_text="", procedure_sha256="0" * 64, sources=["a", "b"], azimuth_deg=np.array([0.0, 90.0]),
        receivers=["m0"], positions=[HeadPosition("centre", (1.0, 0.0, 0.0), 180.0)], ir_length=8, **kw,
    )
    rng = np.random.default_rng(1)
    spectra = rng.uniform(0, 5, (2, 1, 2, 3)), rng.uniform(-90, -60, (2, 1, 2, 3))
    for a in range(2):
        q = StepQuality(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1), np.zeros(2, int),
                        thd_band_percent=spectra[0][a], noise_band_db=spectra[1][a])
        write_step(path, "directivity", a, np.zeros((1, 2, 8)), q)
    return path, spectra


def test_spectra_round_trip(tmp_path):
    path, (thd, noise) = _file(tmp_path, band_centre_hz=BANDS, noise_unit={"directivity": "dB SPL"})
    m = read_measurement(path)
    assert_array_equal(m.band_centre_hz, BANDS)
    assert_array_equal(m.quality["directivity"]["thd_band_percent"], thd)
    assert_array_equal(m.quality["directivity"]["noise_band_db"], noise)
    assert np.isnan(m.quality["binaural"]["noise_band_db"]).all()  # the head position is not measured yet
    assert m.noise_unit == {"directivity": "dB SPL", "binaural": "dBFS"}


def test_a_file_without_spectra_still_reads(tmp_path):
    """Files written before the spectra (no band_centre_hz) read; their steps' spectra are dropped, not an error."""
    path, _ = _file(tmp_path)
    m = read_measurement(path)
    assert m.band_centre_hz is None and m.noise_unit == {}
    assert "thd_band_percent" not in m.quality["directivity"]


def test_bad_spectra_are_one_line_errors(tmp_path):
    path, _ = _file(tmp_path, band_centre_hz=BANDS)
    with h5py.File(path, "r+") as f:
        f["quality/directivity"].attrs["noise_unit"] = "dBA"
    with pytest.raises(FileFormatError, match=r"m\.h5: /quality/directivity noise_unit: expected one of dBFS, "
                                              r"dB SPL, got 'dBA'"):
        read_measurement(path)
    with h5py.File(path, "r+") as f:
        f["quality/directivity"].attrs["noise_unit"] = "dBFS"
        del f["quality/binaural/thd_band_percent"]
        f["quality/binaural"].create_dataset("thd_band_percent", data=np.zeros((1, 2, 2, 2)))
    with pytest.raises(FileFormatError,
                       match=r"/quality/binaural/thd_band_percent: expected shape 1x2x2x3, got 1x2x2x2"):
        read_measurement(path)
