"""Create files whole or not at all, with the user's normal permissions.

A file is written under a hidden temporary name in its destination folder
(``.<name>.<pid>.tmp``), flushed to disk, then put in place in one step: a
process killed at any moment leaves either no file or the whole file under
the real name. The temporary file is created with ``os.open(..., 0o666)``, so
the umask applies exactly as for any file the user creates (``mkstemp``
would make it 0600, and the rename keeps that mode). Temporary files of
processes that no longer run (killed ones) are removed on the next write to
the same destination.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def temp_name(path: Path, pid: int | None = None) -> Path:
    """Return the hidden temporary name of ``path`` for process ``pid`` (this process by default)."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files of ``path`` left by processes that no longer run; returns them."""
    return _remove_stale(path.parent.glob(f".{path.name}.*.tmp"))


def remove_stale_temporaries_in(folder: Path) -> list[Path]:
    """Remove every temporary file in ``folder`` left by a process that no longer runs (a killed writer)."""
    return _remove_stale(folder.glob(".*.tmp")) if folder.is_dir() else []


def _remove_stale(candidates: Iterable[Path]) -> list[Path]:
    removed = []
    for tmp in candidates:
        pid_text = tmp.name[:-len(".tmp")].rsplit(".", 1)[-1]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    tmp = temp_name(path)
    tmp.unlink(missing_ok=True)  # our own pid: a leftover of a reused pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    os.close(fd)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[Path], None], *, replace: bool) -> Path:
    """Write a file through ``write(tmp_path)`` and put it at ``path`` in one step.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    write : callable
        Writes the whole content to the path it is given.
    replace : bool
        Replace an existing ``path`` (derived data such as reports) or refuse
        with :class:`FileExistsError` (measured and fitted data is never
        overwritten; the check and the link are one atomic step).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    with _temporary(path) as tmp:
        write(tmp)
        _sync(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path exists: never overwrite
            finally:
                tmp.unlink(missing_ok=True)
    return path
