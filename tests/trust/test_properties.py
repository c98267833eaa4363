"""Property-based tests: mutated procedures and HDF5 files never crash a reader.

Property-based tests: random mutations of valid procedures and HDF5 files never end in a traceback
or a silent success (whatever is accepted satisfies the invariants the readers promise).
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calib.errors import FileFormatError, ProcedureError
from calib.procedure.load import parse_procedure
from calib.procedure.spec import Procedure
from calib.store.calibration import read_calibration
from calib.store.measurement import read_measurement

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "procedures" / "duo2.toml").read_text()
KEY_LINES = [i for i, line in enumerate(TEXT.splitlines()) if re.match(r"^[a-z_0-9]+ = ", line)]

toml_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: "nan" if math.isnan(x) else
                                                      ("inf" if x == math.inf else "-inf" if x == -math.inf
                                                       else repr(x))),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["true", "false", '""', '"x"', "[]", "[nan]", "[1.0, inf, 2.0]", "{}", "[[1.0, nan]]",
                     "[400.0, 0.0]", "[0.0, 0.0]"]),
)


def _floats(value: object) -> list[float]:
    """Every float inside a validated model (nested)."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _floats(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _floats(v)]
    return []


@settings(deadline=None)  # examples: the profile in tests/conftest.py
@given(line=st.sampled_from(KEY_LINES), value=toml_values)
def test_mutated_procedure_is_refused_in_one_line_or_fully_finite(line: int, value: str) -> None:
    lines = TEXT.splitlines()
    key = lines[line].split(" = ", 1)[0]
    lines[line] = f"{key} = {value}"
    try:
        proc = parse_procedure("\n".join(lines), source="mut.toml")
    except ProcedureError as exc:
        text = str(exc)
        assert text.startswith("mut.toml: ") and "\n" not in text.strip(), text
        return
    assert isinstance(proc, Procedure)
    assert all(math.isfinite(x) for x in _floats(proc.model_dump()))
    grid = proc.turntable.grid_deg()
    assert np.all((grid >= -180) & (grid < 180)) and len(set(grid.tolist())) == len(grid)


@st.composite
def h5_mutations(draw):
    kind = draw(st.sampled_from(["attr", "dataset", "truncate", "flip"]))
    if kind == "attr":
        name = draw(st.sampled_from(["format", "version", "serial", "stage", "sample_rate", "complete", "simulated",
                                     "procedure_sha256", "measurement_sha256", "modeling_delay_s", "created_utc"]))
        value = draw(st.one_of(st.integers(-5, 10**6), st.floats(), st.text(max_size=8), st.booleans()))
        return ("attr", name, value)
    if kind == "dataset":
        name = draw(st.sampled_from(["directivity/ir", "directivity/done", "directivity/azimuth_deg", "sources",
                                     "binaural/ir", "binaural/done", "binaural/positions/xyz_m",
                                     "quality/directivity/snr_db", "fir", "virtualizer", "drivers",
                                     "output_channels", "inputs", "procedure"]))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from(["f8", "f4", "i8", "bool", "str"]))
        fill = draw(st.sampled_from([0.0, 1.0, np.nan, np.inf]))
        return ("dataset", name, (shape, dtype, fill))
    fraction = draw(st.floats(0.0, 0.99))
    return (kind, "", fraction)


def _apply(path: Path, mutation: tuple) -> None:
    kind, name, arg = mutation
    if kind in ("truncate", "flip"):
        data = bytearray(path.read_bytes())
        at = int(arg * len(data))
        if kind == "truncate":
            data = data[:at]
        else:
            data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    with h5py.File(path, "r+") as f:
        if kind == "attr":
            f.attrs[name] = arg
            return
        shape, dtype, fill = arg
        if name in f:
            del f[name]
        if dtype == "str":
            f.create_dataset(name, data=np.array(["x"] * int(np.prod(shape)), dtype=object).reshape(shape),
                             dtype=h5py.string_dtype())
        elif dtype == "bool":
            f.create_dataset(name, data=np.full(shape, bool(fill == 1.0)))
        else:
            value = fill if dtype.startswith("f") or math.isfinite(fill) else 0
            f.create_dataset(name, data=np.full(shape, value, dtype=dtype))


def _check_measurement(path: Path) -> None:
    try:
        m = read_measurement(path)
    except FileFormatError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)
        return
    a, r, s, n = m.directivity_ir.shape
    assert (len(m.azimuth_deg), len(m.receivers), len(m.sources)) == (a, r, s)
    assert m.binaural_ir.shape == (len(m.positions), 2, s, n)
    assert np.all(np.isfinite(m.directivity_ir[m.directivity_done]))
    assert np.all(np.isfinite(m.binaural_ir[m.binaural_done]))
    assert not m.complete or (m.directivity_done.all() and m.binaural_done.all())
    assert m.stage in ("characterize", "verify") and m.sample_rate > 0


def _check_calibration(path: Path) -> None:
    try:
        cal = read_calibration(path)
    except FileFormatError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)
        return
    assert cal.fir.shape[:2] == (3, len(cal.drivers)) and np.all(np.isfinite(cal.fir))
    assert np.all(np.isfinite(cal.virtualizer)) and cal.sample_rate > 0
    assert re.fullmatch(r"[0-9a-f]{64}", cal.measurement_sha256)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # examples: the profile
@given(mutation=h5_mutations())
def test_mutated_hdf5_files_are_refused_in_one_line_or_valid(archive_master, mutation) -> None:
    unit = archive_master / "m" / "T1"
    (char,) = unit.glob("characterize-*.h5")
    (cal,) = unit.glob("calibration-*.h5")
    with tempfile.TemporaryDirectory() as tmp:
        for source, check in ((char, _check_measurement), (cal, _check_calibration)):
            path = Path(tmp) / source.name
            shutil.copy(source, path)
            try:
                _apply(path, mutation)
            except (OSError, ValueError, TypeError):
                continue  # h5py could not make this mutation (the file is not damaged by us then)
            check(path)
