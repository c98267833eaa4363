"""Checks of command-line values made before anything is written.

The serial pattern of :mod:`calib.serial` as a click type, and checks that
output folders and files are what a command will write to. Each problem is
one :class:`~calib.errors.CalibError` line naming the option and what was
expected.
"""

from __future__ import annotations

from pathlib import Path

import click

from calib.errors import CalibError
from calib.serial import check_serial


class SerialType(click.ParamType):
    """A click type applying :func:`check_serial` while the command line is parsed."""

    name = "serial"

    def convert(self, value, param, ctx):
        """Return ``value`` if it is a safe serial, else raise a one-line CalibError naming the option."""
        # A CalibError (not click's usage error) so the line reads like every other: "--serial: expected ..."
        return check_serial(value, param.opts[0] if param is not None else "--serial")


SERIAL = SerialType()


def check_folder(path: str | Path, option: str) -> Path:
    """Return an output folder: it may not exist yet, but no part of it may be a file."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise CalibError(f"{option}: {part}: expected a folder, got an existing file")
    return path


def check_output_file(path: str | Path, option: str, *, may_exist: bool) -> Path:
    """Return an output file: not a folder, its folder not a file; an existing file only where ``may_exist``."""
    path = Path(path)
    if path.is_dir():
        raise CalibError(f"{option}: {path}: expected a file, got a folder")
    if path.exists() and not may_exist:
        raise CalibError(f"{option}: {path}: exists already; nothing was overwritten (choose a new name)")
    check_folder(path.parent, option)
    return path


def check_input_file(path: str | Path, what: str) -> Path:
    """Return an input file that must exist and be a file."""
    path = Path(path)
    if not path.exists():
        raise CalibError(f"{path}: no such file (expected a {what} file)")
    if not path.is_file():
        raise CalibError(f"{path}: expected a {what} file, got a folder")
    return path
