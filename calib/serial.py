"""The one pattern a unit serial must match, in every command and every file.

A serial names a folder (``<out>/<serial>/``), a PDF (``<reports>/<serial>.pdf``)
and a results row, so it must be a plain file-name component: letters,
digits, ``_``, ``.`` and ``-``, starting with a letter or digit (never ``.``
or ``..``), at most :data:`SERIAL_MAX_LEN` characters.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from calib.errors import CalibError

SERIAL_MAX_LEN = 64
SERIAL_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{SERIAL_MAX_LEN - 1}}}")
EXPECTED = f"1-{SERIAL_MAX_LEN} letters, digits, '_', '.' or '-' starting with a letter or digit"


def is_serial(value: object) -> TypeGuard[str]:
    """Return True if ``value`` is a string matching :data:`SERIAL_PATTERN`."""
    return isinstance(value, str) and SERIAL_PATTERN.fullmatch(value) is not None


def check_serial(serial: object, where: str = "--serial") -> str:
    """Return ``serial`` if safe, else a one-line :class:`CalibError` ``<where>: expected ..., got ...``."""
    if not is_serial(serial):
        text = repr(serial)
        raise CalibError(f"{where}: expected {EXPECTED}, got {text if len(text) <= 80 else text[:77] + '...'}")
    return serial
