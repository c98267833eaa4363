"""The production variant derived from a lab procedure, and ``calib check``'s station times."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from calib.capture.plan import plan_characterize
from calib.capture.schedule import estimate_unit_time_s
from calib.cli.main import main
from calib.errors import ProcedureError
from calib.procedure import load_procedure, parse_procedure
from calib.procedure.layout import check_azimuths
from calib.procedure.production import production_azimuths, production_procedure, production_text
from calib.procedure.summary import _fmt_duration

AURORA = Path(__file__).resolve().parents[2] / "procedures" / "aurora5.toml"
DUO = AURORA.with_name("duo2.toml")


@pytest.fixture(scope="module")
def lab():
    return load_procedure(AURORA)


def test_azimuths_follow_the_fit_and_the_checks(lab):
    # Aurora 5: main lobe +-45 every 10 (and its edge, continued to 50 and the edge + 10 = 55),
    # design sector 75..105 and checked 80..100 at the lab's 5 deg plus one step beyond (70, 110),
    # the rest every 90 (0, +-90 already in; -180). Engine order: 0 up, then -10 down to -180.
    side = [10, 20, 30, 40, 45, 50, 55, 70, 75, 80, 85, 90, 95, 100, 105, 110]
    assert_array_equal(production_azimuths(lab), [0.0, *side, *(-a for a in side), -180.0])


def test_the_variant_is_a_complete_procedure(lab):
    prod = production_procedure(lab)
    text = production_text(lab)
    assert text.startswith("# Production variant of ") and not re.search(r"(?m)^\[production\]", text)
    assert prod.production is None and prod.sha256 != lab.sha256
    sw = prod.sweep
    assert (sw.duration_s, sw.ir_length, sw.mesm_clear, sw.thd_sweep_s) == (0.75, 1536, "linear", 0.5)
    # Only the design positions are characterized; every position is verified.
    assert [p.characterize for p in prod.positions] == [p.design for p in lab.positions]
    plan = plan_characterize(prod)
    assert [p.name for p in plan.positions] == [p.name for p in lab.design_positions()]
    assert [p.name for p in prod.verify_positions()] == [p.name for p in lab.verify_positions()]
    # The verification reads a subset of the production grid: the checks' azimuths on it.
    assert set(check_azimuths(prod)) <= set(prod.turntable.grid_deg())
    assert len(check_azimuths(prod)) == 1 + 2 * (5 + 5)  # 0, lobe 10..45, sector 80..100
    # Everything else is the lab's (fit, targets, channels, drivers, sim).
    for section in ("fit", "targets", "channels", "drivers", "sim", "arc", "mics"):
        assert getattr(prod, section) == getattr(lab, section), section


def test_check_prints_lab_and_production_station_time(lab, capsys):
    assert main(["check", str(AURORA)]) == 0
    out = capsys.readouterr().out
    lab_line = re.search(r"estimated time  (.*) per unit", out).group(1)
    prod_line = re.search(r"production      (.*) per unit: 34 azimuths, 5 of 9 positions characterized", out).group(1)
    assert lab_line == _fmt_duration(estimate_unit_time_s(lab))
    assert prod_line == _fmt_duration(estimate_unit_time_s(production_procedure(lab)))
    assert main(["check", str(DUO)]) == 0
    assert "production " not in capsys.readouterr().out  # no [production] table, no variant


def test_a_procedure_without_production_table_is_refused(capsys):
    with pytest.raises(ProcedureError, match=r"duo2\.toml: production: expected a \[production\] table"):
        production_text(load_procedure(DUO))
    assert main(["grid-study", str(DUO), "--serial", "SN-A"]) == 2
    err = capsys.readouterr().err
    assert re.match(r"^calib: error: .*duo2\.toml: production: expected a \[production\] table", err)
    assert err.count("\n") == 1


def test_rest_step_off_the_lab_grid_is_refused():
    text = AURORA.read_text().replace("rest_step_deg = 90.0", "rest_step_deg = 7.0")
    with pytest.raises(ProcedureError, match=r"production\.rest_step_deg: expected multiples on the lab grid, 7 deg"):
        production_azimuths(parse_procedure(text, source="p.toml"))


def test_a_design_position_must_be_characterized():
    text = AURORA.read_text().replace('xyz_m = [1.0, 0.0, 0.0]\n', 'xyz_m = [1.0, 0.0, 0.0]\ncharacterize = false\n', 1)
    with pytest.raises(ProcedureError, match=r"positions\[0\]\.characterize: expected true for a design position"):
        parse_procedure(text, source="p.toml")


def test_production_fields_are_validated():
    text = AURORA.read_text().replace('mesm_clear = "linear"       #', 'mesm_clear = "some"       #')
    with pytest.raises(ProcedureError, match=r"production\.mesm_clear"):
        parse_procedure(text, source="p.toml")
    assert np.isfinite(estimate_unit_time_s(load_procedure(AURORA)))
