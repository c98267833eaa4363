"""Session fixtures for the stage tests: Aurora 5 units measured once on the virtual lab.

Measuring one unit (72 azimuths x 2 arc microphones + 9 head positions, MESM)
takes about 15 s, so every measurement and fit here is session-scoped and
shared by all tests of the folder. Unit "SN-B" is only measured when a test
asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from calib.procedure import load_procedure
from calib.procedure.model import Procedure
from calib.stages.fit import FitResult

AURORA5 = Path(__file__).resolve().parents[2] / "procedures" / "aurora5.toml"


@dataclass(frozen=True)
class FittedUnit:
    """A unit measured on the sim and fitted: the files and the fit result."""

    serial: str
    measurement: Path
    fit: FitResult

    @property
    def calibration(self) -> Path:
        """The calibration file written by ``fit_file``."""
        assert self.fit.path is not None
        return self.fit.path


def _measure_and_fit(tmp_path_factory: pytest.TempPathFactory, serial: str) -> FittedUnit:
    from calib.cli.cmd_measure import measure_unit
    from calib.stages.fit import fit_file

    root = tmp_path_factory.mktemp(f"aurora5-{serial}")
    measurement = measure_unit(str(AURORA5), serial, "sim", str(root / "measurements"), resume=False)
    fit = fit_file(measurement, root / "calibration.h5")
    return FittedUnit(serial, measurement, fit)


@pytest.fixture(scope="session")
def aurora5() -> Procedure:
    """The Aurora 5 procedure (5 drivers, CTC + centre beam)."""
    return load_procedure(str(AURORA5))


@pytest.fixture(scope="session")
def aurora5_unit_a(tmp_path_factory: pytest.TempPathFactory) -> FittedUnit:
    """Unit "SN-A" characterized on the sim and fitted (``fit_file``)."""
    return _measure_and_fit(tmp_path_factory, "SN-A")


@pytest.fixture(scope="session")
def aurora5_unit_b(tmp_path_factory: pytest.TempPathFactory) -> FittedUnit:
    """Unit "SN-B" characterized on the sim and fitted (``fit_file``)."""
    return _measure_and_fit(tmp_path_factory, "SN-B")
