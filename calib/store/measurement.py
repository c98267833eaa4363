"""Measurement files (HDF5, format ``calib-measurement`` version 1).

Layout (DESIGN.md section 4)::

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

import h5py
import numpy as np

from calib import __version__
from calib.errors import FileFormatError
from calib.rig.base import HeadPosition

FORMAT = "calib-measurement"
VERSION = 1
STAGES = ("characterize", "verify")
GROUPS = ("directivity", "binaural")


@dataclass
class StepQuality:
    """Quality figures of one measurement step (one azimuth or one head position)."""

    snr_db: np.ndarray  # [receivers, S]
    thd_percent: np.ndarray  # [receivers, S]
    peak_dbfs: np.ndarray  # [receivers]
    latency_samples: np.ndarray  # [S]
    retries: int = 0
    clipped: bool = False


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
    directivity_ir: np.ndarray
    directivity_done: np.ndarray
    positions: list[HeadPosition]
    binaural_ir: np.ndarray
    binaural_done: np.ndarray
    quality: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    attrs: dict[str, object] = field(default_factory=dict)
    reflections: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """``/reflections/<group>/<name>``: arrival times per step (see :mod:`calib.stages.gating`); empty in older files."""

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
    """A UTC time stamp usable in file names, e.g. ``20261125T224519Z``."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
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
) -> Path:
    """Create a new, empty (all steps missing) measurement file.

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
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.name, self.shape, self.dtype = path, name, tuple(shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.name][key], dtype=self.dtype)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return self[()] if dtype is None else self[()].astype(dtype)


def read_measurement(path: str | Path, *, lazy: bool = False, dtype: type = np.float64) -> Measurement:
    """Read a measurement file, checking its format and version.

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
        Not HDF5, not a calib measurement, a newer version, or a missing dataset.
    """
    path = Path(path)
    f = open_checked(path, FORMAT)

    def irs(name: str) -> np.ndarray | LazyDataset:
        return LazyDataset(path, name, f[name].shape, dtype) if lazy else f[name][()].astype(dtype)

    with f:
        try:
            attrs = dict(f.attrs)
            pos = f["binaural/positions"]
            positions = [
                HeadPosition(str(n), tuple(float(v) for v in xyz), float(y))  # type: ignore[arg-type]
                for n, xyz, y in zip(
                    pos["name"].asstr()[()], pos["xyz_m"][()], pos["yaw_deg"][()], strict=True
                )
            ]
            quality = {
                g: {k: f[f"quality/{g}/{k}"][()] for k in f[f"quality/{g}"]} for g in GROUPS
            }
            return Measurement(
                path=path,
                serial=str(attrs["serial"]),
                stage=str(attrs["stage"]),
                sample_rate=int(attrs["sample_rate"]),
                rig=str(attrs["rig"]),
                simulated=bool(attrs.get("simulated", False)),
                created_utc=str(attrs["created_utc"]),
                software=str(attrs["software"]),
                procedure_sha256=str(attrs["procedure_sha256"]),
                procedure_text=f["procedure"].asstr()[()],
                complete=bool(attrs["complete"]),
                sources=list(f["sources"].asstr()[()]),
                azimuth_deg=f["directivity/azimuth_deg"][()],
                receivers=list(f["directivity/receivers"].asstr()[()]),
                directivity_ir=irs("directivity/ir"),
                directivity_done=f["directivity/done"][()],
                positions=positions,
                binaural_ir=irs("binaural/ir"),
                binaural_done=f["binaural/done"][()],
                quality=quality,
                attrs=attrs,
                reflections={g: {k: f[f"reflections/{g}/{k}"][()] for k in f[f"reflections/{g}"]}
                             for g in (f["reflections"] if "reflections" in f else ())},
            )
        except KeyError as exc:
            raise FileFormatError(f"{path}: missing {exc.args[0]!s} (not a complete calib measurement file)") from None


def file_format(path: str | Path) -> str | None:
    """The ``format`` attribute of an HDF5 file (None if it has none), or a one-line FileFormatError."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    return fmt.decode() if isinstance(fmt, bytes) else (None if fmt is None else str(fmt))


def open_checked(path: Path, expected_format: str, mode: str = "r", expected_version: int = VERSION) -> h5py.File:
    """Open an HDF5 file and check its ``format`` and that ``version`` is not newer than ours."""
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    fmt = f.attrs.get("format")
    version = f.attrs.get("version")
    if fmt != expected_format:
        f.close()
        shown = fmt.decode() if isinstance(fmt, bytes) else fmt
        raise FileFormatError(f"{path}: format: expected {expected_format!r}, got {shown!r}")
    if version is None or int(version) > expected_version:
        f.close()
        shown = "none" if version is None else int(version)
        raise FileFormatError(
            f"{path}: version: expected {expected_version} or older, got {shown} (update calib to read it)"
        )
    return f

