"""Paths inside a results archive: the same relative path on every station that shares it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from calib.errors import CalibError


class ArchivePathError(CalibError, ValueError):
    """A file to record lies outside the archive root."""


def archive_path(path: str | Path, root: str | Path) -> str:
    """``path`` relative to the archive ``root``, with ``/`` separators (the same on every station).

    Raises
    ------
    ArchivePathError
        If ``path`` is not inside ``root``.
    """
    full, base = Path(path).resolve(), Path(root).resolve()
    try:
        rel = full.relative_to(base)
    except ValueError:
        raise ArchivePathError(f"{path}: outside the archive root {base} (set --archive-root to a folder "
                               "that holds measurements/ and reports/)") from None
    return PurePosixPath(*rel.parts).as_posix()
