"""What ``--resume`` picks up, and the per-unit lock.

A file found in a unit's folder is reused only if it opens, validates (the
checked readers of :mod:`calib.store`) and is complete; an incomplete but
valid measurement is continued. Anything else is *set aside*: renamed to
``<name>.set-aside-<utc>`` (never deleted; no longer matched by the
``<stage>-*.h5`` patterns) with one line on stderr saying so.

One run per unit: :func:`unit_lock` holds an exclusive ``flock`` on
``<out>/<serial>/.lock`` for the whole command; a second run of the same
serial is refused at once, in one line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from calib.errors import CalibError, FileFormatError
from calib.notes import note
from calib.store.atomic import remove_stale_temporaries_in

_HELD: dict[Path, int] = {}
"""Lock files this process holds, with their descriptors (nested commands re-enter)."""


@contextlib.contextmanager
def unit_lock(out_dir: str | Path, serial: str) -> Iterator[Path]:
    """Hold the unit's lock while the block runs; refuse if another process holds it.

    Raises
    ------
    CalibError
        Another calib process is working on this unit.
    """
    import fcntl

    folder = Path(out_dir) / serial
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / ".lock").resolve()
    if path in _HELD:
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CalibError(
            f"{path}: unit {serial} is being measured by another calib process (pid {holder}); "
            "wait for it to end (then use --resume if it was interrupted)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = fd
    try:
        yield path
    finally:
        del _HELD[path]
        os.close(fd)  # closing releases the flock; the file stays (removing it would race)


def set_aside(path: Path, reason: str) -> Path:
    """Rename ``path`` out of the way (never delete it) and say so in one line (:func:`calib.notes.note`)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.set-aside-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.set-aside-{stamp}-{n}")
        n += 1
    os.rename(path, target)
    note(f"set aside {path} as {target.name}: {reason}")
    return target


def _reason(exc: FileFormatError, path: Path) -> str:
    text = str(exc)
    return text[len(f"{path}: "):] if text.startswith(f"{path}: ") else text


@dataclass
class Found:
    """What a unit folder holds for one stage after screening."""

    complete: list  # Measurement or Calibration objects, newest first
    incomplete: list


def screen_measurements(out_dir: str | Path, serial: str, stage: str) -> Found:
    """Read every ``<stage>-*.h5`` of the unit, newest first; set aside the ones that do not validate."""
    from calib.store.measurement import read_measurement

    remove_stale_temporaries_in(Path(out_dir) / serial)
    found = Found([], [])
    for path in sorted((Path(out_dir) / serial).glob(f"{stage}-*.h5"), reverse=True):
        try:
            m = read_measurement(path, stage=stage)
        except FileFormatError as exc:
            set_aside(path, _reason(exc, path))
            continue
        if m.serial != serial:
            set_aside(path, f"serial: expected {serial!r}, got {m.serial!r}")
            continue
        (found.complete if m.complete else found.incomplete).append(m)
    return found


def screen_calibrations(folder: Path, measurement_sha256: str):
    """Return the newest valid calibration in ``folder`` fitted from that measurement; invalid ones are set aside."""
    from calib.store.calibration import read_calibration

    for path in sorted(folder.glob("calibration-*.h5"), reverse=True):
        try:
            cal = read_calibration(path)
        except FileFormatError as exc:
            set_aside(path, _reason(exc, path))
            continue
        if cal.measurement_sha256 == measurement_sha256:
            return cal
    return None
