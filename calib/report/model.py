"""What a unit report is made of (the verify stage fills it, the PDF and the results table read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from calib.procedure.model import Procedure
from calib.stages.checks import Check
from calib.stages.gating import Gates
from calib.stages.metrics import Metrics
from calib.store.calibration import Calibration
from calib.store.measurement import Measurement


@dataclass
class UnitReport:
    """Everything known about one verified unit.

    Attributes
    ----------
    procedure : Procedure
        As stored in the calibration file.
    characterize, verification : Measurement
        The characterize measurement the filters were fitted from, and the
        verify re-measurement through the filters (stage ``verify``).
    calibration : Calibration
    predicted, verified : Metrics
        :func:`calib.stages.metrics.product_metrics` of the prediction and of the re-measurement.
    checks, predicted_checks : list of Check
        Verdict lines of the verified (binding) and the predicted metrics.
    verdict : str
        ``"PASS"`` or ``"FAIL"`` (from ``checks``).
    files : dict
        ``characterize``, ``calibration``, ``verification`` paths.
    hashes : dict
        SHA-256 of each of ``files``.
    station : str
        Where it was measured (the rig name, e.g. ``sim``).
    gates : Gates or None
        The characterize measurement's IR gates (:mod:`calib.stages.gating`).
    spinorama : dict or None
        ``"predicted"`` and ``"verified"`` :class:`calib.stages.spinorama.Spinorama`
        when the procedure measured the sphere, else None.
    """

    procedure: Procedure
    characterize: Measurement
    calibration: Calibration
    verification: Measurement
    predicted: Metrics
    verified: Metrics
    checks: list[Check]
    predicted_checks: list[Check]
    verdict: str
    files: dict[str, Path] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    station: str = "sim"
    gates: Gates | None = None
    spinorama: dict | None = None

    @property
    def serial(self) -> str:
        """The unit measured in verification."""
        return self.verification.serial

    @property
    def simulated(self) -> bool:
        """True when no real air was involved."""
        return self.verification.simulated or self.characterize.simulated
