"""Chain of custody between verification, calibration and measurement files.

Chain of custody: a verification names, by SHA-256, the calibration and the characterize
measurement it was made with, by paths relative to the archive root.

The archive root is the folder given as ``--out``: a verification lives at
``<root>/<serial>/verify-<utc>.h5``, so the root is two folders up and a
moved (or copied) archive keeps every link. Attributes written into the
verification file when it is created:

``calibration_path``, ``characterize_path``
    POSIX paths relative to the root.
``calibration_sha256``, ``characterize_sha256``
    The files' SHA-256 at verification time.
``calibration_serial``
    The serial the calibration was fitted for (differs from ``serial`` only
    in a cross-unit verification).
``custody_seal``
    SHA-256 of the identity attributes above plus ``serial``, ``stage`` and
    ``procedure_sha256``: editing any of them (a serial changed by hand)
    breaks the seal.

:func:`check_custody` follows the chain and refuses, in one line naming the
file and the attribute, anything that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from calib.errors import FileFormatError
from calib.serial import EXPECTED, is_serial
from calib.store.calibration import file_sha256

SEALED = ("serial", "stage", "procedure_sha256", "calibration_serial", "calibration_path", "calibration_sha256",
          "characterize_path", "characterize_sha256")
LINKS = ("calibration", "characterize")


def find_by_sha256(folder: Path, pattern: str, sha256: str) -> Path | None:
    """Return the newest file in ``folder`` matching ``pattern`` whose SHA-256 is ``sha256``."""
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob(pattern), reverse=True):
        if path.is_file() and file_sha256(path) == sha256:
            return path
    return None


def relative_to_root(path: Path, root: Path) -> str:
    """``path`` relative to the archive ``root`` as a POSIX string (``..`` where it lies outside)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()


def seal(attrs: Mapping[str, object]) -> str:
    """SHA-256 of the sealed identity attributes (canonical JSON)."""
    values = {k: _text(attrs.get(k)) for k in SEALED}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def custody_attrs(*, serial: str, procedure_sha256: str, calibration: Path, calibration_serial: str,
                  characterize: Path, root: Path) -> dict[str, str]:
    """Return the custody attributes of a new verification archived under ``root``."""
    attrs: dict[str, str] = {
        "serial": serial,
        "stage": "verify",
        "procedure_sha256": procedure_sha256,
        "calibration_serial": calibration_serial,
        "calibration_path": relative_to_root(calibration, root),
        "calibration_sha256": file_sha256(calibration),
        "characterize_path": relative_to_root(characterize, root),
        "characterize_sha256": file_sha256(characterize),
    }
    attrs["custody_seal"] = seal(attrs)
    del attrs["serial"], attrs["stage"], attrs["procedure_sha256"]  # the measurement writer sets those
    return attrs


@dataclass(frozen=True)
class Chain:
    """The files a verification was made with, as found and checked."""

    verification: Path
    calibration: Path
    characterize: Path


def archive_root(verify_path: Path) -> Path:
    """Return the archive root of a verification file (``<root>/<serial>/verify-*.h5``)."""
    return Path(verify_path).resolve().parent.parent


def check_custody(verify_path: str | Path, attrs: dict[str, object]) -> Chain:
    """Follow and check the chain of a verification whose root attributes are ``attrs``.

    Raises
    ------
    FileFormatError
        An attribute missing (a verification made before the chain existed),
        the seal broken (an identity attribute edited), the file not in its
        serial's folder, or a linked file missing or with another SHA-256 (a
        swapped calibration or measurement). One line naming file and attribute.
    """
    verify_path = Path(verify_path)
    for name in (*SEALED, "custody_seal"):
        if name not in attrs:
            raise FileFormatError(
                f"{verify_path}: {name}: expected the chain-of-custody attribute of a verification, got none "
                "(verify the unit again)"
            )
    if _text(attrs["custody_seal"]) != seal(attrs):
        raise FileFormatError(
            f"{verify_path}: custody_seal: expected the seal of serial, stage, procedure and linked files, "
            "got a mismatch (an attribute was edited)"
        )
    serial = _text(attrs["serial"])
    folder = verify_path.resolve().parent.name
    if folder != serial:
        raise FileFormatError(
            f"{verify_path}: serial: expected {folder!r} (the folder it is archived in), got {serial!r}"
        )
    if not is_serial(serial):  # it names the PDF
        raise FileFormatError(f"{verify_path}: serial: expected {EXPECTED}, got {serial!r}")
    root = archive_root(verify_path)
    found = {}
    for link in LINKS:
        rel = _text(attrs[f"{link}_path"])
        want = _text(attrs[f"{link}_sha256"])
        path = root / rel
        if not path.is_file():
            raise FileFormatError(f"{verify_path}: {link}_path: {path} does not exist (archive incomplete?)")
        got = file_sha256(path)
        if got != want:
            raise FileFormatError(
                f"{verify_path}: {link}_sha256: expected {want[:16]}... for {path}, got {got[:16]}... "
                f"(the {link} file was replaced or edited)"
            )
        found[link] = path
    return Chain(verify_path, found["calibration"], found["characterize"])


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
