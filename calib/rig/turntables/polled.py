"""Move logic shared by the motorised turntables, and angle arithmetic on the table's circle.

calib angles are degrees, counter-clockwise seen from above (AES69). A table
angle is normalised into the table's range ``[range_start_deg,
range_start_deg + 360)``; the default range ``[-180, 180)`` keeps the cable
wrap cut behind the device. Angle differences are taken on the circle, so a
table that reports 359.9 deg is 0.1 deg from a 0 deg target.
"""

from __future__ import annotations

import abc
import math
import time

from calib.errors import TurntableError
from calib.rig.base import Turntable


def wrap_angle_deg(angle_deg: float, range_start_deg: float = -180.0) -> float:
    """Normalise ``angle_deg`` into ``[range_start_deg, range_start_deg + 360)``.

    Parameters
    ----------
    angle_deg : float
        Any angle in degrees.
    range_start_deg : float
        Lower end of the table's range.

    Returns
    -------
    float
        The same direction, inside the range.
    """
    wrapped = (angle_deg - range_start_deg) % 360.0 + range_start_deg
    # float modulo can return exactly the excluded upper end for tiny negatives
    return range_start_deg if wrapped >= range_start_deg + 360.0 else wrapped


def angle_error_deg(angle_deg: float, target_deg: float) -> float:
    """Signed shortest angular distance ``angle - target`` on the circle, in [-180, 180)."""
    return (angle_deg - target_deg + 180.0) % 360.0 - 180.0


class PolledTurntable(Turntable):
    """Move logic shared by motorised tables that can be polled.

    A subclass implements :meth:`_start_move`, :meth:`_is_moving` and
    :meth:`angle_deg`; :meth:`move_to` then

    1. normalises the target into the table's range (tenths of a degree, the
       resolution both supported tables report),
    2. sends the absolute move,
    3. polls every ``poll_s`` until the table reports that it stands still
       *and* reads back within ``tolerance_deg`` of the target. A table that
       stands still off target is given ``settle_s`` after the command to
       start moving (some controllers report "stopped" until the motor has
       spun up); after that it is a stall,
    4. raises :class:`TurntableError` naming the target and the last angle
       read if the table is still moving at ``timeout_s``.

    Parameters
    ----------
    timeout_s : float
        Time to wait for each reply of the table, seconds (> 0).
    tolerance_deg : float
        Largest accepted |read-back - target|, degrees (> 0).
    poll_s : float
        Interval between moving-state polls, seconds (> 0).
    settle_s : float
        Grace period after the command during which a stopped, off-target
        table is not yet an error, seconds (>= 0).
    range_start_deg : float
        Lower end of the table's 360 deg range, in [-360, 0].
    """

    #: Name used in error messages.
    name: str = "turntable"

    def __init__(
        self,
        *,
        timeout_s: float,
        tolerance_deg: float,
        poll_s: float,
        settle_s: float,
        range_start_deg: float,
    ) -> None:
        if not timeout_s > 0:
            raise TurntableError(f"timeout_s must be > 0, got {timeout_s!r}")
        if not tolerance_deg > 0:
            raise TurntableError(f"tolerance_deg must be > 0, got {tolerance_deg!r}")
        if not poll_s > 0:
            raise TurntableError(f"poll_s must be > 0, got {poll_s!r}")
        if not settle_s >= 0:
            raise TurntableError(f"settle_s must be >= 0, got {settle_s!r}")
        if not -360.0 <= range_start_deg <= 0.0:
            raise TurntableError(f"range_start_deg must be in [-360, 0], got {range_start_deg!r}")
        self.timeout_s = float(timeout_s)
        self.tolerance_deg = float(tolerance_deg)
        self.poll_s = float(poll_s)
        self.settle_s = float(settle_s)
        self.range_start_deg = float(range_start_deg)

    def normalise(self, angle_deg: float) -> float:
        """Round to 0.1 deg and wrap into the table's range."""
        if not math.isfinite(angle_deg):
            raise TurntableError(f"{self.name}: angle must be finite, got {angle_deg!r}")
        return wrap_angle_deg(round(angle_deg * 10.0) / 10.0, self.range_start_deg)

    @abc.abstractmethod
    def _start_move(self, target_deg: float) -> int | None:
        """Send the absolute move to ``target_deg`` (already normalised); a driver may return a move token."""

    @abc.abstractmethod
    def _is_moving(self) -> bool:
        """Ask the table whether it is rotating."""

    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        """Rotate to ``angle_deg``, wait until there, and return the read-back angle.

        Raises
        ------
        TurntableError
            On a protocol error, if the table is still moving after
            ``timeout_s`` (naming the target and the last angle read), or if
            it stops more than ``tolerance_deg`` from the target.
        """
        target = self.normalise(angle_deg)
        start = time.monotonic()
        deadline = start + timeout_s
        self._start_move(target)
        while True:
            if not self._is_moving():
                reached = self.angle_deg()
                error = angle_error_deg(reached, target)
                if abs(error) <= self.tolerance_deg:
                    return reached
                if time.monotonic() - start >= self.settle_s:
                    raise TurntableError(
                        f"{self.name} stopped at {reached:.1f} deg, {error:+.1f} deg from the "
                        f"target {target:.1f} deg (tolerance {self.tolerance_deg:g} deg)"
                    )
            now = time.monotonic()
            if now >= deadline:
                last = self.angle_deg()
                raise TurntableError(
                    f"{self.name} did not reach the target {target:.1f} deg within "
                    f"{timeout_s:g} s; last angle read {last:.1f} deg"
                )
            time.sleep(min(self.poll_s, deadline - now))

    def __enter__(self) -> PolledTurntable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
