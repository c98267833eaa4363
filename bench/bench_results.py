"""Results store benchmark: recording one unit and a fleet query over 100 000 recorded runs, SQLite and PostgreSQL.

    python bench/bench_results.py [--runs 100000]

Fills each database with simulated verifications (6 checks, 4 driver
figures each; bulk-loaded through ``record_many``), then times recording one
more unit (three stage runs with checks, figures and files; median of 20, on
a server with default durability) and ``calib fleet``'s query and
statistics (yield per product/station/day, Cpk, outliers, drift) over all
runs. PostgreSQL runs on a throwaway server (``calib.fleet.pgserver``);
where none can start, its rows say why. Prints one table; the SQLite figures
are the baseline the PostgreSQL ones are compared with.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from calib.fleet.fleet_report import fleet_view
from calib.fleet.pgserver import PostgresUnavailable, start_postgres
from calib.fleet.record import CheckRow, StageRun, UnitRecord
from calib.fleet.store import ResultsStore

CHECKS = (("cancellation L @ centre", 12.0, ">="), ("cancellation R @ centre", 12.0, ">="),
          ("beam null depth at +90 deg", 10.0, ">="), ("beam main lobe within +-45 deg", -3.0, ">="),
          ("driver left present (best SNR)", 40.0, ">="), ("filter effort", 15.0, "<="))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def unit(i: int, rng: np.random.Generator, tag: str = "") -> UnitRecord:
    """One simulated unit: characterize (driver figures) -> fit -> verify (six checks)."""
    means = (20.0, 20.0, 18.0, -1.0, 60.0, 8.0)
    rows = []
    for (name, limit, op), mean in zip(CHECKS, means, strict=True):
        value = float(mean + rng.normal(0, 1.5))
        rows.append(CheckRow(name, value, limit, "dB", op, value >= limit if op == ">=" else value <= limit))
    day, second = divmod(i, 2000)
    clock = f"{second // 3600 + 6:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    t = f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{clock}Z"
    serial = f"SN{i:07d}{tag}"
    figures = {f"driver {d} {q}": float(v) for d in ("left", "right")
               for q, v in (("sensitivity_db", -10 + rng.normal(0, 0.3)), ("latency_ms", 5 + rng.normal(0, 0.1)))}
    verdict = "PASS" if all(r.passed for r in rows) else "FAIL"
    return UnitRecord("duo2", "Duo 2", serial, f"st-{i % 4}", [
        StageRun("characterize", _sha(f"c{serial}"), t, metrics=figures,
                 files=[("characterize", f"measurements/{serial}/c.h5", _sha(f"fc{serial}"))]),
        StageRun("fit", _sha(f"f{serial}"), t, verdict=verdict),
        StageRun("verify", _sha(f"v{serial}"), t, verdict=verdict, checks=rows, calibration_serial=serial,
                 files=[("verification", f"measurements/{serial}/v.h5", _sha(f"fv{serial}"))]),
    ])


def bench(url: str, n_runs: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    with ResultsStore(url) as store:
        t0 = time.perf_counter()
        for start in range(0, n_runs, 2000):
            store.record_many([unit(i, rng) for i in range(start, min(start + 2000, n_runs))])
        load_s = time.perf_counter() - t0
        times = []
        for j in range(20):
            record = unit(n_runs + j, rng, tag="x")
            t0 = time.perf_counter()
            assert store.record(record).created
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        again = store.record(record)
        twice_s = time.perf_counter() - t0
        assert not again.created
        t0 = time.perf_counter()
        view = fleet_view(store)
        query_s = time.perf_counter() - t0
        assert len(view.runs) == n_runs + 20
    return {"load_s": load_s, "record_ms": 1e3 * statistics.median(times), "record_again_ms": 1e3 * twice_s,
            "fleet_query_s": query_s}


def _line(name: str, r: dict[str, float] | str) -> str:
    if isinstance(r, str):
        return f"{name:<11} {r}"
    return (f"{name:<11} {r['load_s']:9.1f}s {r['record_ms']:12.1f}ms {r['record_again_ms']:11.1f}ms "
            f"{r['fleet_query_s']:11.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    print(f"results store, {args.runs} verifications (+ their characterize and fit runs)")
    print(
        f"{'backend':<11} {'bulk load':>10} {'record 1 unit':>14} {'record again':>13} {'fleet query':>12}", flush=True
    )
    results: dict[str, dict[str, float] | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = bench(str(Path(tmp) / "bench.db"), args.runs)
    print(_line("sqlite", results["sqlite"]), flush=True)
    try:
        server = start_postgres(durable=True)
    except PostgresUnavailable as exc:
        results["postgresql"] = f"skipped: {exc}"
    else:
        try:
            results["postgresql"] = bench(server.create_database("bench"), args.runs)
        finally:
            server.stop()
    print(_line("postgresql", results["postgresql"]))
    base, pg = results["sqlite"], results["postgresql"]
    if isinstance(pg, dict) and isinstance(base, dict):
        print(f"postgresql / sqlite: record {pg['record_ms'] / base['record_ms']:.2f}x, "
              f"fleet query {pg['fleet_query_s'] / base['fleet_query_s']:.2f}x")


if __name__ == "__main__":
    main()
