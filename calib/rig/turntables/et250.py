"""Outline ET250-3D turntable over UDP (the vendor's network protocol).

Protocol
--------
The table listens on UDP port :data:`DEFAULT_PORT` (6668). Every request is
4 bytes::

    | command (u8) | argument (u16 big-endian, 0.1 deg) | checksum = XOR of the 3 bytes |

=====================  ====  ======================================  ============
command                byte  argument                                reply
=====================  ====  ======================================  ============
:data:`CMD_FORWARD`    1     rotate forward by the argument          acknowledge
:data:`CMD_BACKWARD`   2     rotate backward by the argument         acknowledge
:data:`CMD_STOP`       3     0                                       acknowledge
:data:`CMD_STATUS`     4     0                                       status
:data:`CMD_SET_ZERO`   5     0 (the current position becomes 0)     acknowledge
=====================  ====  ======================================  ============

Acknowledge: 2 bytes, ``33 00`` accepted or ``66 ..`` refused. Status: 7
bytes::

    | status (u8): 4 moving, 5 stopped | angle (u32 BE, 0.1 deg, 0..3599) |
    | direction (u8): 1 counter-clockwise, 2 clockwise | checksum = XOR of the 6 bytes |

Moves are relative and the table moves in 0.5 deg steps (:data:`STEP_TENTHS`).

Direction and angles
--------------------
The table's angle counts in its *forward* direction. Whether forward is
clockwise seen from above is a station setting (``forward_clockwise``); it
is checked when the driver opens: a 0.5 deg forward move must report the
direction the station claims and advance the angle by 0.5 deg, and a 0.5
deg backward move restores the position. calib's angle (counter-clockwise
positive, :mod:`calib.rig.turntables`) is ``+reading`` for a
counter-clockwise forward, ``-reading`` for a clockwise one, wrapped into
the table's range.

Moves
-----
:meth:`Et250Turntable.move_to` reads the angle, commands the relative move
to the target *inside* the table's range (so the cable wrap never winds
past ``range_start_deg``), rounded to 0.5 deg steps, and polls the status
until the table reports "stopped" within ``tolerance_deg`` of the target
(while it turns, its direction byte must be the commanded one). A
table that stops elsewhere (a lost or duplicated datagram, a slipped move)
gets a correcting move from the angle it reports, up to ``retries`` times.
A table still moving at the timeout is sent "stop" and reported.

Lost datagrams: every request waits ``timeout_s`` for its reply and is sent
again up to ``retries`` times. A relative move is not idempotent, so a move
whose reply was lost is first checked with a status read: if the table
moves (or its angle changed), the move was taken and is not sent again.
Datagrams left over from a timed-out attempt (a late or duplicated reply)
are drained before each request and replies of the wrong length are
ignored, so a stale reply is never taken for the answer to the next
request.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from calib.errors import TurntableError
from calib.rig.turntables.polled import PolledTurntable, angle_error_deg

#: UDP port of the table.
DEFAULT_PORT = 6668
CMD_FORWARD = 1
CMD_BACKWARD = 2
CMD_STOP = 3
CMD_STATUS = 4
CMD_SET_ZERO = 5
COMMAND_NAMES = {
    CMD_FORWARD: "rotate forward",
    CMD_BACKWARD: "rotate backward",
    CMD_STOP: "stop",
    CMD_STATUS: "read status",
    CMD_SET_ZERO: "set zero",
}
ACCEPTED = 0x33
REFUSED = 0x66
STATUS_MOVING = 4
STATUS_STOPPED = 5
DIRECTION_CCW = 1
DIRECTION_CW = 2
_DIRECTION_NAMES = {DIRECTION_CCW: "counter-clockwise", DIRECTION_CW: "clockwise"}
ACK_SIZE = 2
STATUS_SIZE = 7
#: The table moves in 0.5 deg steps (tenths of a degree).
STEP_TENTHS = 5
#: Angles are 0.1 deg, 0..3599.
FULL_TURN_TENTHS = 3600


def checksum(data: bytes) -> int:
    """XOR of all bytes of ``data``."""
    result = 0
    for byte in data:
        result ^= byte
    return result


def encode_request(command: int, argument: int = 0) -> bytes:
    """Return the 4-byte request: command, argument (u16 big-endian, 0.1 deg), XOR checksum."""
    if command not in COMMAND_NAMES:
        valid = ", ".join(f"{c} ({n})" for c, n in COMMAND_NAMES.items())
        raise TurntableError(f"unknown ET250 command {command!r}; valid: {valid}")
    if not 0 <= argument <= 0xFFFF:
        raise TurntableError(f"ET250 argument {argument!r} does not fit a u16 (0.1 deg units)")
    body = struct.pack(">BH", command, argument)
    return body + bytes([checksum(body)])


@dataclass(frozen=True)
class Status:
    """A decoded status reply."""

    moving: bool
    angle_tenths: int
    direction: int  # DIRECTION_CCW or DIRECTION_CW


def decode_status(packet: bytes) -> Status:
    """Decode a 7-byte status reply after checking its size, checksum and fields.

    Raises
    ------
    TurntableError
        On a wrong size, checksum, status, angle or direction byte.
    """
    if len(packet) != STATUS_SIZE:
        raise TurntableError(f"ET250 status reply of {len(packet)} bytes ({packet.hex()}), expected {STATUS_SIZE}")
    if packet[6] != checksum(packet[:6]):
        raise TurntableError(
            f"ET250 status reply {packet.hex()} has a bad checksum 0x{packet[6]:02x}, "
            f"expected 0x{checksum(packet[:6]):02x}"
        )
    status, angle, direction = struct.unpack(">BIB", packet[:6])
    if status not in (STATUS_MOVING, STATUS_STOPPED):
        raise TurntableError(f"ET250 status reply {packet.hex()}: status {status}, expected 4 (moving) or 5 (stopped)")
    if angle >= FULL_TURN_TENTHS:
        raise TurntableError(f"ET250 status reply {packet.hex()}: angle {angle}, expected 0..3599 (0.1 deg)")
    if direction not in (DIRECTION_CCW, DIRECTION_CW):
        raise TurntableError(f"ET250 status reply {packet.hex()}: direction {direction}, expected 1 (CCW) or 2 (CW)")
    return Status(status == STATUS_MOVING, angle, direction)


class Et250Turntable(PolledTurntable):
    """Outline ET250-3D on a UDP network address.

    Parameters
    ----------
    host : str
        Host name or IP address of the table.
    forward_clockwise : bool
        True if the table's forward rotation is clockwise seen from above
        (checked on opening unless ``check_direction`` is False).
    port : int
        Its UDP port.
    timeout_s : float
        Time to wait for each reply, seconds.
    tolerance_deg : float
        Largest accepted read-back error after a move (the table moves in
        0.5 deg steps, so at least 0.25 deg).
    poll_s : float
        Interval between status polls.
    retries : int
        Extra attempts after a request got no reply (total ``1 + retries``);
        also the number of correcting moves for a table that stops off target.
    settle_s, range_start_deg
        See :class:`PolledTurntable`.
    check_direction : bool
        Run the start-up direction check (a 0.5 deg move there and back).

    Raises
    ------
    TurntableError
        If the socket cannot be opened, the table does not answer, refuses
        the check move or turns the other way than ``forward_clockwise`` says.
    """

    name = "ET250"

    def __init__(
        self,
        host: str,
        forward_clockwise: bool,
        port: int = DEFAULT_PORT,
        timeout_s: float = 0.5,
        tolerance_deg: float = 0.3,
        poll_s: float = 0.2,
        retries: int = 3,
        settle_s: float = 1.0,
        range_start_deg: float = -180.0,
        check_direction: bool = True,
    ) -> None:
        super().__init__(
            timeout_s=timeout_s, tolerance_deg=tolerance_deg, poll_s=poll_s, settle_s=settle_s,
            range_start_deg=range_start_deg,
        )  # fmt: skip
        if retries < 0:
            raise TurntableError(f"retries must be >= 0, got {retries!r}")
        if tolerance_deg < STEP_TENTHS / 20.0:
            raise TurntableError(
                f"tolerance_deg must be >= 0.25 (the table moves in 0.5 deg steps), got {tolerance_deg!r}"
            )
        self.address = (host, int(port))
        self.name = f"ET250 at {host}:{port}"
        self.forward_clockwise = bool(forward_clockwise)
        self.retries = int(retries)
        try:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # connect() makes the kernel drop datagrams from anyone but the table
            self._sock.connect(self.address)
        except OSError as exc:
            raise TurntableError(f"cannot open UDP socket to ET250 at {host}:{port}: {exc}") from exc
        if check_direction:
            try:
                self.check_direction()
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------------ wire
    def _drain(self) -> None:
        """Discard datagrams that arrived after an earlier attempt timed out (late or duplicated replies)."""
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(64)
        except (BlockingIOError, ConnectionRefusedError):
            pass
        finally:
            self._sock.settimeout(self.timeout_s)

    def _exchange(self, request: bytes, size: int) -> bytes | None:
        """Send ``request`` once; the first reply of ``size`` bytes within ``timeout_s``, or None."""
        self._drain()
        deadline = time.monotonic() + self.timeout_s
        try:
            self._sock.send(request)
            while (left := deadline - time.monotonic()) > 0:
                self._sock.settimeout(left)
                packet = self._sock.recv(64)
                if len(packet) == size:
                    return packet
        except (TimeoutError, ConnectionRefusedError):  # lost datagram, or nobody listening (ICMP)
            return None
        except OSError as exc:
            raise TurntableError(f"{self.name}: network error: {exc}") from exc
        return None

    def _no_reply(self, command: int, argument: int) -> TurntableError:
        return TurntableError(
            f"no reply from {self.name} to {COMMAND_NAMES[command]} {argument / 10:g} deg after "
            f"{1 + self.retries} attempts ({self.timeout_s:g} s timeout each)"
        )

    def status(self) -> Status:
        """Read the table's status (retried on silence)."""
        request = encode_request(CMD_STATUS)
        for _ in range(1 + self.retries):
            packet = self._exchange(request, STATUS_SIZE)
            if packet is not None:
                return decode_status(packet)
        raise self._no_reply(CMD_STATUS, 0)

    def _command(self, command: int, argument: int = 0, before: Status | None = None) -> None:
        """Send a command answered by accepted/refused; ``before``: the status before a move (see module doc)."""
        request = encode_request(command, argument)
        for attempt in range(1 + self.retries):
            if attempt and before is not None:
                now = self.status()
                if now.moving or now.angle_tenths != before.angle_tenths:
                    return  # the move arrived, its reply did not
            packet = self._exchange(request, ACK_SIZE)
            if packet is None:
                continue
            if packet[0] == ACCEPTED:
                return
            what = f"{COMMAND_NAMES[command]} {argument / 10:g} deg" if command in (CMD_FORWARD, CMD_BACKWARD) else (
                COMMAND_NAMES[command])
            if packet[0] == REFUSED:
                raise TurntableError(f"{self.name} refused {what} (reply {packet.hex()})")
            raise TurntableError(f"{self.name} answered {what} with {packet.hex()}, expected 3300 or 66..")
        raise self._no_reply(command, argument)

    # ---------------------------------------------------------------- angles
    def _to_calib_deg(self, tenths: int) -> float:
        sign = -1.0 if self.forward_clockwise else 1.0
        return self.normalise(sign * tenths / 10.0)

    def angle_deg(self) -> float:
        """Return the table's current angle in calib's convention, normalised into its range."""
        return self._to_calib_deg(self.status().angle_tenths)

    def _is_moving(self) -> bool:
        return self.status().moving

    def _start_move(self, target_deg: float) -> int | None:
        """Command the relative move from the angle read now to ``target_deg``, in 0.5 deg steps.

        Returns the direction byte the table must report while it turns (None: no move needed).
        """
        before = self.status()
        delta = target_deg - self._to_calib_deg(before.angle_tenths)  # both in range: never across the cut
        steps = round(delta * 10.0 / STEP_TENTHS)
        if steps == 0:
            return None
        ccw = steps > 0
        forward = ccw != self.forward_clockwise
        self._command(CMD_FORWARD if forward else CMD_BACKWARD, abs(steps) * STEP_TENTHS, before=before)
        return DIRECTION_CCW if ccw else DIRECTION_CW

    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        """Rotate to ``angle_deg`` and return the angle read back once the table stopped there.

        Raises
        ------
        TurntableError
            A refused move, no reply, a table turning the other way than
            commanded (it is sent "stop"), a table still moving at ``timeout_s``
            (it is sent "stop"; the message names the target and the last
            angle) or one that stopped off target after ``retries``
            correcting moves.
        """
        target = self.normalise(angle_deg)
        deadline = time.monotonic() + timeout_s
        for _ in range(1 + self.retries):
            direction = self._start_move(target)
            start = time.monotonic()
            while True:
                status = self.status()
                reached = self._to_calib_deg(status.angle_tenths)
                if status.moving and direction is not None and status.direction != direction:
                    self._command(CMD_STOP)
                    raise TurntableError(
                        f"{self.name} turns {_DIRECTION_NAMES[status.direction]} on a move to {target:.1f} deg that "
                        f"should turn {_DIRECTION_NAMES[direction]} (stop sent); check turntable.forward_clockwise"
                    )
                error = angle_error_deg(reached, target)
                if not status.moving and (
                    abs(error) <= self.tolerance_deg or time.monotonic() - start >= self.settle_s
                ):
                    break
                now = time.monotonic()
                if now >= deadline:
                    self._command(CMD_STOP)
                    raise TurntableError(
                        f"{self.name} did not reach the target {target:.1f} deg within {timeout_s:g} s "
                        f"(stop sent); last angle read {reached:.1f} deg"
                    )
                time.sleep(min(self.poll_s, deadline - now))
            if abs(error) <= self.tolerance_deg:
                return reached
        raise TurntableError(
            f"{self.name} stopped at {reached:.1f} deg, {error:+.1f} deg from the target {target:.1f} deg "
            f"(tolerance {self.tolerance_deg:g} deg) after {1 + self.retries} moves"
        )

    def set_zero(self) -> None:
        """Make the current position the table's 0."""
        self._command(CMD_SET_ZERO)

    def check_direction(self) -> None:
        """Start-up check of ``forward_clockwise``: 0.5 deg forward (status: direction, angle), then back.

        Raises
        ------
        TurntableError
            If the table reports the other direction, or did not advance by 0.5 deg.
        """
        before = self.status()
        self._command(CMD_FORWARD, STEP_TENTHS, before=before)
        after = self._wait_stopped()
        expected = DIRECTION_CW if self.forward_clockwise else DIRECTION_CCW
        if after.direction != expected:
            raise TurntableError(
                f"{self.name}: turntable.forward_clockwise = {str(self.forward_clockwise).lower()} in the station, "
                f"but a forward move turned {_DIRECTION_NAMES[after.direction]}; set forward_clockwise = "
                f"{str(not self.forward_clockwise).lower()}"
            )
        advanced = (after.angle_tenths - before.angle_tenths) % FULL_TURN_TENTHS
        if advanced != STEP_TENTHS:
            raise TurntableError(
                f"{self.name}: a 0.5 deg forward check move went from {before.angle_tenths / 10:g} to "
                f"{after.angle_tenths / 10:g} deg (table reading); expected +0.5 deg"
            )
        self._command(CMD_BACKWARD, STEP_TENTHS, before=after)
        self._wait_stopped()

    def _wait_stopped(self) -> Status:
        deadline = time.monotonic() + max(self.settle_s, 5.0)
        while (status := self.status()).moving:
            if time.monotonic() >= deadline:
                self._command(CMD_STOP)
                raise TurntableError(f"{self.name}: still moving after a 0.5 deg check move (stop sent)")
            time.sleep(self.poll_s)
        return status

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
