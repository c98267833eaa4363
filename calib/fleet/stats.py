"""Fleet statistics over the results store's tables: yield, process capability, outliers, drift.

Conventions (stated once, used everywhere):

- **Yield** counts units (product + serial) once per group with the verdict
  of their latest verification in it, as :func:`calib.report.results.yield_summary`
  does; ``first_pass_yield_pct`` uses their first.
- **Capability** uses each unit's latest verification. Calib's checks are
  one-sided (``>=`` a minimum or ``<=`` a maximum), so ``Cpk`` is
  ``(mean − LSL) / 3σ`` or ``(USL − mean) / 3σ`` and ``Cp``, which needs
  both limits, is NaN unless a check has both (σ: sample, ``ddof=1``).
  Equality checks (polarity) have no capability (NaN).
- **Outliers**: a unit whose value of some check lies more than
  :data:`OUTLIER_Z` robust standard deviations from the fleet median —
  the modified z-score ``0.6745 (x − median) / MAD`` of Iglewicz and Hoaglin —
  robust, so the faulty unit does not widen its own yardstick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OUTLIER_Z = 3.5
_MAD_TO_SIGMA = 0.6745  # Φ⁻¹(3/4): MAD of a normal sample is 0.6745 σ


def latest_per_unit(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of each unit's latest verification (by ``time_utc``, then ``run_id``)."""
    order = df.sort_values(["time_utc", "run_id"], kind="stable")
    last = order.drop_duplicates(["product_id", "serial"], keep="last")["run_id"]
    return df[df["run_id"].isin(set(last))]


def group_yield(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Yield per group of ``keys`` (``product_id``, ``station``, ``day`` — the UTC date of the run).

    Returns
    -------
    DataFrame
        ``keys`` + ``units``, ``passed``, ``failed``, ``yield_pct``,
        ``verifications``, ``first_pass_yield_pct``.
    """
    df = runs.assign(day=runs["time_utc"].str.slice(0, 10)).sort_values(["time_utc", "run_id"], kind="stable")
    rows = []
    for key, block in df.groupby(keys, sort=True) if keys else [((), df)]:
        last = block.drop_duplicates(["product_id", "serial"], keep="last")
        first = block.drop_duplicates(["product_id", "serial"], keep="first")
        units, passed = len(last), int((last["verdict"] == "PASS").sum())
        rows.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                "units": units,
                "passed": passed,
                "failed": units - passed,
                "yield_pct": 100.0 * passed / units if units else np.nan,
                "verifications": len(block),
                "first_pass_yield_pct": 100.0 * float((first["verdict"] == "PASS").mean()) if units else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "units", "passed", "failed", "yield_pct", "verifications",
                                       "first_pass_yield_pct"])


def capability(checks: pd.DataFrame) -> pd.DataFrame:
    """Cp and Cpk per product and check over each unit's latest verification.

    Returns
    -------
    DataFrame
        ``product_id``, ``check``, ``n``, ``mean``, ``std``, ``op``,
        ``limit``, ``cp``, ``cpk``, ``fail_pct``; sorted worst Cpk first.
    """
    latest = latest_per_unit(checks)
    rows = []
    for (product, name), block in latest.groupby(["product_id", "check"], sort=False):
        values = block["value"].astype(float)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else np.nan
        std = float(finite.std(ddof=1)) if len(finite) > 1 else np.nan
        op = str(block["op"].iloc[-1])
        limit = float(block["limit"].iloc[-1]) if pd.notna(block["limit"].iloc[-1]) else np.nan
        lsl = limit if op == ">=" else np.nan
        usl = limit if op == "<=" else np.nan
        cp = (usl - lsl) / (6.0 * std) if std > 0 else np.nan
        sides = [(mean - lsl) / (3.0 * std) if np.isfinite(lsl) else np.inf,
                 (usl - mean) / (3.0 * std) if np.isfinite(usl) else np.inf]
        cpk = min(sides) if std > 0 and op in (">=", "<=") and np.isfinite(min(sides)) else np.nan
        rows.append({"product_id": product, "check": name, "n": int(len(finite)), "mean": mean, "std": std,
                     "op": op, "limit": limit, "cp": cp, "cpk": cpk,
                     "fail_pct": 100.0 * float((~block["passed"].astype(bool)).mean())})
    out = pd.DataFrame(rows, columns=["product_id", "check", "n", "mean", "std", "op", "limit", "cp", "cpk",
                                      "fail_pct"])
    return out.sort_values("cpk", na_position="last", kind="stable").reset_index(drop=True)


def outliers(checks: pd.DataFrame, z_max: float = OUTLIER_Z) -> pd.DataFrame:
    """Units whose latest value of a check is more than ``z_max`` robust σ from the product's median.

    Returns
    -------
    DataFrame
        ``product_id``, ``serial``, ``run_id``, ``check``, ``value``,
        ``median``, ``z`` (modified z-score), largest ``|z|`` first. Checks
        whose MAD is 0 (all units alike, e.g. polarity) are skipped.
    """
    latest = latest_per_unit(checks)
    latest = latest[np.isfinite(latest["value"].astype(float))]
    parts = []
    for _, block in latest.groupby(["product_id", "check"], sort=False):
        x = block["value"].astype(float)
        median = float(x.median())
        mad = float((x - median).abs().median())
        if not mad > 0:
            continue
        z = _MAD_TO_SIGMA * (x - median) / mad
        hit = block.assign(median=median, z=z)[z.abs() > z_max]
        parts.append(hit[["product_id", "serial", "run_id", "check", "value", "median", "z"]])
    if not parts:
        return pd.DataFrame(columns=["product_id", "serial", "run_id", "check", "value", "median", "z"])
    out = pd.concat(parts, ignore_index=True)
    return out.reindex(out["z"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def drift(series: pd.DataFrame, name_column: str) -> pd.DataFrame:
    """Linear trend of each quantity over the order of units (per 100 units), least squares.

    ``series`` is a long table (``product_id``, ``serial``, ``time_utc``,
    ``name_column``, ``value``); each unit's latest value is used, in time order.
    Returns ``product_id``, ``name_column``, ``n``, ``mean``, ``slope_per_100``
    and ``slope_sigma`` (the trend over 100 units in units of the spread).
    """
    rows = []
    for (product, name), block in series.groupby(["product_id", name_column], sort=True):
        block = block.sort_values(["time_utc", "run_id"], kind="stable").drop_duplicates("serial", keep="last")
        y = block["value"].astype(float).to_numpy()
        ok = np.isfinite(y)
        y = y[ok]
        if y.size < 3:
            continue
        x = np.arange(ok.size, dtype=float)[ok]
        slope = float(np.polyfit(x, y, 1)[0]) * 100.0
        std = float(np.std(y, ddof=1))
        rows.append({"product_id": product, name_column: name, "n": int(y.size), "mean": float(y.mean()),
                     "slope_per_100": slope, "slope_sigma": slope / std if std > 0 else np.nan})
    return pd.DataFrame(rows, columns=["product_id", name_column, "n", "mean", "slope_per_100", "slope_sigma"])


DRIFT_PATTERNS = ("sensitivity_db", "latency_ms", "thd_pct")


def drift_series(store, checks: pd.DataFrame | None = None,
                 **filters: str | None) -> pd.DataFrame:
    """Return the drift-chart quantities per verify run.

    Return the drift-chart quantities per verify run: driver sensitivity, latency and THD (from the
    characterize run) and cancellation at the centre (the verified checks; ``checks`` if already
    queried), in a long table (``run_id``, ``product_id``, ``serial``, ``station``, ``time_utc``,
    ``quantity``, ``value``).
    """
    figures = store.drift_figures(**filters).rename(columns={"metric": "quantity"})
    figures = figures[figures["quantity"].str.endswith(DRIFT_PATTERNS)]
    checks = store.checks(**filters) if checks is None else checks
    centre = checks[checks["check"].str.contains("@ centre", regex=False)].rename(columns={"check": "quantity"})
    cols = ["run_id", "product_id", "serial", "station", "time_utc", "quantity", "value"]
    return pd.concat([figures[cols], centre[cols]], ignore_index=True)
