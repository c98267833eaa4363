"""The results table: rows, column names, column union, summary metrics, yield."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calib.errors import FileFormatError
from calib.report.results import (
    IDENTITY_COLUMNS,
    append_result,
    check_columns,
    column_name,
    read_results,
    result_row,
    yield_summary,
)
from calib.stages.verdict import Check


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("cancellation L @ centre", "cancellation_l_centre"),
        ("cancellation R @ holdout_left_7cm (median)", "cancellation_r_holdout_left_7cm_median"),
        ("beam null depth at +90 deg", "beam_null_depth_at_p90_deg"),
        ("beam null depth at -90 deg", "beam_null_depth_at_m90_deg"),
        ("beam main lobe within +-45 deg", "beam_main_lobe_within_pm45_deg"),
        ("cancellation L @ pos-2", "cancellation_l_pos_2"),
        ("filter effort", "filter_effort"),
    ],
)
def test_column_names(name: str, column: str) -> None:
    assert column_name(name) == column


def test_check_columns_value_unit_and_pass_flag() -> None:
    checks = [Check("filter effort", 5.25, 15.0, "dB", True, upper=True), Check("THD @ 1k", 1.5, 1.0, "%", False),
              Check("filter effort", 20.0, 15.0, "dB", False, upper=True)]
    assert check_columns(checks) == {
        "filter_effort_db": 5.25, "filter_effort_pass": True,
        "thd_1k_pct": 1.5, "thd_1k_pass": False,
        "filter_effort_2_db": 20.0, "filter_effort_2_pass": False,
    }


def _check(report, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


def test_summary_metrics_agree_with_the_checks(reports) -> None:
    # Duo 2's target curve is flat (12 dB), so each design check sits at its
    # position's smallest cancellation gain: the row's minimum is theirs.
    duo = reports["pass"]
    row = result_row(duo)
    design = [c.value for c in duo.checks if c.name.startswith("cancellation") and "(median)" not in c.name]
    np.testing.assert_allclose(row["min_design_cg_db"], min(design), rtol=1e-12)
    medians = [c.value for c in duo.checks if "(median)" in c.name]
    assert min(medians) - 1e-9 <= row["median_holdout_cg_db"] <= max(medians) + 1e-9
    np.testing.assert_allclose(row["effort_max_db"], _check(duo, "filter effort").value, rtol=1e-12)
    assert math.isnan(row["min_null_depth_db"]) and math.isnan(row["min_main_lobe_db"])  # no beam target

    beam = reports["beam"]
    row = result_row(beam)
    nulls = [c.value for c in beam.checks if c.name.startswith("beam null depth")]
    np.testing.assert_allclose(row["min_null_depth_db"], min(nulls), rtol=1e-12)
    lobe = _check(beam, "beam main lobe within +-45 deg").value
    np.testing.assert_allclose(row["min_main_lobe_db"], lobe, rtol=1e-12)
    assert row["serial"] == beam.serial and row["product_id"] == "aurora5"
    assert row["calibration_sha256"] == beam.hashes["calibration"] and len(row["verification_sha256"]) == 64


def test_two_appends_two_rows_then_a_second_product_adds_columns(reports, tmp_path) -> None:
    csv = tmp_path / "measurements" / "results.csv"
    rows = [append_result(reports[key], csv) for key in ("pass", "dead")]
    df = read_results(csv)
    assert list(df["serial"]) == ["SN-PASS-1", "SN-DEAD-2"]
    assert list(df["verdict"]) == ["PASS", "FAIL"]
    assert list(df.columns[: len(IDENTITY_COLUMNS)]) == list(IDENTITY_COLUMNS)
    for i, key in enumerate(("pass", "dead")):
        for check in reports[key].checks:
            stem = column_name(check.name)
            value_column = f"{stem}_db" if check.unit == "dB" else stem  # polarity checks have no unit
            np.testing.assert_allclose(df.loc[i, value_column], check.value, rtol=1e-12)
            assert bool(df.loc[i, f"{stem}_pass"]) is check.passed
    assert rows[1]["checks_failed"] == df.loc[1, "checks_failed"] == sum(not c.passed for c in reports["dead"].checks)

    append_result(reports["beam"], csv)
    df = read_results(csv)
    assert len(df) == 3 and list(df["product_id"]) == ["duo2", "duo2", "aurora5"]
    beam_only = "beam_null_depth_at_p90_deg_db"
    duo_only = "cancellation_l_left_2cm_db"
    assert beam_only in df.columns and duo_only in df.columns
    assert df[beam_only].isna().tolist() == [True, True, False]
    assert df[duo_only].isna().tolist() == [False, False, True]
    np.testing.assert_allclose(df.loc[2, beam_only], _check(reports["beam"], "beam null depth at +90 deg").value,
                               rtol=1e-12)
    assert sorted(p.name for p in csv.parent.iterdir()) == [".results.csv.lock", "results.csv"], "no temp files left"

    summary = yield_summary(df)
    duo = summary["per_product"]["duo2"]
    assert (duo["units"], duo["passed"], duo["failed"], duo["yield_pct"]) == (2, 1, 1, 50.0)
    beam_pass = int(reports["beam"].verdict == "PASS")
    assert (summary["units"], summary["passed"]) == (3, 1 + beam_pass)
    assert summary["yield_pct"] == pytest.approx(100.0 * (1 + beam_pass) / 3, rel=1e-12)


def _table(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["product_id", "serial", "time_utc", "verdict"])


def test_yield_counts_units_by_their_latest_verification() -> None:
    df = _table([
        ("duo2", "A", "2026-01-01T10:00:00+00:00", "PASS"),
        ("duo2", "B", "2026-01-01T11:00:00+00:00", "FAIL"),
        ("duo2", "B", "2026-01-02T09:00:00+00:00", "PASS"),  # reworked, passed
        ("duo2", "C", "2026-01-02T10:00:00+00:00", "FAIL"),
        ("aurora5", "A", "2026-01-01T12:00:00+00:00", "FAIL"),  # another product's serial A
        ("aurora5", "D", "2026-01-03T08:00:00+00:00", "PASS"),
        ("aurora5", "D", "2026-01-02T08:00:00+00:00", "FAIL"),  # older row listed later
    ])
    s = yield_summary(df)
    assert (s["units"], s["passed"], s["failed"], s["verifications"]) == (5, 3, 2, 7)
    assert s["yield_pct"] == pytest.approx(60.0, rel=1e-12)
    assert (s["first_pass"], s["first_pass_yield_pct"]) == (1, pytest.approx(20.0, rel=1e-12))
    duo, aurora = s["per_product"]["duo2"], s["per_product"]["aurora5"]
    assert (duo["units"], duo["passed"], duo["yield_pct"], duo["first_pass"]) == (3, 2, pytest.approx(200 / 3), 1)
    assert (aurora["units"], aurora["passed"], aurora["yield_pct"], aurora["first_pass"]) == (2, 1, 50.0, 0)


def test_yield_of_an_empty_table_and_bad_tables() -> None:
    s = yield_summary(_table([]))
    assert (s["units"], s["passed"], s["per_product"]) == (0, 0, {}) and math.isnan(s["yield_pct"])
    with pytest.raises(ValueError, match="missing time_utc"):
        yield_summary(pd.DataFrame({"serial": ["A"], "product_id": ["x"], "verdict": ["PASS"]}))


def test_read_results_errors(tmp_path) -> None:
    with pytest.raises(FileFormatError, match="no such results table"):
        read_results(tmp_path / "missing.csv")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match=r"missing column\(s\) serial, time_utc, product_id, verdict"):
        read_results(other)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FileFormatError, match="not a readable results CSV"):
        read_results(empty)


def test_append_refuses_a_foreign_csv_and_leaves_it_alone(reports, tmp_path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="missing column"):
        append_result(reports["pass"], csv)
    assert csv.read_text() == "a,b\n1,2\n"
