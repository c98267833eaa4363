"""Measurement files (HDF5, format ``calib-measurement`` version 1).

Layout (docs/file-formats.md, 'Measurement file')::

    /                       attrs: format, version, serial, stage, sample_rate, rig,
                            created_utc, software, procedure_sha256, complete, simulated
    /procedure              the procedure TOML text as used
    /sources                [S] driver names (characterize) or inputs L, R, C (verify)
    /directivity/azimuth_deg [A]      microphone azimuth relative to the device front
    /directivity/receivers   [Rm]     microphone names
    /directivity/ir          [A, Rm, S, N] float32
    /directivity/done        [A] bool step written
    /binaural/positions/name, xyz_m, yaw_deg   [P], [P, 3], [P]
    /binaural/ir             [P, 2, S, N] float32 (ears: 0 left, 1 right)
    /binaural/done           [P] bool
    /quality/<group>/snr_db, thd_percent       [steps, receivers, S]
    /quality/<group>/peak_dbfs                 [steps, receivers]
    /quality/<group>/latency_samples           [steps, S]
    /quality/<group>/retries, clipped          [steps] (clipped: the level was backed off)
    /quality/band_centre_hz                    [B] 1/3-octave bands of the spectra below (optional)
    /quality/<group>/thd_band_percent          [steps, receivers, S, B] THD against excitation frequency
    /quality/<group>/noise_band_db             [steps, receivers, S, B] background noise per band
                                               (attr noise_unit: "dBFS" or "dB SPL")
    /reflections/<group>/direct_s, first_s, first_level_db      [steps, receivers, S] detected arrivals
    /reflections/<group>/geometric_direct_s, geometric_first_s  the same from the room geometry (if known)

Crash safety: every dataset is created at its full size and filled (NaN)
when the file is created, then flushed. A step afterwards writes raw data
only, sets its ``done`` flag and flushes, so a process killed at any moment
leaves a file whose metadata is intact: it opens, says ``complete=False``,
and its ``done`` flags name the steps that are in it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from calib import __version__
from calib.errors import FileFormatError
from calib.geometry import HeadPosition

FORMAT = "calib-measurement"
VERSION = 1
STAGES = ("characterize", "verify")
GROUPS = ("directivity", "binaural")
NOISE_UNITS = ("dBFS", "dB SPL")
"""``noise_unit`` of ``noise_band_db``: dB re a full-scale sine's mean square (AES17), or dB re 20 µPa."""


@dataclass
class StepQuality:
    """Quality figures of one measurement step (one azimuth or one head position)."""

    snr_db: np.ndarray  # [receivers, S]
    thd_percent: np.ndarray  # [receivers, S]
    peak_dbfs: np.ndarray  # [receivers]
    latency_samples: np.ndarray  # [S]
    retries: int = 0
    clipped: bool = False
    thd_band_percent: np.ndarray | None = None  # [receivers, S, B]: THD against the excitation frequency
    noise_band_db: np.ndarray | None = None  # [receivers, S, B]: background noise per band (noise_unit)


@dataclass
class Measurement:
    """A measurement file read into memory.

    ``directivity_ir`` is [A, Rm, S, N] and ``binaural_ir`` [P, 2, S, N]; steps
    not yet measured are NaN and flagged False in ``*_done``.
    """

    path: Path
    serial: str
    stage: str
    sample_rate: int
    rig: str
    simulated: bool
    created_utc: str
    software: str
    procedure_sha256: str
    procedure_text: str
    complete: bool
    sources: list[str]
    azimuth_deg: np.ndarray
    receivers: list[str]
    directivity_ir: np.ndarray | LazyDataset
    directivity_done: np.ndarray
    positions: list[HeadPosition]
    binaural_ir: np.ndarray | LazyDataset
    binaural_done: np.ndarray
    quality: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # HDF5 attribute values: numpy scalars or text
    reflections: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """``/reflections/<group>/<name>``: arrival times per step (:mod:`calib.stages.gating`); empty in older files."""
    band_centre_hz: np.ndarray | None = None
    """``/quality/band_centre_hz``: bands of ``quality[group]["thd_band_percent"]`` and ``["noise_band_db"]``
    (present together); None in older files, which have neither."""
    noise_unit: dict[str, str] = field(default_factory=dict)
    """``/quality/<group>`` attribute ``noise_unit`` ("dBFS" or "dB SPL") per group; empty in older files."""

    @property
    def ir_length(self) -> int:
        """IR length N in samples."""
        return int(self.directivity_ir.shape[-1])

    def position_index(self, name: str) -> int:
        """Index of the head position called ``name``."""
        names = [p.name for p in self.positions]
        if name not in names:
            raise FileFormatError(
                f"{self.path}: /binaural/positions/name: expected one of {', '.join(names)}, got {name!r}"
            )
        return names.index(name)


def utc_stamp(now: _dt.datetime | None = None) -> str:
    """Return a UTC time stamp usable in file names, e.g. ``20261125T224519Z``."""
    now = now or _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


def create_measurement(
    path: str | Path,
    *,
    serial: str,
    stage: str,
    sample_rate: int,
    rig: str,
    simulated: bool,
    procedure_text: str,
    procedure_sha256: str,
    sources: Sequence[str],
    azimuth_deg: np.ndarray,
    receivers: Sequence[str],
    positions: Sequence[HeadPosition],
    ir_length: int,
    extra_attrs: dict[str, object] | None = None,
    band_centre_hz: Sequence[float] | np.ndarray | None = None,
    noise_unit: dict[str, str] | None = None,
) -> Path:
    """Create a new, empty (all steps missing) measurement file.

    ``band_centre_hz`` (the capture's 1/3-octave bands) adds the per-band
    THD and noise datasets; ``noise_unit`` names the noise level's reference per
    group, "dBFS" (the default) or "dB SPL" (calibrated microphones).

    Raises
    ------
    FileExistsError
        If ``path`` exists: measured data is never overwritten.
    """
    path = Path(path)
    if stage not in STAGES:
        raise ValueError(f"stage: expected one of {', '.join(STAGES)}, got {stage!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    n_s, n_a, n_r, n_p = len(sources), len(azimuth_deg), len(receivers), len(positions)
    string = h5py.string_dtype()
    with h5py.File(path, "x") as f:  # "x": fail if it exists
        f.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "serial": serial,
                "stage": stage,
                "sample_rate": int(sample_rate),
                "rig": rig,
                "simulated": bool(simulated),
                "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "software": f"calib {__version__}",
                "procedure_sha256": procedure_sha256,
                "complete": False,
            }
        )
        for key, value in (extra_attrs or {}).items():
            f.attrs[key] = value
        f.create_dataset("procedure", data=procedure_text, dtype=string)
        f.create_dataset("sources", data=list(sources), dtype=string)
        d = f.create_group("directivity")
        d.create_dataset("azimuth_deg", data=np.asarray(azimuth_deg, dtype=np.float64))
        d.create_dataset("receivers", data=list(receivers), dtype=string)
        d.create_dataset("ir", data=np.full((n_a, n_r, n_s, ir_length), np.nan, np.float32))
        d.create_dataset("done", data=np.zeros(n_a, bool))
        b = f.create_group("binaural")
        pos = b.create_group("positions")
        pos.create_dataset("name", data=[p.name for p in positions], dtype=string)
        pos.create_dataset("xyz_m", data=np.array([p.xyz_m for p in positions], float).reshape(n_p, 3))
        pos.create_dataset("yaw_deg", data=np.array([p.yaw_deg for p in positions], float))
        b.create_dataset("ir", data=np.full((n_p, 2, n_s, ir_length), np.nan, np.float32))
        b.create_dataset("done", data=np.zeros(n_p, bool))
        for group, n_steps, n_recv in (("directivity", n_a, n_r), ("binaural", n_p, 2)):
            q = f.create_group(f"quality/{group}")
            for name in ("snr_db", "thd_percent"):
                q.create_dataset(name, data=np.full((n_steps, n_recv, n_s), np.nan))
            q.create_dataset("peak_dbfs", data=np.full((n_steps, n_recv), np.nan))
            q.create_dataset("latency_samples", data=np.full((n_steps, n_s), -1, np.int64))
            q.create_dataset("retries", data=np.zeros(n_steps, np.int64))
            q.create_dataset("clipped", data=np.zeros(n_steps, bool))
            if band_centre_hz is not None:
                shape = (n_steps, n_recv, n_s, len(band_centre_hz))
                q.create_dataset("thd_band_percent", data=np.full(shape, np.nan))
                q.create_dataset("noise_band_db", data=np.full(shape, np.nan))
                q.attrs["noise_unit"] = (noise_unit or {}).get(group, NOISE_UNITS[0])
        if band_centre_hz is not None:
            f["quality"].create_dataset("band_centre_hz", data=np.asarray(band_centre_hz, dtype=np.float64))
        f.flush()
    return path


def write_step(path: str | Path, group: str, index: int, ir: np.ndarray, quality: StepQuality) -> None:
    """Write one step (``ir`` is [receivers, S, N]) and mark it done, then flush."""
    if group not in GROUPS:
        raise ValueError(f"group: expected one of {', '.join(GROUPS)}, got {group!r}")
    with h5py.File(path, "r+") as f:
        f[f"{group}/ir"][index] = ir.astype(np.float32)
        q = f[f"quality/{group}"]
        q["snr_db"][index] = quality.snr_db
        q["thd_percent"][index] = quality.thd_percent
        q["peak_dbfs"][index] = quality.peak_dbfs
        q["latency_samples"][index] = quality.latency_samples
        q["retries"][index] = quality.retries
        q["clipped"][index] = quality.clipped
        for name in ("thd_band_percent", "noise_band_db"):
            value = getattr(quality, name)
            if value is not None and name in q:  # a file created before the spectra (resumed) has no room
                q[name][index] = value
        f.flush()  # data before the flag: a crash between them loses the step, never half of it
        f[f"{group}/done"][index] = True
        f.flush()


def mark_complete(path: str | Path) -> None:
    """Set ``complete=True`` once every step is done."""
    with h5py.File(path, "r+") as f:
        missing = [g for g in GROUPS if not np.all(f[f"{g}/done"][()])]
        if missing:
            raise FileFormatError(f"{path}: cannot mark complete: steps missing in {', '.join(missing)}")
        f.attrs["complete"] = True
        f.flush()


class LazyDataset:
    """An HDF5 dataset read only when indexed: just the requested slab leaves the file.

    ``lazy[a0:a1, mic]`` reads those azimuths of one microphone (an HDF5
    hyperslab) as ``dtype``; ``numpy.asarray(lazy)`` reads all of it. The file
    is opened per read, so nothing stays open between reads.
    """

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> None:
        self.path, self.name, self.shape, self.dtype = path, name, tuple(shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        """Return the number of dimensions of the dataset."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.name][key], dtype=self.dtype)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return self[()] if dtype is None else self[()].astype(dtype)


def read_measurement(path: str | Path, stage: str | None = None, *, lazy: bool = False,
                     dtype: type = np.float64) -> Measurement:
    """Read a measurement file, checking its format, version, shapes, dtypes and data.

    Parameters
    ----------
    path : str or Path
    stage : str, optional
        The stage the file must be (``"characterize"`` or ``"verify"``).
    lazy : bool
        Leave ``directivity_ir`` and ``binaural_ir`` in the file as
        :class:`LazyDataset` (read on indexing, e.g. one microphone or a block
        of azimuths at a time): memory then follows what the caller uses, not
        the file (a 360 x 8 x 5 x 16384 file is 0.9 GB in float32). Their
        samples are still checked, a block of steps at a time.
    dtype
        Sample type of the IRs as returned (stored as float32: float32 loses nothing).

    Parameters
    ----------
    path
        The file.
    lazy
        Leave ``directivity_ir`` and ``binaural_ir`` in the file as
        :class:`LazyDataset` (read on indexing, e.g. one microphone or a block
        of azimuths at a time): memory then follows what the caller uses, not
        the file (a 360 x 8 x 5 x 16384 file is 0.9 GB in float32).
    dtype
        Sample type of the IRs as returned (stored as float32: float32 loses nothing).

    Raises
    ------
    FileFormatError
        Not HDF5, not a calib measurement, a newer version, a missing or
        misshapen dataset, an attribute of the wrong type, non-finite data in
        a step marked done, ``complete`` with steps missing, or the wrong stage;
        one line naming the file and the field.
    """
    path = Path(path)
    f = open_checked(path, FORMAT)
    with f:
        try:
            m = _read_checked(path, f, lazy, dtype)
        except FileFormatError:
            raise
        except KeyError as exc:
            raise FileFormatError(f"{path}: missing {exc.args[0]!s} (not a complete calib measurement file)") from None
        except (TypeError, ValueError, OverflowError, OSError, RuntimeError) as exc:
            # h5py raises these for damaged chunks and datasets of an unexpected kind (int(inf): OverflowError).
            raise FileFormatError(f"{path}: unreadable content ({' '.join(str(exc).split())[:160]})") from None
    if stage is not None and m.stage != stage:
        raise FileFormatError(f"{path}: stage: expected {stage!r}, got {m.stage!r}")
    return m


def _read_checked(path: Path, f: h5py.File, lazy: bool = False, dtype: type = np.float64) -> Measurement:
    """Return the body of :func:`read_measurement`: every field read through a check."""
    attrs = dict(f.attrs)
    for name in ("serial", "stage", "sample_rate", "rig", "created_utc", "software", "procedure_sha256", "complete"):
        if name not in attrs:
            raise FileFormatError(
                f"{path}: {name}: expected the attribute, got none (not a complete calib measurement file)"
            )
    text = {name: _attr_str(path, attrs, name) for name in
            ("serial", "stage", "rig", "created_utc", "software", "procedure_sha256")}
    if text["stage"] not in STAGES:
        raise FileFormatError(f"{path}: stage: expected one of {', '.join(STAGES)}, got {text['stage']!r}")
    sample_rate = _attr_int(path, attrs, "sample_rate")
    if sample_rate <= 0:
        raise FileFormatError(f"{path}: sample_rate: expected a positive integer, got {sample_rate}")
    complete = _attr_bool(path, attrs, "complete")
    simulated = _attr_bool(path, attrs, "simulated") if "simulated" in attrs else False

    sources = _strings(path, f, "sources")
    receivers = _strings(path, f, "directivity/receivers")
    names = _strings(path, f, "binaural/positions/name")
    n_s, n_r, n_p = len(sources), len(receivers), len(names)
    azimuth = _numbers(path, f, "directivity/azimuth_deg", (None,))
    n_a = len(azimuth)
    if not np.all(np.isfinite(azimuth)) or np.any((azimuth < -180) | (azimuth >= 180)):
        raise FileFormatError(f"{path}: /directivity/azimuth_deg: expected finite azimuths within [-180, 180)")
    d_ir = _irs(path, f, "directivity/ir", (n_a, n_r, n_s, None), lazy, dtype)
    n = d_ir.shape[-1]
    b_ir = _irs(path, f, "binaural/ir", (n_p, 2, n_s, n), lazy, dtype)
    d_done = _flags(path, f, "directivity/done", n_a)
    b_done = _flags(path, f, "binaural/done", n_p)
    xyz = _numbers(path, f, "binaural/positions/xyz_m", (n_p, 3))
    yaw = _numbers(path, f, "binaural/positions/yaw_deg", (n_p,))
    if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(yaw))):
        raise FileFormatError(f"{path}: /binaural/positions: expected finite xyz_m and yaw_deg")
    for group, ir, done in (("directivity", d_ir, d_done), ("binaural", b_ir, b_done)):
        bad = _non_finite_steps(ir, done)
        if bad:
            raise FileFormatError(
                f"{path}: /{group}/ir: expected finite samples in every step marked done, got NaN/inf in step {bad[0]}"
            )
    if complete and not (d_done.all() and b_done.all()):
        raise FileFormatError(f"{path}: complete: marked complete but steps are missing in /*/done")
    quality = {}
    for group, n_steps, n_recv in (("directivity", n_a, n_r), ("binaural", n_p, 2)):
        shapes = {"snr_db": (n_steps, n_recv, n_s), "thd_percent": (n_steps, n_recv, n_s),
                  "peak_dbfs": (n_steps, n_recv), "latency_samples": (n_steps, n_s), "retries": (n_steps,),
                  "clipped": (n_steps,)}
        quality[group] = {k: _numbers(path, f, f"quality/{group}/{k}", shape, allow_bool=k == "clipped")
                          for k, shape in shapes.items()}
    bands, noise_unit = _spectra(path, f, quality)
    positions = [
        # ignore[arg-type]: rows of the [P, 3] dataset _numbers checked, so 3 coordinates each
        HeadPosition(str(nm), tuple(float(v) for v in p), float(y))  # type: ignore[arg-type]
        for nm, p, y in zip(names, xyz, yaw, strict=True)
    ]
    procedure = f["procedure"]
    if not isinstance(procedure, h5py.Dataset) or procedure.shape != () or procedure.dtype.kind not in "OSU":
        raise FileFormatError(f"{path}: /procedure: expected the procedure text (a scalar string)")
    return Measurement(
        path=path, serial=text["serial"], stage=text["stage"], sample_rate=sample_rate, rig=text["rig"],
        simulated=simulated, created_utc=text["created_utc"], software=text["software"],
        procedure_sha256=text["procedure_sha256"], procedure_text=procedure.asstr()[()], complete=complete,
        sources=sources, azimuth_deg=azimuth, receivers=receivers, directivity_ir=d_ir, directivity_done=d_done,
        positions=positions, binaural_ir=b_ir, binaural_done=b_done, quality=quality, attrs=attrs,
        reflections={g: {k: _numbers(path, f, f"reflections/{g}/{k}", (None,) * f[f"reflections/{g}/{k}"].ndim)
                         for k in f[f"reflections/{g}"]} for g in (f["reflections"] if "reflections" in f else ())},
        band_centre_hz=bands, noise_unit=noise_unit,
    )


def _spectra(path: Path, f: h5py.File, quality: dict[str, dict[str, np.ndarray]]
             ) -> tuple[np.ndarray | None, dict[str, str]]:
    """Read the optional per-band THD and noise into ``quality``; return their bands and noise units."""
    if "band_centre_hz" not in f["quality"]:
        return None, {}
    bands = _numbers(path, f, "quality/band_centre_hz", (None,))
    units = {}
    for group, q in quality.items():
        shape = q["snr_db"].shape + (len(bands),)
        for name in ("thd_band_percent", "noise_band_db"):
            q[name] = _numbers(path, f, f"quality/{group}/{name}", shape)
        unit = f[f"quality/{group}"].attrs.get("noise_unit")
        unit = unit.decode() if isinstance(unit, bytes) else unit
        if unit not in NOISE_UNITS:
            raise FileFormatError(f"{path}: /quality/{group} noise_unit: expected one of {', '.join(NOISE_UNITS)}, "
                                  f"got {unit!r}")
        units[group] = str(unit)
    return bands, units


def _irs(path: Path, f: h5py.File, name: str, shape: tuple[int | None, ...], lazy: bool,
         dtype: npt.DTypeLike) -> np.ndarray | LazyDataset:
    """Return an IR dataset checked like :func:`_numbers`, read now as ``dtype`` or left in the file (``lazy``)."""
    ds = _dataset(path, f, name)
    if lazy:
        if ds.dtype.kind != "f" or len(ds.shape) != len(shape) or any(
                w is not None and g != w for g, w in zip(ds.shape, shape, strict=True)):
            _numbers(path, f, name, shape)  # raises the one-line error
        return LazyDataset(path, name, ds.shape, dtype)
    return _numbers(path, f, name, shape).astype(dtype, copy=False)


def _non_finite_steps(ir: np.ndarray | LazyDataset, done: np.ndarray) -> list[int]:
    """Return steps marked done with NaN/inf samples, checked a block of steps at a time."""
    bad: list[int] = []
    for start in range(0, len(done), 32):
        block = np.asarray(ir[start : start + 32])
        finite = np.all(np.isfinite(block.reshape(block.shape[0], -1)), axis=1)
        bad += [start + int(i) for i in np.flatnonzero(done[start : start + 32] & ~finite)]
    return bad


def _attr_str(path: Path, attrs: dict[str, object], name: str) -> str:
    value = attrs[name]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise FileFormatError(f"{path}: {name}: expected a string attribute, got {type(value).__name__} {value!r}")
    return value


def _attr_int(path: Path, attrs: dict[str, object], name: str) -> int:
    value = attrs[name]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FileFormatError(f"{path}: {name}: expected an integer attribute, got {type(value).__name__} {value!r}")
    return int(value)


def _attr_bool(path: Path, attrs: dict[str, object], name: str) -> bool:
    value = attrs[name]
    if not isinstance(value, (bool, np.bool_)):
        raise FileFormatError(f"{path}: {name}: expected a boolean attribute, got {type(value).__name__} {value!r}")
    return bool(value)


def _dataset(path: Path, f: h5py.File, name: str) -> h5py.Dataset:
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise FileFormatError(f"{path}: /{name}: expected a dataset, got {'none' if obj is None else 'a group'}")
    return obj


def _strings(path: Path, f: h5py.File, name: str) -> list[str]:
    ds = _dataset(path, f, name)
    if ds.ndim != 1 or ds.dtype.kind not in "OSU":
        raise FileFormatError(f"{path}: /{name}: expected a list of strings, got {ds.dtype} of shape {ds.shape}")
    return [str(v) for v in ds.asstr()[()]]


def _numbers(
    path: Path, f: h5py.File, name: str, shape: tuple[int | None, ...], allow_bool: bool = False
) -> np.ndarray:
    """Return a numeric dataset of ``shape`` (None: any length) as float64 (int64/bool kept where stored so)."""
    ds = _dataset(path, f, name)
    kinds = "fiu" + ("b" if allow_bool else "")
    if ds.dtype.kind not in kinds:
        raise FileFormatError(f"{path}: /{name}: expected numbers, got dtype {ds.dtype}")
    if len(ds.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(ds.shape, shape, strict=True)
    ):
        want = "x".join("N" if w is None else str(w) for w in shape) or "a scalar"
        got = "x".join(map(str, ds.shape)) or "a scalar"
        raise FileFormatError(f"{path}: /{name}: expected shape {want}, got {got}")
    data = ds[()]
    return data.astype(np.float64) if ds.dtype.kind == "f" else data


def _flags(path: Path, f: h5py.File, name: str, n: int) -> np.ndarray:
    ds = _dataset(path, f, name)
    if ds.dtype.kind != "b" or ds.shape != (n,):
        raise FileFormatError(f"{path}: /{name}: expected {n} booleans, got dtype {ds.dtype} of shape {ds.shape}")
    return ds[()]


def file_format(path: str | Path) -> str | None:
    """Return the ``format`` attribute of an HDF5 file (None if it has none), or a one-line FileFormatError."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except (OSError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({' '.join(str(exc).split())})") from None
    return fmt.decode() if isinstance(fmt, bytes) else (None if fmt is None else str(fmt))


def open_checked(path: Path, expected_format: str, mode: str = "r", expected_version: int = VERSION) -> h5py.File:
    """Open an HDF5 file and check its ``format`` and that ``version`` is not newer than ours."""
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({' '.join(str(exc).split())})") from None
    try:
        fmt = f.attrs.get("format")
        version = f.attrs.get("version")
    except (OSError, TypeError, ValueError) as exc:
        f.close()
        raise FileFormatError(f"{path}: attributes unreadable ({exc})") from None
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if fmt != expected_format:
        f.close()
        raise FileFormatError(f"{path}: format: expected {expected_format!r}, got {fmt!r}")
    if version is None or isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
        f.close()
        shown = "none" if version is None else f"{type(version).__name__} {version!r}"
        raise FileFormatError(f"{path}: version: expected an integer attribute, got {shown}")
    if not 1 <= int(version) <= expected_version:
        f.close()
        raise FileFormatError(
            f"{path}: version: expected {expected_version} or older, got {int(version)}"
            + (" (update calib to read it)" if int(version) > expected_version else "")
        )
    return f

