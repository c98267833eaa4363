"""Real unit reports from the simulated lab: measure -> fit -> verify, once per session.

Procedures are the shipped ones on a coarse grid (30 deg turntable steps,
0.5 s sweeps) so the whole chain takes a few seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calib.cli.cmd_measure import measure_unit
from calib.procedure.model import SimFaults
from calib.report.model import UnitReport
from calib.stages.fit import fit_file
from calib.stages.unit import build_unit_report
from calib.stages.verify import verify_calibration

PROCEDURES = Path(__file__).resolve().parents[2] / "procedures"


def small_procedure(tmp: Path, product: str) -> Path:
    """``procedures/<product>.toml`` with a 30 deg grid and 0.5 s sweeps, written to ``tmp``."""
    text = (PROCEDURES / f"{product}.toml").read_text()
    text = re.sub(r"(?m)^duration_s = .*$", "duration_s = 0.5", text, count=1)
    text = re.sub(r"(?m)^step_deg = .*$", "step_deg = 30.0", text, count=1)
    assert "step_deg = 30.0" in text and "duration_s = 0.5" in text
    path = tmp / f"{product}-small.toml"
    path.write_text(text)
    return path


def build_report(tmp: Path, product: str, serial: str, faults: SimFaults | None = None) -> UnitReport:
    """Measure, fit and verify one simulated unit and assemble its report."""
    out = tmp / "measurements"
    char_path = measure_unit(str(small_procedure(tmp, product)), serial, "sim", str(out), False)
    fit = fit_file(char_path)
    return build_unit_report(verify_calibration(fit.path, "sim", out, faults=faults, progress=False))


@pytest.fixture(scope="session")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, UnitReport]:
    """``pass``: a good Duo 2; ``dead``: a Duo 2 whose left driver died after calibration;
    ``beam``: an Aurora 5 (5 drivers, centre beam, different checks)."""
    tmp = tmp_path_factory.mktemp("report-chain")
    return {
        "pass": build_report(tmp, "duo2", "SN-PASS-1"),
        "dead": build_report(tmp, "duo2", "SN-DEAD-2", SimFaults(dead_drivers=["left"])),
        "beam": build_report(tmp, "aurora5", "SN-BEAM-3"),
    }

