"""LinearX LT360 precision turntable over a serial port (ASCII) -- UNVERIFIED protocol.

**Unverified.** LinearX's RS-232 programming manual (2006) exists, but its
command strings could not be found in public sources this project could
read; the strings below are a guess shaped by the DLL manual. Opening the
driver, a station file that names it and ``calib devices`` say so
(:data:`~calib.rig.turntables.LT360_UNVERIFIED`, a
:class:`~calib.rig.turntables.UnverifiedProtocolWarning`).

Protocol
--------
What LinearX documents (LT360 DLL/RS-232 programming manuals, 2006): a
command is an ASCII string ended by CR (or NUL); case does not matter;
"Get Position" returns ``'±nnn.n'`` degrees (0..360 or ±180 depending on
the display-polarity setting); "Get Moving" returns ``'CW'``, ``'CCW'`` or
``'NO'``; errors are reported as ``Error - <n> : <text>``. The exact
RS-232 spellings of the commands were not available to this project; the
strings this driver sends are the constants below and are the only thing to
change if a table answers differently:

=====================  ===============================  ===================
constant               sent                             reply
=====================  ===============================  ===================
:data:`CMD_GOTO`       ``GOTO CCW 90.0`` / ``GOTO CW``  none
:data:`CMD_POSITION`   ``GET POSITION``                 ``+090.0``
:data:`CMD_MOVING`     ``GET MOVING``                   ``CW``/``CCW``/``NO``
=====================  ===============================  ===================

Replies end with CR (:data:`TERMINATOR`). A reply starting with ``ERR`` is
a table error. The "go to" carries the direction of travel: the driver
always moves towards the target without crossing the end of the table's
range (``range_start_deg``), so the cable wrap never winds past the cut.
The LT360 can count clockwise or counter-clockwise (display polarity);
``clockwise_positive=True`` converts a clockwise-counting table to calib's
counter-clockwise angles. The port is opened with
:func:`serial.serial_for_url`, so device paths, pty paths and URLs such as
``rfc2217://host:port`` all work.
"""

from __future__ import annotations

import re
import warnings

import serial
from serial.tools import list_ports

from calib.errors import DeviceNotFoundError, TurntableError, UnverifiedProtocolWarning
from calib.procedure.station_file import LT360_UNVERIFIED
from calib.rig.turntables.polled import PolledTurntable, wrap_angle_deg

DEFAULT_BAUDRATE = 9600
TERMINATOR = b"\r"
CMD_GOTO = "GOTO {direction} {angle_deg:.1f}"
CMD_POSITION = "GET POSITION"
CMD_MOVING = "GET MOVING"
MOVING_REPLIES = {"CW": True, "CCW": True, "NO": False}
_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$")


class Lt360Turntable(PolledTurntable):
    """LinearX LT360 on a serial port.

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, ``COM3``, a pty) or pyserial URL.
    baudrate : int
        Must match the table's RS-232 setting.
    timeout_s : float
        Time to wait for each reply line, seconds.
    tolerance_deg : float
        Largest accepted read-back error after a move.
    poll_s : float
        Interval between moving-state polls (LinearX suggests ~1 s).
    clockwise_positive : bool
        True if the table counts degrees clockwise seen from above.
    settle_s, range_start_deg
        See :class:`PolledTurntable`.

    Raises
    ------
    DeviceNotFoundError
        If the port cannot be opened (the message lists the serial ports found).
    """

    name = "LT360"

    def __init__(
        self,
        port: str,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout_s: float = 1.0,
        tolerance_deg: float = 0.5,
        poll_s: float = 0.5,
        clockwise_positive: bool = False,
        settle_s: float = 1.0,
        range_start_deg: float = -180.0,
    ) -> None:
        super().__init__(
            timeout_s=timeout_s,
            tolerance_deg=tolerance_deg,
            poll_s=poll_s,
            settle_s=settle_s,
            range_start_deg=range_start_deg,
        )
        warnings.warn(UnverifiedProtocolWarning(LT360_UNVERIFIED), stacklevel=2)
        self.port = port
        self.name = f"LT360 on {port}"
        self._sign = -1.0 if clockwise_positive else 1.0
        try:
            self._serial = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s)
        except (serial.SerialException, ValueError) as exc:
            found = ", ".join(p.device for p in list_ports.comports()) or "none"
            raise DeviceNotFoundError(
                f"cannot open LT360 serial port {port!r} ({exc}); ports found: {found}"
            ) from exc

    # --- wire level -------------------------------------------------------
    def _send(self, command: str) -> None:
        try:
            self._serial.write(command.encode("ascii") + TERMINATOR)
            self._serial.flush()
        except serial.SerialException as exc:
            raise TurntableError(f"{self.name}: cannot send {command!r}: {exc}") from exc

    def _query(self, command: str) -> str:
        """Send a Get command and return its reply line, stripped."""
        try:
            self._serial.reset_input_buffer()  # stray bytes must not pass for the answer
        except serial.SerialException as exc:
            raise TurntableError(f"{self.name}: port error: {exc}") from exc
        self._send(command)
        try:
            raw = self._serial.read_until(TERMINATOR)
        except serial.SerialException as exc:
            raise TurntableError(f"{self.name}: cannot read the reply to {command!r}: {exc}") from exc
        if not raw.endswith(TERMINATOR):
            raise TurntableError(
                f"no reply from {self.name} to {command!r} within the {self.timeout_s:g} s timeout"
                + (f" (partial {raw!r})" if raw else "")
            )
        reply = raw[:-1].decode("ascii", errors="replace").strip().strip("\x00")
        if reply.upper().startswith("ERR"):
            raise TurntableError(f"{self.name} answered {command!r} with {reply!r}")
        return reply

    # --- angles in the table's frame -------------------------------------
    def _to_table(self, angle_deg: float) -> float:
        return wrap_angle_deg(self._sign * angle_deg, self.range_start_deg)

    def _table_position(self) -> float:
        reply = self._query(CMD_POSITION)
        if not _NUMBER.match(reply):
            raise TurntableError(
                f"{self.name} sent unexpected reply {reply!r} to {CMD_POSITION!r}; "
                "expected a position like '+090.0'"
            )
        return float(reply)

    # --- PolledTurntable ---------------------------------------------------
    def _start_move(self, target_deg: float) -> None:
        target = self._to_table(target_deg)
        current = wrap_angle_deg(self._table_position(), self.range_start_deg)
        # travel inside the range: increasing table angle is CCW on a CCW-counting table
        increasing = target >= current
        counter_clockwise = increasing == (self._sign > 0)
        direction = "CCW" if counter_clockwise else "CW"
        self._send(CMD_GOTO.format(direction=direction, angle_deg=target))

    def _is_moving(self) -> bool:
        reply = self._query(CMD_MOVING).upper()
        if reply not in MOVING_REPLIES:
            raise TurntableError(
                f"{self.name} sent unexpected reply {reply!r} to {CMD_MOVING!r}; "
                f"expected one of {', '.join(MOVING_REPLIES)}"
            )
        return MOVING_REPLIES[reply]

    def angle_deg(self) -> float:
        """Return the table's current angle in calib's convention, normalised into its range."""
        return self.normalise(self._sign * self._table_position())

    def close(self) -> None:
        """Close the serial port."""
        self._serial.close()
