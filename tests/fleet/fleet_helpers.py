"""Synthetic unit records for the results-store tests (no measurement needed)."""

from __future__ import annotations

import hashlib

from calib.fleet.record import CheckRow, StageRun, UnitRecord


def sha(text: str) -> str:
    """A SHA-256 standing for a file's."""
    return hashlib.sha256(text.encode()).hexdigest()


def synthetic_unit(serial: str, checks: dict[str, tuple[float, float, str]], time_utc: str,
                   product: str = "duo2", station: str = "st-1", figures: dict[str, float] | None = None,
                   bands: list[tuple[str, float, float]] | None = None) -> UnitRecord:
    """A unit record with characterize -> fit -> verify runs; ``checks``: name -> (value, limit, op)."""
    rows = [CheckRow(name, value, limit, "dB", op, bool(value >= limit if op == ">=" else value <= limit))
            for name, (value, limit, op) in checks.items()]
    verdict = "PASS" if all(r.passed for r in rows) else "FAIL"
    return UnitRecord(product, product.upper(), serial, station, [
        StageRun("characterize", sha(f"char {product} {serial} {time_utc}"), time_utc, rig="sim", simulated=True,
                 metrics=figures or {},
                 files=[("characterize", f"measurements/{serial}/characterize.h5", sha(f"char {serial}"))]),
        StageRun("fit", sha(f"fit {product} {serial} {time_utc}"), time_utc, verdict=verdict, checks=rows,
                 files=[("calibration", f"measurements/{serial}/calibration.h5", sha(f"fit {serial}"))]),
        StageRun("verify", sha(f"verify {product} {serial} {time_utc}"), time_utc, rig="sim", simulated=True,
                 verdict=verdict, calibration_serial=serial, checks=rows, bands=bands or [],
                 files=[("verification", f"measurements/{serial}/verify.h5", sha(f"verify {serial}"))]),
    ])
