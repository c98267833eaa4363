"""Calibration files (HDF5, format ``calib-calibration`` version 1).

Layout (docs/file-formats.md, 'Calibration file')::

    /                  attrs: format, version, serial, sample_rate, created_utc, software,
                       measurement_sha256, procedure_sha256, product_id, modeling_delay_s
    /procedure         the procedure TOML text the filters were fitted with
    /inputs            [K] "L", "R", "C"
    /drivers           [S] driver names, in output order
    /output_channels   [S] int, 1-based interface output of each driver
    /fir               [K, S, T] float32: driver feed s = sum_k fir[k, s] * input k
    /virtualizer       [2, 2, Tv] float32: (L'', R'') = V * (L', R'), applied before /fir
                       attrs: delay_samples (bulk delay of V; the C path is delayed by it)
    /predicted/<name>  float arrays (+ attrs) predicted by the fit (names chosen by the fit)
    /area              optional (a procedure with [listening_area]): the tracked CTC bank
      /fir             [C, 2, S, T] float32: cell c's filters for inputs L, R (replace /fir[0:2])
      /centres_m       [C, 3] cell centres (head centre, device frame)
      /yaw_deg         [C] cell centre yaws
                       attrs: half_size (depth m, lateral m, yaw deg), the cells' half extents

``virtualizer[o, i]`` filters upmixed input ``i`` (0 = L', 1 = R') into the
FIR input ``o`` (0 = L, 1 = R): the diagonal is the ipsilateral path, the
off-diagonal the contralateral crossfeed. With ``virtualization = "delay"``
it is a unit impulse at ``delay_samples`` on the diagonal and zero elsewhere.
Because C bypasses the virtualizer, renderers delay C by ``delay_samples`` so
that the three FIR inputs stay time aligned as the fit assumed.

Files are written once, whole or not at all (:func:`calib.store.atomic.write_atomic`),
and never overwritten.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from calib import __version__
from calib.errors import FileFormatError
from calib.store.atomic import write_atomic
from calib.store.measurement import open_checked

FORMAT = "calib-calibration"
VERSION = 1
INPUTS = ("L", "R", "C")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class AreaBank:
    """One CTC filter set (inputs L and R) per cell of a listening area.

    Parameters
    ----------
    fir
        ``[C, 2, S, T]``: cell ``c`` feeds driver ``s`` with ``fir[c, k, s] * input k``
        (k = 0 L, 1 R); the centre input keeps the calibration's one beam.
    centres_m
        ``[C, 3]`` cell centres (head centre, device frame, metres).
    yaw_deg
        ``[C]`` cell centre yaws (degrees).
    half_size
        Half extents of every cell: depth (m), lateral (m), yaw (deg).
    """

    fir: np.ndarray
    centres_m: np.ndarray
    yaw_deg: np.ndarray
    half_size: tuple[float, float, float]

    def __post_init__(self) -> None:
        self.fir = np.asarray(self.fir, dtype=np.float32)
        self.centres_m = np.asarray(self.centres_m, dtype=float)
        self.yaw_deg = np.asarray(self.yaw_deg, dtype=float)
        # ignore[assignment]: any length is kept here so that validation names a wrong one
        self.half_size = tuple(float(v) for v in self.half_size)  # type: ignore[assignment]

    @property
    def n_cells(self) -> int:
        """Number of cells C."""
        return int(self.fir.shape[0])


@dataclass
class Calibration:
    """One unit's calibration: the FIR matrix, the virtualizer and provenance.

    Parameters
    ----------
    serial, product_id
        Unit serial number and product id (``[product] id`` of the procedure).
    sample_rate
        Sample rate in Hz the filters are designed for.
    drivers, output_channels
        Driver names in output order and their 1-based interface outputs.
    fir
        [K, S, T] FIR matrix; driver feed s = sum_k fir[k, s] * input k.
    virtualizer
        [2, 2, Tv] pre-filter on (L', R'), see the module docstring.
    virtualizer_delay_samples
        Bulk delay of the virtualizer; C is delayed by it when rendering.
    modeling_delay_s
        Modeling delay of the fit (tau_m in docs/solver.md, 'Modeling delay and alignment'), seconds.
    measurement_sha256, procedure_sha256, procedure_text
        Provenance: hash of the characterize measurement file, of the procedure
        and the procedure text itself.
    predicted
        Metrics predicted by the fit, name -> float array (names may contain "/").
    predicted_attrs
        Optional attributes of those arrays (units, axis names), name -> dict.
    inputs
        Input names; always ``("L", "R", "C")`` in version 1.
    area
        The tracked CTC bank of a listening area, or None (a fixed calibration).
    """

    serial: str
    product_id: str
    sample_rate: int
    drivers: list[str]
    output_channels: list[int]
    fir: np.ndarray
    virtualizer: np.ndarray
    modeling_delay_s: float
    measurement_sha256: str
    procedure_sha256: str
    procedure_text: str
    virtualizer_delay_samples: int = 0
    predicted: dict[str, np.ndarray] = field(default_factory=dict)
    predicted_attrs: dict[str, dict[str, object]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=lambda: list(INPUTS))
    created_utc: str = field(default_factory=_now_utc)
    software: str = f"calib {__version__}"
    path: Path | None = None  # set by read_calibration / write_calibration
    area: AreaBank | None = None

    def __post_init__(self) -> None:
        self.fir = np.asarray(self.fir, dtype=np.float32)
        self.virtualizer = np.asarray(self.virtualizer, dtype=np.float32)
        self.drivers = [str(d) for d in self.drivers]
        self.inputs = [str(k) for k in self.inputs]
        self.output_channels = [int(c) for c in self.output_channels]
        self.sample_rate = int(self.sample_rate)
        self.virtualizer_delay_samples = int(self.virtualizer_delay_samples)
        self.predicted = {k: np.asarray(v) for k, v in self.predicted.items()}
        _check(self)

    @property
    def taps(self) -> int:
        """FIR length T in samples."""
        return int(self.fir.shape[-1])


def _check(cal: Calibration) -> None:
    """Shape and value checks shared by construction and reading (FileFormatError)."""
    n_s = len(cal.drivers)
    if tuple(cal.inputs) != INPUTS:
        raise FileFormatError(f"inputs: expected {list(INPUTS)}, got {cal.inputs}")
    if n_s == 0 or len(set(cal.drivers)) != n_s:
        raise FileFormatError(f"drivers: expected unique, non-empty driver names, got {cal.drivers}")
    if len(cal.output_channels) != n_s or min(cal.output_channels) < 1 or len(set(cal.output_channels)) != n_s:
        raise FileFormatError(
            f"output_channels: expected {n_s} distinct 1-based channels (one per driver), got {cal.output_channels}"
        )
    if cal.fir.ndim != 3 or cal.fir.shape[:2] != (len(INPUTS), n_s) or cal.fir.shape[2] < 1:
        raise FileFormatError(f"fir: expected shape [K=3, S={n_s}, T], got {list(cal.fir.shape)}")
    if cal.virtualizer.ndim != 3 or cal.virtualizer.shape[:2] != (2, 2) or cal.virtualizer.shape[2] < 1:
        raise FileFormatError(f"virtualizer: expected shape [2, 2, Tv], got {list(cal.virtualizer.shape)}")
    if not 0 <= cal.virtualizer_delay_samples < cal.virtualizer.shape[2]:
        raise FileFormatError(
            f"virtualizer delay_samples: expected 0 to {cal.virtualizer.shape[2] - 1}, "
            f"got {cal.virtualizer_delay_samples}"
        )
    for name, arr in (("fir", cal.fir), ("virtualizer", cal.virtualizer)):
        if not np.all(np.isfinite(arr)):
            raise FileFormatError(f"{name}: expected finite values, got NaN or inf")
    if cal.sample_rate <= 0:
        raise FileFormatError(f"sample_rate: expected a positive rate in Hz, got {cal.sample_rate}")
    for name in ("measurement_sha256", "procedure_sha256"):
        if not _SHA256.fullmatch(str(getattr(cal, name))):
            raise FileFormatError(f"{name}: expected 64 hex digits, got {str(getattr(cal, name))[:80]!r}")
    if not np.isfinite(cal.modeling_delay_s) or cal.modeling_delay_s < 0:
        raise FileFormatError(f"modeling_delay_s: expected a finite delay >= 0 s, got {cal.modeling_delay_s}")
    if cal.area is not None:
        _check_area(cal.area, n_s)


def _check_area(bank: AreaBank, n_s: int) -> None:
    n_c = bank.fir.shape[0] if bank.fir.ndim == 4 else -1
    if bank.fir.ndim != 4 or n_c < 1 or bank.fir.shape[1:3] != (2, n_s) or bank.fir.shape[3] < 1:
        raise FileFormatError(f"area/fir: expected shape [C, 2, S={n_s}, T], got {list(bank.fir.shape)}")
    if bank.centres_m.shape != (n_c, 3) or bank.yaw_deg.shape != (n_c,):
        raise FileFormatError(f"area/centres_m, area/yaw_deg: expected shapes [{n_c}, 3] and [{n_c}], got "
                              f"{list(bank.centres_m.shape)} and {list(bank.yaw_deg.shape)}")
    if len(bank.half_size) != 3 or min(bank.half_size) < 0:
        raise FileFormatError(f"area half_size: expected 3 half extents >= 0, got {list(bank.half_size)}")
    for name, arr in (("area/fir", bank.fir), ("area/centres_m", bank.centres_m), ("area/yaw_deg", bank.yaw_deg)):
        if not np.all(np.isfinite(arr)):
            raise FileFormatError(f"{name}: expected finite values, got NaN or inf")


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks (files may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def write_calibration(path: str | Path, cal: Calibration) -> Path:
    """Write ``cal`` to a new file at ``path`` and return the path.

    Raises
    ------
    FileExistsError
        If ``path`` exists: a calibration is never overwritten.
    """
    path = Path(path)
    _check(cal)
    path.parent.mkdir(parents=True, exist_ok=True)
    string = h5py.string_dtype()

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "serial": cal.serial,
                    "product_id": cal.product_id,
                    "sample_rate": cal.sample_rate,
                    "created_utc": cal.created_utc,
                    "software": cal.software,
                    "measurement_sha256": cal.measurement_sha256,
                    "procedure_sha256": cal.procedure_sha256,
                    "modeling_delay_s": float(cal.modeling_delay_s),
                }
            )
            f.create_dataset("procedure", data=cal.procedure_text, dtype=string)
            f.create_dataset("inputs", data=cal.inputs, dtype=string)
            f.create_dataset("drivers", data=cal.drivers, dtype=string)
            f.create_dataset("output_channels", data=np.asarray(cal.output_channels, np.int64))
            f.create_dataset("fir", data=cal.fir)
            v = f.create_dataset("virtualizer", data=cal.virtualizer)
            v.attrs["delay_samples"] = cal.virtualizer_delay_samples
            if cal.area is not None:
                area = f.create_group("area")
                area.attrs["half_size"] = np.asarray(cal.area.half_size, float)
                area.create_dataset("fir", data=cal.area.fir)
                area.create_dataset("centres_m", data=cal.area.centres_m)
                area.create_dataset("yaw_deg", data=cal.area.yaw_deg)
            pred = f.create_group("predicted")
            for name, arr in cal.predicted.items():
                ds = pred.create_dataset(name, data=arr)
                ds.attrs.update(cal.predicted_attrs.get(name, {}))

    if path.exists():
        raise FileExistsError(errno.EEXIST, "exists", str(path))
    # Whole or nothing: a process killed while writing leaves no half file under the name.
    write_atomic(path, write, replace=False)
    cal.path = path
    return path


def read_calibration(path: str | Path) -> Calibration:
    """Read a calibration file, checking its format and version.

    Raises
    ------
    FileFormatError
        Not HDF5, not a calib calibration, a newer version, a missing dataset or
        inconsistent shapes; the message names the file.
    """
    path = Path(path)
    with open_checked(path, FORMAT) as f:

        def attr(name: str) -> object:
            if name not in f.attrs:
                raise FileFormatError(f"{path}: missing attribute {name!r} (not a complete calib calibration file)")
            return f.attrs[name]

        def dataset(name: str) -> h5py.Dataset:
            obj = f.get(name)
            if not isinstance(obj, h5py.Dataset):
                raise FileFormatError(f"{path}: missing /{name} (not a complete calib calibration file)")
            return obj

        predicted: dict[str, np.ndarray] = {}
        predicted_attrs: dict[str, dict[str, object]] = {}

        def collect(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                predicted[name] = obj[()]
                if obj.attrs:
                    predicted_attrs[name] = dict(obj.attrs)

        try:
            # Inside the try: even asking whether a link exists reads the root group's B-tree, which a
            # damaged file can fail (RuntimeError "incorrect B-tree node type").
            if "predicted" in f:
                try:
                    f["predicted"].visititems(collect)
                except (RuntimeError, KeyError, OSError) as exc:  # a damaged object header or heap
                    raise FileFormatError(f"{path}: /predicted: unreadable ({str(exc).splitlines()[0]})") from None
            area = None
            if "area" in f:  # files without a listening area (all older ones) have none
                area = AreaBank(dataset("area/fir")[()], dataset("area/centres_m")[()], dataset("area/yaw_deg")[()],
                                tuple(f["area"].attrs.get("half_size", (-1.0, -1.0, -1.0))))
            return Calibration(
                serial=str(attr("serial")),
                product_id=str(attr("product_id")),
                # ignore: HDF5 attribute values (numpy scalars); int() and float() raise on anything else
                sample_rate=int(attr("sample_rate")),  # type: ignore[call-overload]
                drivers=list(dataset("drivers").asstr()[()]),
                output_channels=[int(c) for c in dataset("output_channels")[()]],
                fir=dataset("fir")[()],
                virtualizer=dataset("virtualizer")[()],
                virtualizer_delay_samples=int(dataset("virtualizer").attrs.get("delay_samples", 0)),
                modeling_delay_s=float(attr("modeling_delay_s")),  # type: ignore[arg-type]  # as sample_rate
                measurement_sha256=str(attr("measurement_sha256")),
                procedure_sha256=str(attr("procedure_sha256")),
                procedure_text=dataset("procedure").asstr()[()],
                predicted=predicted,
                predicted_attrs=predicted_attrs,
                inputs=list(dataset("inputs").asstr()[()]),
                created_utc=str(attr("created_utc")),
                software=str(attr("software")),
                path=path,
                area=area,
            )
        except FileFormatError as exc:
            if str(exc).startswith(f"{path}: "):
                raise
            raise FileFormatError(f"{path}: {exc}") from None
        except (TypeError, ValueError, OverflowError, OSError, RuntimeError, KeyError) as exc:
            # An attribute of the wrong type (int("x"), int(inf)), a damaged chunk or B-tree, a dataset of an
            # unexpected kind.
            raise FileFormatError(f"{path}: unreadable content ({' '.join(str(exc).split())[:160]})") from None
