"""The rig interfaces: what the measurement engine talks to.

Nothing above this layer knows whether sound goes through air, a JACK
server or the virtual lab. A :class:`Rig` bundles one audio interface, one
turntable and one dummy-head positioner.

Conventions
-----------
- Signals are float arrays in digital full scale (|x| <= 1), channels first,
  samples last: ``[channels, samples]``.
- Channel indices here are 0-based; procedures state 1-based channel numbers
  as printed on interface front panels and the rig factory converts.
- Angles are in degrees; the turntable angle is the rotation of the device
  about +z, counter-clockwise seen from above (AES69).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from calib.geometry import HeadPosition


class AudioInterface(abc.ABC):
    """A full-duplex audio interface.

    Attributes
    ----------
    sample_rate : int
        Sample rate in Hz.
    n_outputs, n_inputs : int
        Number of playback and capture channels that :meth:`playrec` uses.
    """

    sample_rate: int
    n_outputs: int
    n_inputs: int

    @abc.abstractmethod
    def playrec(self, signal: np.ndarray) -> np.ndarray:
        """Play ``signal`` while recording every input, sample-synchronously.

        Parameters
        ----------
        signal : ndarray, shape (n_outputs, N)
            Output block in full scale. The caller appends enough silence
            for latency and the longest impulse response to decay.

        Returns
        -------
        ndarray, shape (n_inputs, N), float64
            The recorded block. Its time origin is the start of the call, not
            the moment sound left the output: the latency is unknown and may
            change on every call, which is why a loopback channel is recorded.

        Raises
        ------
        RigError
            On an xrun, a dropout the interface can detect, or device loss.
        """

    def start_run(self, name: str) -> None:  # noqa: B027 - optional hook
        """Begin measurement run ``name`` (a simulator draws its noise and latency afresh; hardware: nothing)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class Turntable(abc.ABC):
    """A turntable that rotates the device under test about +z."""

    @abc.abstractmethod
    def move_to(self, angle_deg: float, timeout_s: float = 60.0) -> float:
        """Rotate to ``angle_deg`` and wait until it is reached.

        Returns
        -------
        float
            The angle read back after the move, in degrees.

        Raises
        ------
        TurntableError
            If the table does not arrive within ``timeout_s``, answers with a
            protocol error, or reads back an angle off by more than its
            tolerance.
        """

    @abc.abstractmethod
    def angle_deg(self) -> float:
        """Return the current angle, read from the table."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class Positioner(abc.ABC):
    """Places the dummy head (simulated: at once; real: an operator prompt)."""

    @abc.abstractmethod
    def place(self, position: HeadPosition) -> None:
        """Put the dummy head at ``position`` and return when it is there."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the positioner."""


@dataclass
class Rig:
    """One station: audio interface, turntable and head positioner.

    Attributes
    ----------
    name : str
        ``"sim"``, ``"replay:<file>"`` or ``"portaudio"``; written into every
        measurement file.
    simulated : bool
        True where no real air was involved (sim, replay); reports say so.
    speed_of_sound_m_s : float or None
        The speed of sound in the rig's air (a station's ``[air]``, the
        virtual lab's ``[sim] speed_of_sound``); recorded in every
        measurement file (None: calib's default,
        :data:`calib.procedure.air.DEFAULT_SPEED_OF_SOUND_M_S`), used by
        the fit and the SOFA export.
    air : str
        Where ``speed_of_sound_m_s`` comes from (recorded with it).
    attrs : dict
        Further facts of the station recorded in every measurement file
        (the dummy head's ear geometry).
    """

    name: str
    audio: AudioInterface
    turntable: Turntable
    positioner: Positioner
    simulated: bool = True
    info: dict[str, str] = field(default_factory=dict)
    speed_of_sound_m_s: float | None = None
    air: str = "default (the rig knows nothing of its air)"
    attrs: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        """Close every part, even if one of them fails."""
        errors = []
        for part in (self.audio, self.turntable, self.positioner):
            try:
                part.close()
            except Exception as exc:  # pragma: no cover - best effort
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
