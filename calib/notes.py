"""Notes and warnings to the operator, from any layer.

The chain's stages do not print: what an operator should read (a file set
aside, a measurement resumed, a missing loopback) goes to the
``calib.notes`` logger. The command line shows notes as ``calib: note: ...``
and warnings as ``calib: warning: ...`` on stderr; a script that uses calib
as a library sees the warnings through Python's default logging and can
configure the logger to see the notes.
"""

from __future__ import annotations

import logging

LOGGER_NAME = "calib.notes"
_log = logging.getLogger(LOGGER_NAME)


def note(message: str) -> None:
    """Something the operator should know that needs no action (``calib: note:``)."""
    _log.info(message)


def warning(message: str) -> None:
    """Something the operator should act on or keep in mind (``calib: warning:``)."""
    _log.warning(message)
