"""Session fixtures for the stage tests: Aurora 5 units measured once on the virtual lab.

Measuring one unit (72 azimuths x 2 arc microphones + 9 head positions, MESM)
takes about 15 s, so every measurement and fit here is session-scoped and
comes from the run-wide ``sim_units`` (tests/conftest.py). Unit "SN-B" is
only measured when a test asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from calib.procedure import load_procedure
from calib.procedure.spec import Procedure
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
        return self.fit.calibration_path


@pytest.fixture(scope="session")
def aurora5() -> Procedure:
    """The Aurora 5 procedure (5 drivers, CTC + centre beam)."""
    return load_procedure(str(AURORA5))


@pytest.fixture(scope="session")
def aurora5_unit_a(sim_units) -> FittedUnit:
    """Unit "SN-A" characterized on the sim and fitted (``fit_file``)."""
    unit = sim_units.unit("aurora5", "SN-A")
    return FittedUnit(unit.serial, unit.measurement, unit.fit)


@pytest.fixture(scope="session")
def aurora5_unit_b(sim_units) -> FittedUnit:
    """Unit "SN-B" characterized on the sim and fitted (``fit_file``)."""
    unit = sim_units.unit("aurora5", "SN-B")
    return FittedUnit(unit.serial, unit.measurement, unit.fit)


@pytest.fixture(scope="session")
def lab(sim_units, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Aurora 5 on a 15-degree grid (24 azimuths incl. 0 and +-90): unit A measured and fitted."""
    unit = sim_units.unit("aurora5", "SN-A", step_deg=15.0)
    return {"proc": unit.procedure, "out": unit.out, "calibration": unit.calibration, "unit": unit,
            "base": tmp_path_factory.mktemp("verify")}


@pytest.fixture(scope="session")
def own(lab: dict):
    """Unit A (15-degree grid) verified with its own calibration."""
    return lab["unit"].verified()
