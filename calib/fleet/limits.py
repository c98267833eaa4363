"""Acceptance limits from a golden sample: mean ± k·σ per check and per band, stored versioned per product.

A product's line often knows what a good unit looks like better than its
design targets do: N units that passed and were judged good by ear and by
hand set a window mean ± k·σ (sample σ, ``ddof=1``) around every check
value and every band of every verified curve (cancellation per position and
input, beam null depth and main lobe). The window is two-sided on purpose:
a unit far *better* than the golden sample (a cancellation 15 dB deeper than
any good unit) is as suspicious as a worse one, usually a measurement fault.

Each derivation is a new version of the product's limits; ``calib report``
judges every later unit of the product against the newest version, as one
extra check per quantity (``golden: <name>``, value = the worst deviation in
σ over its bands, limit = k) that enters the verdict, and records which
version it used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from calib.errors import CalibError
from calib.fleet import schema as s
from calib.fleet.db import utc_now
from calib.fleet.record import StageRun
from calib.fleet.store import ResultsStore
from calib.stages.verdict import Check

MIN_GOLDEN_UNITS = 3


class LimitsError(CalibError, ValueError):
    """Golden limits cannot be derived or applied as asked."""


@dataclass
class LimitSet:
    """One stored version of a product's golden limits (``values``: name, band_hz, mean, std, lower, upper)."""

    id: int
    product_id: str
    version: int
    k: float
    n_units: int
    serials: list[str]
    created_utc: str
    values: pd.DataFrame


def golden_values(checks: pd.DataFrame, bands: pd.DataFrame, k: float) -> pd.DataFrame:
    """mean, σ (``ddof=1``), lower and upper per check (``band_hz`` NaN) and per (curve, band).

    ``checks`` and ``bands`` are long tables of the golden units (columns
    ``check``/``curve``, ``band_hz``, ``value``); equality checks (polarity)
    and NaN values do not take part.
    """
    scalar = checks[checks["op"] != "=="][["check", "value"]].rename(columns={"check": "name"})
    scalar = scalar.assign(band_hz=np.nan)
    curves = bands[["curve", "band_hz", "value"]].rename(columns={"curve": "name"})
    both = pd.concat([scalar, curves], ignore_index=True).dropna(subset=["value"])
    stats = (both.groupby(["name", "band_hz"], dropna=False, sort=True)["value"]
             .agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else np.nan).reset_index())
    stats = stats.dropna(subset=["std"])
    stats["lower"] = stats["mean"] - k * stats["std"]
    stats["upper"] = stats["mean"] + k * stats["std"]
    return stats


def derive_limits(store: ResultsStore, product: str, serials: list[str], k: float = 3.0, note: str = "") -> LimitSet:
    """Derive and store a new version of ``product``'s limits from the latest verification of each golden serial.

    Raises
    ------
    LimitsError
        Fewer than :data:`MIN_GOLDEN_UNITS` serials, a serial with no
        verification of the product, a golden unit that failed, or ``k <= 0``.
    """
    if not k > 0:
        raise LimitsError(f"--k: expected a positive number of standard deviations, got {k}")
    serials = list(dict.fromkeys(serials))
    if len(serials) < MIN_GOLDEN_UNITS:
        raise LimitsError(f"--golden: expected at least {MIN_GOLDEN_UNITS} known-good serials, got {len(serials)}")
    runs = store.runs(product=product)
    latest = runs.drop_duplicates("serial", keep="last").set_index("serial")
    missing = [sn for sn in serials if sn not in latest.index]
    if missing:
        raise LimitsError(f"--golden: no verification of product {product!r} for serial(s) {', '.join(missing)}")
    failed = [sn for sn in serials if latest.loc[sn, "verdict"] != "PASS"]
    if failed:
        raise LimitsError(f"--golden: serial(s) {', '.join(failed)} failed their latest verification; "
                          "a golden sample must pass")
    ids = set(int(latest.loc[sn, "run_id"]) for sn in serials)
    checks = store.checks(product=product)
    bands = store.bands(product=product)
    values = golden_values(checks[checks["run_id"].isin(ids)], bands[bands["run_id"].isin(ids)], k)
    with store.engine.begin() as conn:
        product_ref = conn.execute(select(s.products.c.id).where(s.products.c.product_id == product)).scalar_one()
        version = 1 + int(conn.execute(select(func.coalesce(func.max(s.limit_sets.c.version), 0))
                                       .where(s.limit_sets.c.product_ref == product_ref)).scalar_one())
        set_id = conn.execute(s.limit_sets.insert().returning(s.limit_sets.c.id), {
            "product_ref": product_ref, "version": version, "k": float(k), "n_units": len(serials),
            "serials": ",".join(serials), "created_utc": utc_now(), "note": note}).scalar_one()
        rows = [{"limit_set_ref": set_id, "name": r.name, "band_hz": None if np.isnan(r.band_hz) else float(r.band_hz),
                 "mean": float(r.mean), "std": float(r.std), "lower": float(r.lower), "upper": float(r.upper)}
                for r in values.itertuples()]
        if rows:
            conn.execute(s.limit_values.insert(), rows)
    saved = load_limits(store, product, version)
    assert saved is not None  # written in the transaction above
    return saved


def load_limits(store: ResultsStore, product: str, version: int | None = None) -> LimitSet | None:
    """Version ``version`` (default: the newest) of ``product``'s limits, or None if it has none."""
    ls, p = s.limit_sets, s.products
    q = select(ls, p.c.product_id).join(p, ls.c.product_ref == p.c.id).where(p.c.product_id == product)
    q = q.where(ls.c.version == version) if version is not None else q.order_by(ls.c.version.desc()).limit(1)
    with store.engine.connect() as conn:
        row = conn.execute(q).mappings().first()
        if row is None:
            return None
        lv = s.limit_values.c
        values = pd.read_sql_query(select(lv.name, lv.band_hz, lv.mean, lv.std, lv.lower, lv.upper)
                                   .where(lv.limit_set_ref == row["id"]).order_by(lv.id), conn)
    values["band_hz"] = values["band_hz"].astype(float)
    return LimitSet(int(row["id"]), row["product_id"], int(row["version"]), float(row["k"]), int(row["n_units"]),
                    row["serials"].split(","), row["created_utc"], values)


def golden_checks(limits: LimitSet, run: StageRun) -> list[Check]:
    """One check per limited quantity of a verify run: worst |x − mean| / σ over its bands, ``<= k``.

    A quantity whose σ is 0 passes only at its mean exactly; one the unit
    lacks (NaN) fails.
    """
    values: dict[tuple[str, float | None], float | None] = {(c.name, None): c.value for c in run.checks}
    values.update({(name, _band_key(band)): value for name, band, value in run.bands})
    out: list[Check] = []
    for name, rows in limits.values.groupby("name", sort=False):
        worst, where = -1.0, ""
        for r in rows.itertuples():
            x = values.get((name, _band_key(r.band_hz)), np.nan)
            x = np.nan if x is None else float(x)
            z = np.inf if not np.isfinite(x) else (abs(x - r.mean) / r.std if r.std > 0 else
                                                 (0.0 if x == r.mean else np.inf))
            if z > worst:
                worst, where = z, "" if np.isnan(r.band_hz) else f"worst band {r.band_hz:g} Hz"
        detail = f"limits v{limits.version}, mean ± {limits.k:g} sigma of {limits.n_units} units"
        out.append(Check(f"golden: {name}", float(worst), float(limits.k), "sigma", bool(worst <= limits.k), True,
                         f"{detail}; {where}" if where else detail))
    return out


def _band_key(band: float | None) -> float | None:
    """Bands compared to 1 mHz (they come from float arithmetic on two machines); None: a scalar check."""
    return None if band is None or np.isnan(band) else round(float(band), 3)
