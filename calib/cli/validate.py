"""Checks of command-line values made before anything is written.

One serial pattern for every command (it names a folder, a PDF and a
results row, so it must be a plain file-name component), and checks that
output folders and files are what a command will write to. Each problem is
one :class:`~calib.errors.CalibError` line naming the option and what was
expected.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from calib.errors import CalibError

SERIAL_MAX_LEN = 64
SERIAL_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{SERIAL_MAX_LEN - 1}}}")
"""Letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit (so never ``.``/``..``)."""


def check_serial(serial: str, option: str = "--serial") -> str:
    """``serial`` if it is a safe unit serial, else a one-line CalibError naming ``option``."""
    if not isinstance(serial, str) or not SERIAL_PATTERN.fullmatch(serial):
        shown = serial if len(str(serial)) <= 80 else f"{str(serial)[:77]}..."
        raise CalibError(
            f"{option}: expected 1-{SERIAL_MAX_LEN} letters, digits, '_', '.' or '-' starting with a letter "
            f"or digit, got {shown!r}"
        )
    return serial


class SerialType(click.ParamType):
    """A click type applying :func:`check_serial` while the command line is parsed."""

    name = "serial"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        try:
            return check_serial(value, param.opts[0] if param is not None else "--serial")
        except CalibError as exc:
            self.fail(str(exc).split(": ", 1)[1], param, ctx)


SERIAL = SerialType()


def check_folder(path: str | Path, option: str) -> Path:
    """An output folder: it may not exist yet, but no part of it may be a file."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise CalibError(f"{option}: {part}: expected a folder, got an existing file")
    return path


def check_output_file(path: str | Path, option: str, *, may_exist: bool) -> Path:
    """An output file: not a folder, its folder not a file; an existing file only where ``may_exist``."""
    path = Path(path)
    if path.is_dir():
        raise CalibError(f"{option}: {path}: expected a file, got a folder")
    if path.exists() and not may_exist:
        raise CalibError(f"{option}: {path}: exists already; nothing was overwritten (choose a new name)")
    check_folder(path.parent, option)
    return path


def check_input_file(path: str | Path, what: str) -> Path:
    """An input file that must exist and be a file."""
    path = Path(path)
    if not path.exists():
        raise CalibError(f"{path}: no such {what} file")
    if not path.is_file():
        raise CalibError(f"{path}: expected a {what} file, got a folder")
    return path
