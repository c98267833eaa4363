"""Real unit reports from the simulated lab: measure -> fit -> verify, once per session.

Procedures are the shipped ones on a coarse grid (30 deg turntable steps,
0.5 s sweeps) so the whole chain takes a few seconds; the units come from the
run-wide ``sim_units`` (tests/conftest.py).
"""

from __future__ import annotations

import pytest

from calib.procedure.spec import SimFaults
from calib.stages.unit_report import UnitReport


def build_report(sim_units, product: str, serial: str, faults: SimFaults | None = None) -> UnitReport:
    """Measure, fit and verify one simulated unit (30 deg grid, 0.5 s sweeps) and assemble its report.

    ``faults`` are present during verification only (the unit was healthy when calibrated).
    """
    return sim_units.unit(product, serial, step_deg=30.0, duration_s=0.5).verified(faults)


@pytest.fixture(scope="session")
def reports(sim_units) -> dict[str, UnitReport]:
    """Verified report fixtures: ``pass``, ``dead`` and ``beam``.

    ``pass``: a good Duo 2; ``dead``: a Duo 2 whose left driver died after calibration;
    ``beam``: an Aurora 5 (5 drivers, centre beam, different checks).
    """
    return {
        "pass": build_report(sim_units, "duo2", "SN-PASS-1"),
        "dead": build_report(sim_units, "duo2", "SN-DEAD-2", SimFaults(dead_drivers=["left"])),
        "beam": build_report(sim_units, "aurora5", "SN-BEAM-3"),
    }
