"""Outline ET250-3D turntable over UDP.

Protocol
--------
Outline's own ET250-3D network protocol could not be found in public
sources, so this driver speaks the binary protocol specified for calib
(below). It is small and fixed-size on purpose; if the real table's protocol
differs, only :func:`encode_request`, :func:`decode_reply` and the constants
change. Every datagram is 4 bytes, network byte order::

    request:  | command (u8) | argument (i16, 0.1 deg) | checksum (u8) |
    reply:    | status  (u8) | value    (i16)          | checksum (u8) |

``checksum`` is the XOR of the three preceding bytes. Commands:

============================  =====  ===========================================
command                       byte   argument -> reply value
============================  =====  ===========================================
:data:`CMD_GOTO`              0x47   absolute target, 0.1 deg -> target accepted
:data:`CMD_READ_ANGLE`        0x41   0 -> current angle, 0.1 deg
:data:`CMD_READ_MOVING`       0x4D   0 -> 0 standing still, non-zero rotating
============================  =====  ===========================================

A status other than :data:`STATUS_OK` is an error code
(:data:`STATUS_MESSAGES`). Angles are counter-clockwise seen from above, as
in calib. UDP may lose datagrams: every request waits ``timeout_s`` for its
reply and is sent again up to ``retries`` times (all three commands are
idempotent, so a repeated "go to" is harmless). Datagrams left over from a
timed-out attempt are drained before each request so that a late reply is
never taken for the answer to the next one.
"""

from __future__ import annotations

import socket
import struct

from calib.errors import TurntableError
from calib.rig.turntables import PolledTurntable

#: UDP port the table listens on (calib's choice; configurable).
DEFAULT_PORT = 5025
#: Command bytes ('G', 'A', 'M').
CMD_GOTO = 0x47
CMD_READ_ANGLE = 0x41
CMD_READ_MOVING = 0x4D
COMMAND_NAMES = {CMD_GOTO: "goto", CMD_READ_ANGLE: "read angle", CMD_READ_MOVING: "read moving"}
#: Reply status bytes.
STATUS_OK = 0x00
STATUS_MESSAGES = {
    0x01: "unknown command",
    0x02: "bad request checksum",
    0x03: "angle out of range",
    0x04: "drive fault",
    0x05: "emergency stop engaged",
}
PACKET_SIZE = 4
_FORMAT = ">Bh"  # u8 + big-endian i16, followed by the checksum byte


def checksum(data: bytes) -> int:
    """XOR of all bytes of ``data``."""
    result = 0
    for byte in data:
        result ^= byte
    return result


def encode_request(command: int, argument: int = 0) -> bytes:
    """Build a 4-byte request; ``argument`` in tenths of a degree (int16)."""
    if command not in COMMAND_NAMES:
        raise TurntableError(
            f"unknown ET250 command 0x{command:02x}; valid: "
            + ", ".join(f"0x{c:02x} ({n})" for c, n in COMMAND_NAMES.items())
        )
    if not -32768 <= argument <= 32767:
        raise TurntableError(f"ET250 argument {argument!r} does not fit an int16 (0.1 deg units)")
    body = struct.pack(_FORMAT, command, argument)
    return body + bytes([checksum(body)])


def decode_reply(packet: bytes) -> tuple[int, int]:
    """Split a reply into ``(status, value)`` after checking its size and checksum.

    Raises
    ------
    TurntableError
        If the reply is not 4 bytes or its checksum is wrong.
    """
    if len(packet) != PACKET_SIZE:
        raise TurntableError(
            f"ET250 reply of {len(packet)} bytes ({packet.hex()}), expected {PACKET_SIZE}"
        )
    expected = checksum(packet[:3])
    if packet[3] != expected:
        raise TurntableError(
            f"ET250 reply {packet.hex()} has a bad checksum 0x{packet[3]:02x}, expected 0x{expected:02x}"
        )
    status, value = struct.unpack(_FORMAT, packet[:3])
    return status, value


class Et250Turntable(PolledTurntable):
    """Outline ET250-3D on a UDP network address.

    Parameters
    ----------
    host : str
        Host name or IP address of the table.
    port : int
        Its UDP port.
    timeout_s : float
        Time to wait for each reply, seconds.
    tolerance_deg : float
        Largest accepted read-back error after a move.
    poll_s : float
        Interval between moving-state polls.
    retries : int
        Extra attempts after a request got no reply (total ``1 + retries``).
    settle_s, range_start_deg
        See :class:`PolledTurntable`.
    """

    name = "ET250"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        timeout_s: float = 0.5,
        tolerance_deg: float = 0.5,
        poll_s: float = 0.2,
        retries: int = 3,
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
        if retries < 0:
            raise TurntableError(f"retries must be >= 0, got {retries!r}")
        self.address = (host, int(port))
        self.name = f"ET250 at {host}:{port}"
        self.retries = int(retries)
        try:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # connect() makes the kernel drop datagrams from anyone but the table
            self._sock.connect(self.address)
        except OSError as exc:
            raise TurntableError(f"cannot open UDP socket to ET250 at {host}:{port}: {exc}") from exc

    def _drain(self) -> None:
        """Discard datagrams that arrived after an earlier attempt timed out."""
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(64)
        except (BlockingIOError, ConnectionRefusedError):
            pass
        finally:
            self._sock.settimeout(self.timeout_s)

    def _transact(self, command: int, argument: int = 0) -> int:
        """Send one request and return the reply value, retrying on silence."""
        request = encode_request(command, argument)
        attempts = 1 + self.retries
        for _ in range(attempts):
            self._drain()
            try:
                self._sock.send(request)
                packet = self._sock.recv(64)
            except (TimeoutError, ConnectionRefusedError):
                continue  # lost datagram or nobody listening (ICMP): try again
            except OSError as exc:
                raise TurntableError(
                    f"{self.name}: network error on {COMMAND_NAMES[command]}: {exc}"
                ) from exc
            status, value = decode_reply(packet)
            if status != STATUS_OK:
                meaning = STATUS_MESSAGES.get(status, "undocumented code")
                raise TurntableError(
                    f"{self.name} answered {COMMAND_NAMES[command]} with error status "
                    f"0x{status:02x} ({meaning})"
                )
            return value
        raise TurntableError(
            f"no reply from {self.name} to {COMMAND_NAMES[command]} after {attempts} attempts "
            f"({self.timeout_s:g} s timeout each)"
        )

    def _start_move(self, target_deg: float) -> None:
        self._transact(CMD_GOTO, round(target_deg * 10.0))

    def _is_moving(self) -> bool:
        return self._transact(CMD_READ_MOVING) != 0

    def angle_deg(self) -> float:
        """The table's current angle in degrees, normalised into its range."""
        return self.normalise(self._transact(CMD_READ_ANGLE) / 10.0)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
