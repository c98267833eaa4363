"""The ET250-3D driver against a fake table that speaks the vendor's UDP protocol (tests/rig/et250_fake.py).

Every command and reply, byte-exact request encodings, the start-up
direction check, lost and duplicated datagrams, a refused move, a stall.
The fake turns at 600 deg/s in real time, so moves stay short.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest
from et250_fake import FakeEt250, xor

from calib.errors import TurntableError
from calib.rig.turntables import Et250Turntable, et250

DUO = Path(__file__).resolve().parents[2] / "procedures" / "duo2.toml"
FAST = dict(poll_s=0.005, settle_s=0.05, timeout_s=0.1, retries=2)


@pytest.fixture
def table():
    """``make(fake_kwargs..., driver_kwargs=...)`` -> (fake, driver); both closed afterwards."""
    opened = []

    def make(driver: dict | None = None, **fake_kwargs):
        fake = FakeEt250(**fake_kwargs)
        opened.append(fake)
        options = {**FAST, "forward_clockwise": fake.forward_clockwise, **(driver or {})}
        drv = Et250Turntable("127.0.0.1", port=fake.port, **options)
        opened.append(drv)
        return fake, drv

    yield make
    for obj in reversed(opened):
        obj.close()


def _req(command: int, argument: int = 0) -> bytes:
    """Independent encoding: command, u16 big-endian, XOR of the three."""
    body = bytes([command, argument >> 8, argument & 0xFF])
    return body + bytes([body[0] ^ body[1] ^ body[2]])


def _moves(fake: FakeEt250) -> list[tuple[int, int]]:
    return [struct.unpack(">BH", p[:3]) for p in fake.requests if p[0] in (1, 2)]


def test_request_encodings_byte_exact():
    # forward 90.0 deg = 900 tenths = 0x0384: 01 03 84, checksum 01^03^84 = 0x86
    assert et250.encode_request(et250.CMD_FORWARD, 900) == bytes.fromhex("01038486")
    # backward 0.5 deg = 5 = 0x0005: 02 00 05, checksum 0x07
    assert et250.encode_request(et250.CMD_BACKWARD, 5) == bytes.fromhex("02000507")
    # backward 180.0 deg = 1800 = 0x0708: 02 07 08, checksum 0x0d
    assert et250.encode_request(et250.CMD_BACKWARD, 1800) == bytes.fromhex("0207080d")
    assert et250.encode_request(et250.CMD_STOP) == bytes.fromhex("03000003")
    assert et250.encode_request(et250.CMD_STATUS) == bytes.fromhex("04000004")
    assert et250.encode_request(et250.CMD_SET_ZERO) == bytes.fromhex("05000005")
    with pytest.raises(TurntableError, match=r"does not fit a u16"):
        et250.encode_request(et250.CMD_FORWARD, 70000)
    with pytest.raises(TurntableError, match=r"does not fit a u16"):
        et250.encode_request(et250.CMD_FORWARD, -5)
    with pytest.raises(TurntableError, match=r"unknown ET250 command 9; valid: 1 \(rotate forward\)"):
        et250.encode_request(9)


def test_status_decoding_and_its_errors():
    body = bytes([5, 0, 0, 0x03, 0x84, 2])  # stopped, 90.0 deg, clockwise
    assert et250.decode_status(body + bytes([xor(body)])) == et250.Status(False, 900, 2)
    with pytest.raises(TurntableError, match="bad checksum"):
        et250.decode_status(body + bytes([xor(body) ^ 1]))
    with pytest.raises(TurntableError, match="of 6 bytes"):
        et250.decode_status(body)
    for bad, match in ((bytes([7, 0, 0, 0, 0, 1]), "status 7"), (bytes([4, 0, 0, 0x0E, 0x10, 1]), "angle 3600"),
                       (bytes([4, 0, 0, 0, 0, 0]), "direction 0")):
        with pytest.raises(TurntableError, match=match):
            et250.decode_status(bad + bytes([xor(bad)]))


@pytest.mark.parametrize("forward_clockwise", [True, False])
def test_start_up_direction_check_and_moves(table, forward_clockwise):
    fake, drv = table(forward_clockwise=forward_clockwise)
    # Start-up: status, 0.5 deg forward, status (direction, +0.5 deg), 0.5 deg back, status.
    assert fake.requests[:3] == [_req(4), _req(1, 5), _req(4)]
    assert _req(2, 5) in fake.requests and fake.reading_tenths() == 0
    n = len(fake.requests)
    # calib +30 deg (counter-clockwise): backward on a clockwise-forward table, forward otherwise.
    assert drv.move_to(30.0, timeout_s=2.0) == pytest.approx(30.0, abs=1e-9)
    assert fake.angle_ccw_deg() == pytest.approx(30.0)
    assert drv.move_to(-45.5, timeout_s=2.0) == pytest.approx(-45.5, abs=1e-9)  # relative: 75.5 deg the other way
    ccw, cw = (2, 1) if forward_clockwise else (1, 2)
    assert [struct.unpack(">BH", p[:3]) for p in fake.requests[n:] if p[0] in (1, 2)] == [(ccw, 300), (cw, 755)]
    assert fake.angle_ccw_deg() == pytest.approx(-45.5)
    assert drv.angle_deg() == pytest.approx(-45.5)
    # Replies: every move acknowledged 33 00; every status 7 bytes with its checksum.
    assert {r for r in fake.replies if len(r) == 2} == {b"\x33\x00"}
    assert all(len(r) == 7 and r[6] == xor(r[:6]) for r in fake.replies if len(r) != 2)


def test_moves_stay_inside_the_range_and_round_to_half_degrees(table):
    fake, drv = table(forward_clockwise=False)
    drv.move_to(170.0, timeout_s=2.0)
    # 170 -> -170 inside [-180, 180): 340 deg clockwise (backward), never across the cable cut at 180.
    drv.move_to(-170.0, timeout_s=3.0)
    assert _moves(fake)[-1] == (2, 3400)
    # 10.2 deg: the table moves in 0.5 deg steps -> 10.0 deg (within the 0.3 deg tolerance).
    assert drv.move_to(10.2, timeout_s=2.0) == pytest.approx(10.0)
    assert _moves(fake)[-1] == (1, 1800)
    assert drv.move_to(10.0, timeout_s=2.0) == pytest.approx(10.0)  # already there: no move sent
    assert _moves(fake)[-1] == (1, 1800)


def test_stop_and_set_zero(table):
    fake, drv = table(forward_clockwise=False)
    drv.move_to(20.0, timeout_s=2.0)
    drv.set_zero()
    assert fake.requests[-1] == _req(5) and fake.reading_tenths() == 0 and drv.angle_deg() == 0.0
    fake.speed_tenths_s = 100.0  # 10 deg/s: stop it on the way
    drv._command(et250.CMD_FORWARD, 900)
    drv._command(et250.CMD_STOP)
    stopped = fake.reading_tenths()
    assert fake.requests[-1] == _req(3) and 0 <= stopped < 900
    assert not drv.status().moving and fake.reading_tenths() == stopped


def test_wrong_direction_setting_is_caught_at_start_up(table):
    with pytest.raises(TurntableError, match=r"forward_clockwise = true in the station, but a forward move turned "
                                             r"counter-clockwise; set forward_clockwise = false"):
        table(forward_clockwise=False, driver={"forward_clockwise": True})
    with pytest.raises(TurntableError, match=r"forward_clockwise = false .* turned clockwise"):
        table(wrong_direction=True, forward_clockwise=False)


def test_a_table_turning_the_wrong_way_is_stopped(table):
    fake, drv = table(forward_clockwise=False)
    fake.speed_tenths_s = 300.0  # 30 deg/s: still turning when polled
    fake.wrong_direction = True  # e.g. the table's direction setting was changed after start-up
    with pytest.raises(TurntableError, match=r"turns clockwise on a move to 40\.0 deg that should turn "
                                             r"counter-clockwise \(stop sent\); check turntable\.forward_clockwise"):
        drv.move_to(40.0, timeout_s=5.0)
    assert fake.requests[-1] == _req(3) and not drv.status().moving


def test_lost_request_and_lost_reply_are_retried_without_moving_twice(table):
    fake, drv = table(forward_clockwise=False)
    n = len(fake.requests)  # move_to: request n reads the status, n + 1 is the move: lose it
    fake.drop_requests = {n + 1}
    assert drv.move_to(40.0, timeout_s=2.0) == pytest.approx(40.0)
    assert fake.angle_ccw_deg() == pytest.approx(40.0)
    # The lost move was sent again after a status read showed the table had not moved.
    assert fake.requests[n:n + 4] == [_req(4), _req(1, 400), _req(4), _req(1, 400)]
    n = len(fake.requests)
    fake.drop_replies = {n + 1}  # the table takes the next move, its reply is lost
    assert drv.move_to(50.0, timeout_s=2.0) == pytest.approx(50.0)
    # Not sent again: the status read after the silence shows the table moving (or moved); it arrives once.
    assert fake.requests[n:n + 3] == [_req(4), _req(1, 100), _req(4)]
    assert _moves(fake).count((1, 100)) == 1 and fake.angle_ccw_deg() == pytest.approx(50.0)
    n = len(fake.requests)
    fake.drop_replies = {n}  # a status reply lost: simply asked again
    assert drv.angle_deg() == pytest.approx(50.0)
    assert fake.requests[n:] == [_req(4), _req(4)]


def test_duplicated_replies_are_not_taken_for_later_answers(table):
    fake, drv = table(forward_clockwise=True, duplicate_replies=True)
    for target in (15.0, -25.0, 5.0):
        assert drv.move_to(target, timeout_s=2.0) == pytest.approx(target)
        assert fake.angle_ccw_deg() == pytest.approx(target)


def test_refused_move_is_one_clear_error(table):
    fake, drv = table(forward_clockwise=False)
    fake.refuse_moves = True
    with pytest.raises(
        TurntableError, match=r"^ET250 at 127\.0\.0\.1:\d+ refused rotate forward 60 deg \(reply 6600\)$"
    ):
        drv.move_to(60.0)
    assert sum(1 for p in fake.requests if p == _req(1, 600)) == 1  # a refusal is not retried


def test_stall_sends_stop_and_names_target_and_last_angle(table):
    fake, drv = table(forward_clockwise=False, stall_at_tenths=200)
    with pytest.raises(TurntableError, match=r"did not reach the target 60\.0 deg within 0\.3 s \(stop sent\); "
                                             r"last angle read 20\.0 deg"):
        drv.move_to(60.0, timeout_s=0.3)
    assert fake.requests[-1] == _req(3)


def test_stopped_short_gets_correcting_moves_then_an_error(table):
    fake, drv = table(forward_clockwise=False, stop_short_at_tenths=200)
    with pytest.raises(TurntableError, match=r"stopped at 20\.0 deg, -40\.0 deg from the target 60\.0 deg "
                                             r"\(tolerance 0\.3 deg\) after 3 moves"):
        drv.move_to(60.0, timeout_s=5.0)
    assert _moves(fake)[-3:] == [(1, 600), (1, 400), (1, 400)]  # relative, from the angle read each time


def test_no_reply_and_nobody_listening():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(TurntableError, match=r"no reply from ET250 at 127\.0\.0\.1:\d+ to read status 0 deg "
                                                 r"after 3 attempts \(0\.05 s timeout each\)"):
            Et250Turntable("127.0.0.1", True, port=silent.getsockname()[1], **{**FAST, "timeout_s": 0.05})
        port = silent.getsockname()[1]
    finally:
        silent.close()
    with pytest.raises(TurntableError, match="no reply"):  # closed port: ICMP port unreachable
        Et250Turntable("127.0.0.1", True, port=port, **{**FAST, "timeout_s": 0.05})


def test_hold_keeps_the_table_moving_until_released(table):
    hold = threading.Event()
    hold.set()
    fake, drv = table(forward_clockwise=False, hold=hold)
    hold.clear()
    timer = threading.Timer(0.2, hold.set)
    timer.start()
    assert drv.move_to(10.0, timeout_s=3.0) == pytest.approx(10.0)
    assert hold.is_set()
    timer.join()


def test_bad_parameters():
    with pytest.raises(TurntableError, match=r"tolerance_deg must be >= 0\.25 .*0\.5 deg steps.*got 0\.1"):
        Et250Turntable("127.0.0.1", True, port=1, tolerance_deg=0.1, check_direction=False)
    with pytest.raises(TurntableError, match="retries must be >= 0, got -1"):
        Et250Turntable("127.0.0.1", True, port=1, retries=-1, check_direction=False)
    with pytest.raises(TurntableError, match=r"range_start_deg must be in \[-360, 0\], got 10"):
        Et250Turntable("127.0.0.1", True, port=1, range_start_deg=10, check_direction=False)


def test_station_opens_the_et250_with_its_settings():
    from calib.procedure import load_procedure
    from calib.procedure.station_file import parse_station
    from calib.rig.station_rig import open_turntable

    proc = load_procedure(DUO)
    with FakeEt250(forward_clockwise=True) as fake:
        station = parse_station(
            f'[turntable]\ndriver = "et250"\nhost = "127.0.0.1"\nport = {fake.port}\nforward_clockwise = true\n'
            "tolerance_deg = 0.25\ntimeout_s = 0.2\npoll_s = 0.01\n"
        )
        with open_turntable(station, proc) as drv:
            assert isinstance(drv, Et250Turntable) and drv.forward_clockwise
            assert (drv.address, drv.tolerance_deg, drv.timeout_s) == (("127.0.0.1", fake.port), 0.25, 0.2)
            assert fake.requests[:2] == [_req(4), _req(1, 5)]  # the start-up direction check ran
    assert et250.DEFAULT_PORT == 6668
