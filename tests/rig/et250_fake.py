"""A fake Outline ET250-3D: a UDP server thread on 127.0.0.1 speaking the table's protocol byte for byte.

Written from the protocol facts (not from calib's driver): 4-byte requests
``command, argument (u16 BE, 0.1 deg), XOR``; replies ``33 00`` (accepted) or
``66 00`` (refused) to commands 1, 2, 3, 5 and a 7-byte status to 4
(``status 4/5, angle u32 BE 0..3599, direction 1 CCW / 2 CW, XOR``). The
table turns at ``speed_deg_s`` in 0.5 deg steps, in real time; its reading
counts in its forward direction, which is clockwise seen from above when
``forward_clockwise``.

Fault injection: ``drop_requests`` / ``drop_replies`` (sets of 0-based
request numbers whose request is lost before the table / whose reply is
lost), ``duplicate_replies`` (every reply sent twice), ``refuse_moves``,
``stall_at_tenths`` (the table sticks at that reading and reports "moving"
forever), ``stop_short_at_tenths`` (it stops there, reporting "stopped"),
``hold`` (an event: while cleared, the table reports "moving", as a slow
table would; the end-to-end test uses it to make a run wait for its JACK
routing), ``wrong_direction`` (reports the other direction byte).
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time


def xor(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


class FakeEt250:
    """The fake table; ``port`` is its UDP port, ``requests`` every datagram it received."""

    def __init__(
        self,
        *,
        forward_clockwise: bool = True,
        speed_deg_s: float = 600.0,
        start_tenths: int = 0,
        drop_requests: set[int] | None = None,
        drop_replies: set[int] | None = None,
        duplicate_replies: bool = False,
        refuse_moves: bool = False,
        stall_at_tenths: int | None = None,
        stop_short_at_tenths: int | None = None,
        wrong_direction: bool = False,
        hold: threading.Event | None = None,
    ) -> None:
        self.forward_clockwise = forward_clockwise
        self.speed_tenths_s = speed_deg_s * 10.0
        self.drop_requests = drop_requests or set()
        self.drop_replies = drop_replies or set()
        self.duplicate_replies = duplicate_replies
        self.refuse_moves = refuse_moves
        self.stall_at_tenths = stall_at_tenths
        self.stop_short_at_tenths = stop_short_at_tenths
        self.wrong_direction = wrong_direction
        self.hold = hold
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []
        self._lock = threading.Lock()
        # motion: reading(t) = origin + sign * min(travel, speed * (t - t0)), in 0.5 deg steps
        self._origin = int(start_tenths)
        self._sign = 1
        self._travel = 0
        self._t0 = time.monotonic()
        self._direction = 2 if forward_clockwise else 1  # of the last move
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.01)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-et250")
        self._thread.start()

    # ------------------------------------------------------------ kinematics
    def _state(self) -> tuple[int, bool]:
        """(reading in tenths, unwrapped; moving)."""
        done = min(self._travel, self.speed_tenths_s * (time.monotonic() - self._t0))
        done = int(done // 5) * 5  # 0.5 deg steps
        reading = self._origin + self._sign * done
        moving = done < self._travel
        for block, keeps_moving in ((self.stall_at_tenths, True), (self.stop_short_at_tenths, False)):
            if block is None:
                continue
            to_block = (block - self._origin) * self._sign % 3600
            if to_block <= self._travel and done >= to_block:
                return self._origin + self._sign * to_block, keeps_moving
        return reading, moving

    def reading_tenths(self) -> int:
        """The table's reading now, 0..3599."""
        with self._lock:
            return self._state()[0] % 3600

    def angle_ccw_deg(self) -> float:
        """The physical angle now, counter-clockwise seen from above (what turns the device)."""
        sign = -1.0 if self.forward_clockwise else 1.0
        return math.remainder(sign * self.reading_tenths() / 10.0, 360.0)

    def _move(self, sign: int, tenths: int) -> None:
        reading, _ = self._state()
        self._origin, self._sign, self._travel, self._t0 = reading, sign, tenths // 5 * 5, time.monotonic()
        cw = (sign > 0) == self.forward_clockwise
        self._direction = 2 if cw else 1

    # -------------------------------------------------------------- protocol
    def _answer(self, packet: bytes) -> bytes | None:
        if len(packet) != 4 or packet[3] != xor(packet[:3]):
            return None  # a real table ignores a corrupt request
        command, argument = struct.unpack(">BH", packet[:3])
        with self._lock:
            if command in (1, 2):
                if self.refuse_moves:
                    return b"\x66\x00"
                self._move(1 if command == 1 else -1, argument)
                return b"\x33\x00"
            if command == 3:
                reading, _ = self._state()
                self._origin, self._travel = reading, 0
                return b"\x33\x00"
            if command == 5:
                reading, moving = self._state()
                if moving:
                    return b"\x66\x00"
                self._origin, self._travel = 0, 0
                return b"\x33\x00"
            if command == 4:
                reading, moving = self._state()
                if self.hold is not None and not self.hold.is_set():
                    moving = True  # held: the table does not arrive yet
                direction = self._direction if not self.wrong_direction else 3 - self._direction
                body = struct.pack(">BIB", 4 if moving else 5, reading % 3600, direction)
                return body + bytes([xor(body)])
        return b"\x66\x00"  # unknown command

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = self.sock.recvfrom(64)
            except (TimeoutError, OSError):
                continue
            n = len(self.requests)
            self.requests.append(packet)
            if n in self.drop_requests:
                continue
            reply = self._answer(packet)
            if reply is None or n in self.drop_replies:
                continue
            self.replies.append(reply)
            for _ in range(2 if self.duplicate_replies else 1):
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> FakeEt250:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
