"""Turntable drivers against fakes that speak their wire protocols.

ET250: see test_et250.py. LT360: a pty pair,
the fake table on the master side, the driver opening the slave path through
serial.serial_for_url. Both fakes simulate motion at a set speed in real
time, so moves are kept short (tens of degrees at hundreds of deg/s).
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import pytest

from calib.errors import DeviceNotFoundError, RigError, TurntableError
from calib.geometry import HeadPosition
from calib.rig.turntables import (
    Lt360Turntable,
    ManualPositioner,
    ManualTurntable,
    UnverifiedProtocolWarning,
    angle_error_deg,
    wrap_angle_deg,
)

SPEED_DEG_S = 600.0
FAST = dict(poll_s=0.01, settle_s=0.05)


class Motion:
    """Table kinematics: constant speed along a direction, optional stall."""

    def __init__(self, start_deg: float = 0.0, stall_at_deg: float | None = None) -> None:
        self.origin = start_deg
        self.target = start_deg
        self.sign = 1.0
        self.t0 = time.monotonic()
        self.stall_at_deg = stall_at_deg
        self.lock = threading.Lock()

    def go(self, target_deg: float, sign: float | None = None) -> None:
        with self.lock:
            angle, _ = self._state()
            if sign is None:  # shortest way
                sign = 1.0 if angle_error_deg(target_deg, angle) >= 0 else -1.0
            self.origin, self.target, self.sign, self.t0 = angle, target_deg, sign, time.monotonic()

    def _state(self) -> tuple[float, bool]:
        distance = ((self.target - self.origin) * self.sign) % 360.0
        travelled = min(SPEED_DEG_S * (time.monotonic() - self.t0), distance)
        if self.stall_at_deg is not None:
            to_stall = ((self.stall_at_deg - self.origin) * self.sign) % 360.0
            if to_stall < distance and travelled >= to_stall:
                return self.stall_at_deg, True  # motor keeps driving against the block
        return self.origin + self.sign * travelled, travelled < distance

    def state(self) -> tuple[float, bool]:
        with self.lock:
            return self._state()


# ---------------------------------------------------------------- LT360 fake
class FakeLt360:
    """The master side of a pty, answering the LT360 ASCII commands.

    mode: "normal", "silent", "garbled", "error" (Error reply to GET MOVING).
    The table travels in the commanded direction, even the long way round.
    """

    def __init__(self, mode="normal", stall_at_deg=None, clockwise_positive=False):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.mode = mode
        self.motion = Motion(stall_at_deg=stall_at_deg)
        self.increasing = "CW" if clockwise_positive else "CCW"
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _answer(self, line: str) -> str | None:
        words = line.upper().split()
        if words[:1] == ["GOTO"] and len(words) == 3:
            self.motion.go(float(words[2]), 1.0 if words[1] == self.increasing else -1.0)
            return None
        angle, moving = self.motion.state()
        if words == ["GET", "POSITION"]:
            return "#?!" if self.mode == "garbled" else f"{wrap_angle_deg(angle):+06.1f}"
        if words == ["GET", "MOVING"]:
            if self.mode == "error":
                return "Error - 5 : Motor Stalled"
            if not moving:
                return "NO"
            return "CCW" if (self.motion.sign > 0) == (self.increasing == "CCW") else "CW"
        return "Error - 1 : Unknown Command"

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.01)
            if not ready:
                continue
            buffer += os.read(self.master, 256)
            while b"\r" in buffer:
                raw, buffer = buffer.split(b"\r", 1)
                line = raw.decode("ascii")
                self.lines.append(line)
                reply = self._answer(line)
                if reply is not None and self.mode != "silent":
                    os.write(self.master, reply.encode("ascii") + b"\r")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def lt360_fake():
    objs = []

    def make(clockwise_positive=False, timeout_s=0.5, **kwargs):
        fake = FakeLt360(clockwise_positive=clockwise_positive, **kwargs)
        objs.append(fake)
        with pytest.warns(UnverifiedProtocolWarning, match=r"LT360 driver is UNVERIFIED"):
            table = Lt360Turntable(fake.path, timeout_s=timeout_s, clockwise_positive=clockwise_positive, **FAST)
        objs.append(table)
        return fake, table

    yield make
    for obj in reversed(objs):
        obj.close()


def test_lt360_moves_and_chooses_direction_inside_range(lt360_fake):
    fake, table = lt360_fake()
    assert table.move_to(90.0, timeout_s=2.0) == pytest.approx(90.0, abs=0.5)
    # 90 -> -90 goes clockwise through 0, never across the +-180 cut
    assert table.move_to(-90.0, timeout_s=2.0) == pytest.approx(-90.0, abs=0.5)
    gotos = [line for line in fake.lines if line.startswith("GOTO")]
    assert gotos == ["GOTO CCW 90.0", "GOTO CW -90.0"]
    assert table.angle_deg() == pytest.approx(-90.0, abs=0.05)


def test_lt360_clockwise_counting_table(lt360_fake):
    fake, table = lt360_fake(clockwise_positive=True)
    # calib +30 (counter-clockwise) is table -30 on a clockwise-counting table
    assert table.move_to(30.0, timeout_s=2.0) == pytest.approx(30.0, abs=0.5)
    assert [line for line in fake.lines if line.startswith("GOTO")] == ["GOTO CCW -30.0"]
    assert fake.motion.state()[0] == pytest.approx(-30.0, abs=0.05)


def test_lt360_stall_times_out_naming_target_and_last_angle(lt360_fake):
    fake, table = lt360_fake(stall_at_deg=20.0)
    with pytest.raises(TurntableError, match=r"target 60\.0 deg within 0\.3 s; last angle read 20\.0 deg"):
        table.move_to(60.0, timeout_s=0.3)


def test_lt360_garbled_reply(lt360_fake):
    fake, table = lt360_fake(mode="garbled")
    with pytest.raises(TurntableError, match=r"unexpected reply '#\?!' to 'GET POSITION'"):
        table.angle_deg()


def test_lt360_no_reply(lt360_fake):
    fake, table = lt360_fake(mode="silent", timeout_s=0.1)
    with pytest.raises(TurntableError, match=r"no reply from LT360 on .* to 'GET POSITION' within the 0\.1 s timeout"):
        table.move_to(10.0)


def test_lt360_error_reply(lt360_fake):
    fake, table = lt360_fake(mode="error")
    with pytest.raises(TurntableError, match=r"answered 'GET MOVING' with 'Error - 5 : Motor Stalled'"):
        table.move_to(10.0)


def test_lt360_missing_port():
    with (
        pytest.raises(
            DeviceNotFoundError, match=r"cannot open LT360 serial port '/dev/calib-no-such-port'.*ports found"
        ),
        pytest.warns(UnverifiedProtocolWarning),
    ):
        Lt360Turntable("/dev/calib-no-such-port")


# ---------------------------------------------------------------- manual
class Operator:
    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.shown: list[str] = []

    def prompt(self, text):
        self.prompts.append(text)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_manual_turntable_instructs_and_returns_commanded_angle():
    op = Operator(["", ""])
    table = ManualTurntable(prompt=op.prompt, echo=op.shown.append)
    assert table.move_to(30.0) == 30.0
    assert table.angle_deg() == 30.0
    assert table.move_to(-60.0) == -60.0
    assert op.shown == [
        "Rotate the turntable to 30.0 deg (from 0.0 deg: 30.0 deg counter-clockwise seen from above).",
        "Rotate the turntable to -60.0 deg (from 30.0 deg: 90.0 deg clockwise seen from above).",
    ]
    assert len(op.prompts) == 2 and "Enter" in op.prompts[0]


def test_manual_turntable_abort_and_closed_input():
    table = ManualTurntable(prompt=Operator(["abort"]).prompt, echo=lambda s: None)
    with pytest.raises(TurntableError, match=r"operator aborted .* turntable at 45\.0 deg"):
        table.move_to(45.0)
    assert table.angle_deg() == 0.0
    table = ManualTurntable(prompt=Operator([EOFError()]).prompt, echo=lambda s: None)
    with pytest.raises(TurntableError, match="input closed"):
        table.move_to(45.0)


def test_manual_positioner():
    op = Operator(["", "q"])
    positioner = ManualPositioner(prompt=op.prompt, echo=op.shown.append)
    position = HeadPosition("centre", (1.5, -0.25, 0.1), 180.0)
    positioner.place(position)
    assert op.shown[0] == (
        "Place the dummy head at position 'centre': head centre x=+1.500 m (forward), "
        "y=-0.250 m (left), z=+0.100 m (up) from the device origin, facing azimuth 180.0 deg "
        "(device frame; 180 looks back along -x)."
    )
    with pytest.raises(RigError, match=r"operator aborted .* dummy head at 'centre'"):
        positioner.place(position)


def test_angle_helpers():
    assert wrap_angle_deg(190.0) == pytest.approx(-170.0)
    assert wrap_angle_deg(-180.0) == -180.0
    assert wrap_angle_deg(180.0) == -180.0
    assert wrap_angle_deg(-10.0, 0.0) == pytest.approx(350.0)
    assert wrap_angle_deg(-1e-17, 0.0) == 0.0
    assert angle_error_deg(359.9, 0.0) == pytest.approx(-0.1)
    assert angle_error_deg(-170.0, 170.0) == pytest.approx(20.0)
