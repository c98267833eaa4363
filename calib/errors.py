"""Exceptions of calib.

One base, :class:`CalibError`; each subclass also derives the builtin that
fits it, so ``except ValueError`` still works for callers that do not know
calib (soundfile's style). Messages are one line: they quote the bad value
and, where there is a fixed set, list the valid options. The CLI prints the
message alone and exits with code 2.
"""

from __future__ import annotations


class CalibError(Exception):
    """Base of every error calib raises on purpose."""


class ProcedureError(CalibError, ValueError):
    """A procedure (or station) file is missing, unreadable or invalid."""


class FileFormatError(CalibError, ValueError):
    """A measurement, calibration, WAV, SOFA or mic-calibration file is not what it must be."""


class RigError(CalibError, RuntimeError):
    """The rig (audio interface, turntable, positioner) failed or is misconfigured."""


class CaptureGlitchError(RigError):
    """One capture was spoiled (xrun, a stalled stream): retry the step; the device itself is fine."""


class DeviceNotFoundError(RigError, LookupError):
    """A named audio device or port does not exist."""


class TurntableError(RigError):
    """A turntable did not answer, answered wrongly, or did not arrive."""


class MeasurementError(CalibError, RuntimeError):
    """A measurement step stayed bad after its retries (clipping, low SNR, dropout)."""


class FitError(CalibError, RuntimeError):
    """Filters could not be fitted from the given measurement."""


class UnverifiedProtocolWarning(UserWarning):
    """A turntable driver whose wire protocol was not checked against the vendor's documentation or a table."""
