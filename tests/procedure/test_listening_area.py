"""``[listening_area]``: the measured grid, the cells, the physics limit on their size, ``calib check``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.capture.plan import plan_characterize
from calib.capture.schedule import capture_seconds
from calib.cli.main import main
from calib.errors import ProcedureError
from calib.procedure.area import cell_phase_error_of
from calib.procedure.load import load_procedure, parse_procedure
from calib.solve.area import allowed_phase_error_rad

AREA = Path(__file__).resolve().parents[2] / "procedures" / "aurora5_area.toml"


def _variant(**fields: float) -> str:
    text = AREA.read_text()
    for key, value in fields.items():
        text, n = re.subn(rf"(?m)^{key} = [^ \n]*", f"{key} = {value!r}", text, count=1)
        assert n == 1, key
    return text


def test_grid_cells_and_measured_positions():
    proc = load_procedure(AREA)
    area = proc.listening_area
    xs, ys, yaws = area.measured_axes()
    assert_allclose(xs, [0.85, 1.0, 1.15])
    assert_allclose(ys, [-0.25, 0.0, 0.25])
    assert_allclose(yaws, [160.0, 180.0, 200.0])
    grid = area.grid_positions()
    assert len(grid) == 27 and not any(p.design or p.verify for p in grid)
    assert len({p.name for p in grid}) == 27
    # characterize measures the procedure's positions, then the grid; verify does not.
    plan = plan_characterize(proc)
    assert [p.name for p in plan.positions] == [p.name for p in proc.positions] + [p.name for p in grid]
    centres, cell_yaws, half, counts = area.cells()
    assert counts == (5, 20, 4) and centres.shape == (400, 3)
    assert_allclose(half, (0.03, 0.0125, 5.0))
    # Cells tile the area exactly: outermost centres half a cell inside its edges.
    assert_allclose([centres[:, 0].min(), centres[:, 1].max(), cell_yaws.max()], [0.88, 0.2375, 195.0])


def test_a_finer_measured_step_gives_more_points_not_a_wider_area():
    area = parse_procedure(_variant(measure_lateral_m=0.2), source="v.toml").listening_area
    assert_allclose(area.measured_axes()[1], [-0.25, -0.25 / 3, 0.25 / 3, 0.25])  # 3 steps of 0.167 <= 0.2


def test_cells_meet_the_phase_limit_and_larger_ones_are_refused():
    proc = load_procedure(AREA)
    assert cell_phase_error_of(proc) <= allowed_phase_error_rad(15.0)
    with pytest.raises(ProcedureError, match=r"v\.toml: listening_area\.cell_lateral_m: cells too large for 15 dB "
                                             r"at 6000 Hz: .* expected cell_lateral_m <= 0\.0[12]\d*, got 0\.05"):
        parse_procedure(_variant(cell_lateral_m=0.05), source="v.toml")
    # A lower target at the top frequency tolerates larger cells: same cells, 10 dB at 6 kHz.
    text = _variant(cell_lateral_m=0.05).replace("curve_hz_db = [[500.0, 15.0], [6000.0, 15.0]]",
                                                 "curve_hz_db = [[500.0, 15.0], [6000.0, 10.0]]")
    assert parse_procedure(text, source="v.toml").listening_area.cell_lateral_m == 0.05


def test_area_reaching_the_device_and_bad_fields_are_refused():
    with pytest.raises(ProcedureError, match=r"listening_area: expected every head at least 0\.3 m from the device"):
        parse_procedure(_variant(depth_m=0.8, measure_depth_m=0.4), source="v.toml")
    with pytest.raises(ProcedureError, match=r"listening_area\.lateral_m"):
        parse_procedure(_variant(lateral_m=-0.1), source="v.toml")


def test_calib_check_states_area_station_time(capsys):
    assert main(["check", str(AREA)]) == 0
    out = capsys.readouterr().out
    proc = load_procedure(AREA)
    step_min = capture_seconds(plan_characterize(proc)) / 60
    # 27 grid heads against every cell's corners (6 x 21 x 5 lattice) and centres (400).
    assert "area cells      400 (5 depth x 20 lateral x 4 yaw)" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("  area station"))
    grid_min, direct_min = (float(v) for v in re.findall(r"([\d.]+) min", line))
    assert "27 head positions (3 x 3 x 3)" in line and "every cell measured: 1030 positions" in line
    assert_allclose([grid_min, direct_min], [27 * step_min, 1030 * step_min], atol=0.051)
    assert np.isclose(direct_min / grid_min, 1030 / 27, rtol=0.01)
    # The verification's hidden heads: counted in the verify time, which grows by as much.
    from calib.capture.schedule import estimate_unit_time_s, verify_plan_estimate

    verify_min = capture_seconds(verify_plan_estimate(proc)) / 60
    line = next(ln for ln in out.splitlines() if ln.startswith("  area verify"))
    assert "6 hidden heads through their cells" in line and "each >= 15 dB" in line
    assert_allclose(float(re.search(r"([\d.]+) min", line).group(1)), 6 * verify_min, atol=0.051)
    none = proc.model_copy(update={"listening_area": proc.listening_area.model_copy(update={"hidden_positions": 0})})
    assert_allclose(estimate_unit_time_s(proc) - estimate_unit_time_s(none), 6 * verify_min * 60, rtol=1e-9)
