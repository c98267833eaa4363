"""Calibration files: round trip, never overwritten, bad files rejected with the file named."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

from calib.errors import FileFormatError
from calib.store.calibration import (
    FORMAT,
    VERSION,
    AreaBank,
    Calibration,
    file_sha256,
    read_calibration,
    write_calibration,
)


def _cal(**changes: object) -> Calibration:
    rng = np.random.default_rng(3)
    fields: dict[str, object] = dict(
        serial="SN123",
        product_id="aurora5",
        sample_rate=48000,
        drivers=["woofer", "tweeter"],
        output_channels=[5, 3],
        fir=rng.standard_normal((3, 2, 32)),
        virtualizer=rng.standard_normal((2, 2, 8)),
        virtualizer_delay_samples=4,
        modeling_delay_s=0.008,
        measurement_sha256="1" * 64,
        procedure_sha256="2" * 64,
        procedure_text='[product]\nid = "aurora5"\n',
        predicted={
            "bands_hz": np.array([500.0, 1000.0, 2000.0]),
            "cancellation_db": rng.standard_normal((2, 4, 3)),
            "holdout/cancellation_db": rng.standard_normal((2, 2, 3)),
        },
        predicted_attrs={"cancellation_db": {"axes": "input, position, band", "unit": "dB"}},
    )
    fields.update(changes)
    return Calibration(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(tmp_path):
    cal = _cal()
    path = write_calibration(tmp_path / "unit" / "calibration.h5", cal)
    back = read_calibration(path)
    assert back.path == path and cal.path == path
    for name in ("serial", "product_id", "sample_rate", "drivers", "output_channels", "inputs",
                 "virtualizer_delay_samples", "modeling_delay_s", "measurement_sha256",
                 "procedure_sha256", "procedure_text", "created_utc", "software"):
        assert getattr(back, name) == getattr(cal, name), name
    assert back.fir.dtype == np.float32 and back.virtualizer.dtype == np.float32
    np.testing.assert_array_equal(back.fir, cal.fir)
    np.testing.assert_array_equal(back.virtualizer, cal.virtualizer)
    np.testing.assert_allclose(back.fir, _cal().fir, rtol=1e-6)  # float32 of the float64 input
    assert sorted(back.predicted) == sorted(cal.predicted)
    for name, arr in cal.predicted.items():
        np.testing.assert_array_equal(back.predicted[name], arr)
    assert back.predicted_attrs == {"cancellation_db": {"axes": "input, position, band", "unit": "dB"}}
    assert back.taps == 32
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT == "calib-calibration" and f.attrs["version"] == VERSION == 1
        assert list(f["inputs"].asstr()[()]) == ["L", "R", "C"]
        assert f["fir"].dtype == np.float32 and f["fir"].shape == (3, 2, 32)
        assert f["virtualizer"].attrs["delay_samples"] == 4


def test_never_overwrites(tmp_path):
    path = write_calibration(tmp_path / "c.h5", _cal())
    digest = file_sha256(path)
    with pytest.raises(FileExistsError):
        write_calibration(path, _cal(serial="OTHER"))
    assert file_sha256(path) == digest
    assert read_calibration(path).serial == "SN123"


def test_file_sha256_matches_hashlib_across_chunks(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(10_001)
    path.write_bytes(data)
    assert file_sha256(path, chunk_bytes=7) == hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def _edit(path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda f: f.attrs.__setitem__("format", "calib-measurement"),
         r"c\.h5: format: expected 'calib-calibration', got 'calib-measurement'"),
        (lambda f: f.attrs.__setitem__("version", 2), r"c\.h5: version: expected 1 or older, got (np\.int64\()?2"),
        (lambda f: f.__delitem__("fir"), r"c\.h5: missing /fir \(not a complete calib calibration file\)"),
        (lambda f: f.attrs.__delitem__("serial"), r"c\.h5: missing attribute 'serial'"),
        (lambda f: (f.__delitem__("output_channels"), f.create_dataset("output_channels", data=[1, 1])),
         r"c\.h5: output_channels: expected 2 distinct 1-based channels \(one per driver\), got \[1, 1\]"),
    ],
    ids=["other format", "newer version", "missing fir", "missing attr", "bad channels"],
)
def test_bad_files_rejected_naming_the_file(tmp_path, edit, match):
    path = write_calibration(tmp_path / "c.h5", _cal())
    _edit(path, edit)
    with pytest.raises(FileFormatError, match=match):
        read_calibration(path)


def test_not_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(FileFormatError, match=r"notes\.h5: not a readable HDF5 file"):
        read_calibration(text)
    with pytest.raises(FileFormatError, match=r"absent\.h5: no such file"):
        read_calibration(tmp_path / "absent.h5")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"fir": np.zeros((2, 2, 8))}, r"fir: expected shape \[K=3, S=2, T\], got \[2, 2, 8\]"),
        ({"virtualizer": np.zeros((2, 8))}, r"virtualizer: expected shape \[2, 2, Tv\], got \[2, 8\]"),
        ({"virtualizer_delay_samples": 8}, r"virtualizer delay_samples: expected 0 to 7, got 8"),
        ({"inputs": ["L", "R"]}, r"inputs: expected \['L', 'R', 'C'\], got \['L', 'R'\]"),
        ({"drivers": ["a", "a"]}, r"drivers: expected unique, non-empty driver names, got \['a', 'a'\]"),
        ({"output_channels": [0, 1]}, r"output_channels: expected 2 distinct 1-based channels"),
        ({"fir": np.full((3, 2, 4), np.nan)}, r"fir: expected finite values, got NaN or inf"),
        ({"sample_rate": 0}, r"sample_rate: expected a positive rate in Hz, got 0"),
    ],
)
def test_inconsistent_calibration_rejected(changes, match):
    with pytest.raises(FileFormatError, match=match):
        _cal(**changes)


# ---------------------------------------------------------------------- the listening area's bank
def _bank(n_cells: int = 3, **changes: object) -> AreaBank:
    rng = np.random.default_rng(5)
    fields: dict[str, object] = dict(fir=rng.standard_normal((n_cells, 2, 2, 32)),
                                     centres_m=np.column_stack([np.ones(n_cells), np.linspace(-0.1, 0.1, n_cells),
                                                                np.zeros(n_cells)]),
                                     yaw_deg=np.full(n_cells, 180.0), half_size=(0.0, 0.05, 0.0))
    fields.update(changes)
    return AreaBank(**fields)  # type: ignore[arg-type]


def test_area_bank_round_trip_and_files_without_one(tmp_path):
    cal = _cal(area=_bank())
    back = read_calibration(write_calibration(tmp_path / "tracked.h5", cal))
    assert back.area is not None and back.area.n_cells == 3
    np.testing.assert_array_equal(back.area.fir, cal.area.fir)
    np.testing.assert_array_equal(back.area.centres_m, cal.area.centres_m)
    np.testing.assert_array_equal(back.area.yaw_deg, cal.area.yaw_deg)
    assert back.area.half_size == (0.0, 0.05, 0.0)
    np.testing.assert_array_equal(back.fir, cal.fir)  # the fixed filters (and the beam) stay as they were
    # A file without /area (every file before listening areas) reads as a fixed calibration.
    assert read_calibration(write_calibration(tmp_path / "fixed.h5", _cal())).area is None


def test_bad_area_banks_are_rejected(tmp_path):
    with pytest.raises(FileFormatError, match=r"area/fir: expected shape \[C, 2, S=2, T\], got \[3, 2, 3, 32\]"):
        _cal(area=_bank(fir=np.zeros((3, 2, 3, 32))))
    with pytest.raises(FileFormatError, match=r"area/centres_m, area/yaw_deg: expected shapes \[3, 3\] and \[3\]"):
        _cal(area=_bank(yaw_deg=np.zeros(2)))
    with pytest.raises(FileFormatError, match=r"area half_size: expected 3 half extents >= 0"):
        _cal(area=_bank(half_size=(0.0, -0.1, 0.0)))
    with pytest.raises(FileFormatError, match=r"area/fir: expected finite values"):
        _cal(area=_bank(fir=np.full((3, 2, 2, 32), np.nan)))
    path = write_calibration(tmp_path / "t.h5", _cal(area=_bank()))
    with h5py.File(path, "a") as f:
        del f["area/yaw_deg"]
    with pytest.raises(FileFormatError, match=r"t\.h5: missing /area/yaw_deg"):
        read_calibration(path)


def test_an_infinite_output_channel_is_one_line(tmp_path):
    # int(inf) raises OverflowError, not ValueError (found by tests/trust/test_properties.py)
    path = write_calibration(tmp_path / "cal.h5", _cal())
    with h5py.File(path, "r+") as f:
        del f["output_channels"]
        f["output_channels"] = np.array([np.inf])
    with pytest.raises(FileFormatError, match=r"cal\.h5: unreadable content \(cannot convert float infinity"):
        read_calibration(path)
