"""Operator-driven turntable and dummy-head positioner.

For stations without a motorised table: the tool prints what to do and
waits for Enter. ``prompt`` and ``echo`` default to :func:`input` and
:func:`print` and are injectable (a GUI, a test). Typing ``abort`` (or
``q``) instead of Enter stops the procedure with an error; so does a closed
standard input.
"""

from __future__ import annotations

from collections.abc import Callable

from calib.errors import RigError, TurntableError
from calib.geometry import HeadPosition
from calib.rig.base import Positioner, Turntable
from calib.rig.turntables.polled import angle_error_deg

ABORT_WORDS = ("abort", "q", "quit")
_CONFIRM = "Press Enter when done (or type 'abort'): "


def _confirm(prompt: Callable[[str], str], error: type[RigError], what: str) -> None:
    """Wait for the operator; raise ``error`` on abort or closed input."""
    try:
        answer = prompt(_CONFIRM)
    except (EOFError, KeyboardInterrupt) as exc:
        raise error(f"no operator confirmation while waiting for {what} (input closed)") from exc
    if answer.strip().lower() in ABORT_WORDS:
        raise error(f"operator aborted while waiting for {what}")


class ManualTurntable(Turntable):
    """A turntable that the operator rotates by hand.

    Parameters
    ----------
    prompt : callable
        ``prompt(text) -> str``, blocks until the operator answers.
    echo : callable
        ``echo(text)`` shows an instruction.
    initial_deg : float
        The angle the table is assumed to stand at before the first move.
    """

    def __init__(
        self,
        prompt: Callable[[str], str] = input,
        echo: Callable[[str], object] = print,
        initial_deg: float = 0.0,
    ) -> None:
        self._prompt = prompt
        self._echo = echo
        self._angle_deg = float(initial_deg)

    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        """Ask the operator to rotate to ``angle_deg``; return the commanded angle.

        ``timeout_s`` is ignored: the operator takes the time needed.
        """
        step = angle_error_deg(angle_deg, self._angle_deg)
        way = "counter-clockwise" if step >= 0 else "clockwise"
        self._echo(
            f"Rotate the turntable to {angle_deg:.1f} deg (from {self._angle_deg:.1f} deg: "
            f"{abs(step):.1f} deg {way} seen from above)."
        )
        _confirm(self._prompt, TurntableError, f"the turntable at {angle_deg:.1f} deg")
        self._angle_deg = float(angle_deg)
        return self._angle_deg

    def angle_deg(self) -> float:
        """Return the last angle the operator confirmed."""
        return self._angle_deg


class ManualPositioner(Positioner):
    """A dummy-head positioner that is the operator.

    Parameters
    ----------
    prompt, echo : callable
        As for :class:`ManualTurntable`.
    """

    def __init__(
        self, prompt: Callable[[str], str] = input, echo: Callable[[str], object] = print
    ) -> None:
        self._prompt = prompt
        self._echo = echo

    def place(self, position: HeadPosition) -> None:
        """Ask the operator to place the dummy head at ``position`` and wait."""
        x, y, z = position.xyz_m
        self._echo(
            f"Place the dummy head at position '{position.name}': head centre "
            f"x={x:+.3f} m (forward), y={y:+.3f} m (left), z={z:+.3f} m (up) from the device "
            f"origin, facing azimuth {position.yaw_deg:.1f} deg (device frame; 180 looks back along -x)."
        )
        _confirm(self._prompt, RigError, f"the dummy head at '{position.name}'")
