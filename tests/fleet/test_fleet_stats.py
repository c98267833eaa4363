"""Yield, Cpk and outliers on a simulated batch of 30 units (one faulty), against a hand computation with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fleet_helpers import synthetic_unit

from calib.fleet import stats
from calib.fleet.fleet_report import fleet_view, summary_text, write_fleet_pdf
from calib.fleet.limits import LimitsError, derive_limits, golden_checks, load_limits
from calib.fleet.store import ResultsStore

LIMITS = {"cancellation L @ centre": (12.0, ">="), "filter effort": (15.0, "<=")}
FAULTY = "SN0017"


def _batch(seed: int = 7) -> tuple[list, pd.DataFrame]:
    """30 units, two stations over three days; SN0017 has a dead driver (cancellation collapses)."""
    rng = np.random.default_rng(seed)
    records, rows = [], []
    for i in range(30):
        serial = f"SN{i:04d}"
        cg = 20.0 + rng.normal(0, 1.5)
        effort = 8.0 + rng.normal(0, 1.0)
        if serial == FAULTY:
            cg = 3.0
        time_utc = f"2026-11-{28 + i // 10:02d}T{8 + i % 10:02d}:00:00Z"
        station = "st-a" if i % 2 else "st-b"
        values = {"cancellation L @ centre": (cg, 12.0, ">="), "filter effort": (effort, 15.0, "<=")}
        bands = [("cancellation L @ centre", f, cg + d) for f, d in ((500.0, 1.0), (1000.0, 0.0), (2000.0, -2.0))]
        records.append(synthetic_unit(serial, values, time_utc, station=station, bands=bands,
                                      figures={"driver left sensitivity_db": -10.0 + 0.01 * i}))
        rows += [{"serial": serial, "station": station, "day": time_utc[:10], "check": k, "value": v[0]}
                 for k, v in values.items()]
    return records, pd.DataFrame(rows)


@pytest.fixture
def batch_store(tmp_path):
    records, hand = _batch()
    store = ResultsStore(str(tmp_path / "fleet.db"))
    store.record_many(records[:15])
    for record in records[15:]:
        store.record(record)
    yield store, hand
    store.close()


def test_cpk_and_yield_match_a_hand_computation(batch_store) -> None:
    store, hand = batch_store
    view = fleet_view(store)
    # hand: Cpk of a lower limit (mean - LSL) / 3s, of an upper limit (USL - mean) / 3s, s with ddof=1
    for name, (limit, op) in LIMITS.items():
        x = hand.loc[hand["check"] == name, "value"]
        expected = (x.mean() - limit) / (3 * x.std()) if op == ">=" else (limit - x.mean()) / (3 * x.std())
        row = view.capability.set_index("check").loc[name]
        np.testing.assert_allclose(row["cpk"], expected, rtol=1e-9, atol=0)
        np.testing.assert_allclose([row["mean"], row["std"]], [x.mean(), x.std()], rtol=1e-9)
        assert np.isnan(row["cp"])  # one-sided limits: Cp undefined
    fail = hand[(hand["check"] == "cancellation L @ centre") & (hand["value"] < 12.0)]
    assert list(fail["serial"]) == [FAULTY]
    total = view.yield_product.iloc[0]
    assert (total["units"], total["passed"], total["failed"]) == (30, 29, 1)
    np.testing.assert_allclose(total["yield_pct"], 100.0 * 29 / 30, rtol=1e-9)
    per_day = hand.groupby("day")["serial"].nunique()
    fails_per_day = fail.groupby("day")["serial"].nunique().reindex(per_day.index, fill_value=0)
    np.testing.assert_allclose(view.yield_day["yield_pct"].to_numpy(),
                               (100.0 * (per_day - fails_per_day) / per_day).to_numpy(), rtol=1e-9)
    by_station = view.yield_station.set_index("station")
    assert by_station.loc["st-a", "units"] == 15 and by_station.loc["st-a", "failed"] == 1  # SN0017 is odd: st-a


def test_the_faulty_unit_is_the_outlier(batch_store) -> None:
    store, hand = batch_store
    out = stats.outliers(store.checks())
    assert set(out["serial"]) == {FAULTY}
    x = hand.loc[hand["check"] == "cancellation L @ centre", "value"]
    mad = (x - x.median()).abs().median()
    np.testing.assert_allclose(out.loc[0, "z"], 0.6745 * (3.0 - x.median()) / mad, rtol=1e-9)


def test_drift_and_the_fleet_report(batch_store, tmp_path) -> None:
    store, _ = batch_store
    view = fleet_view(store)
    sens = view.drift.set_index("quantity").loc["driver left sensitivity_db"]
    np.testing.assert_allclose(sens["slope_per_100"], 1.0, rtol=1e-9)  # +0.01 dB per unit
    assert "cancellation L @ centre" in set(view.drift["quantity"])
    text = summary_text(view)
    assert "yield per product" in text and FAULTY in text
    pdf = write_fleet_pdf(view, tmp_path / "fleet.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_golden_limits_judge_later_units(batch_store) -> None:
    store, hand = batch_store
    golden = [f"SN{i:04d}" for i in range(5)]
    lset = derive_limits(store, "duo2", golden, k=3.0, note="first five")
    assert lset.version == 1 and lset.n_units == 5
    x = hand[(hand["check"] == "filter effort") & hand["serial"].isin(golden)]["value"]
    row = lset.values[(lset.values["name"] == "filter effort") & lset.values["band_hz"].isna()].iloc[0]
    np.testing.assert_allclose([row["mean"], row["std"], row["upper"]],
                               [x.mean(), x.std(ddof=1), x.mean() + 3 * x.std(ddof=1)], rtol=1e-12)
    assert set(lset.values["band_hz"].dropna()) == {500.0, 1000.0, 2000.0}
    assert derive_limits(store, "duo2", golden[1:], k=2.0).version == 2
    assert load_limits(store, "duo2").version == 2 and load_limits(store, "duo2", 1).k == 3.0
    faulty = _batch()[0][17].runs[-1]
    checks = {c.name: c for c in golden_checks(load_limits(store, "duo2", 1), faulty)}
    bad = checks["golden: cancellation L @ centre"]
    assert not bad.passed and bad.limit == 3.0 and bad.value > 3.0
    good = _batch()[0][1].runs[-1]  # a golden unit sits inside its own window
    assert all(c.passed for c in golden_checks(load_limits(store, "duo2", 1), good))


def test_golden_limit_errors(batch_store) -> None:
    store, _ = batch_store
    with pytest.raises(LimitsError, match="at least 3 known-good serials, got 2"):
        derive_limits(store, "duo2", ["SN0001", "SN0002"])
    with pytest.raises(LimitsError, match="no verification of product 'duo2' for serial"):
        derive_limits(store, "duo2", ["SN0001", "SN0002", "NOPE"])
    with pytest.raises(LimitsError, match=f"{FAULTY} failed their latest verification"):
        derive_limits(store, "duo2", ["SN0001", "SN0002", FAULTY])
    with pytest.raises(LimitsError, match="--k: expected a positive"):
        derive_limits(store, "duo2", ["SN0001", "SN0002", "SN0003"], k=0)
    assert load_limits(store, "aurora5") is None
