"""Pass/fail checks of a unit's metrics against the procedure's targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.procedure.spec import Procedure
from calib.stages.product_metrics import BeamMetrics, Metrics

INPUTS = ("L", "R")


@dataclass(frozen=True)
class Check:
    """One verdict line: ``value`` compared with ``limit`` (``>=`` unless ``upper``)."""

    name: str
    value: float
    limit: float
    unit: str
    passed: bool
    upper: bool = False
    detail: str = ""
    exact: bool = False  # value must equal limit (e.g. a polarity)

    @property
    def op(self) -> str:
        """The comparison the check makes: ``>=``, ``<=`` or ``==``."""
        return "==" if self.exact else ("<=" if self.upper else ">=")

    def line(self) -> str:
        """``PASS  name  value (limit)`` for consoles and reports."""
        op = self.op
        mark = "PASS" if self.passed else "FAIL"
        extra = f"  [{self.detail}]" if self.detail else ""
        return f"{mark}  {self.name:<38} {self.value:7.1f} {self.unit} ({op} {self.limit:g}){extra}"


def _at_least(name: str, value: float, limit: float, unit: str = "dB", detail: str = "") -> Check:
    ok = bool(np.isfinite(value) and value >= limit)
    return Check(name, float(value), float(limit), unit, ok, False, detail)


def evaluate(proc: Procedure, metrics: Metrics) -> list[Check]:
    """Every check the procedure's targets define, for one set of metrics."""
    checks: list[Check] = []
    target = proc.targets.cancellation
    bands = metrics.ctc.bands_hz
    curve = target.min_db(bands)
    cg = metrics.ctc.cancellation_db
    names = metrics.ctc.positions
    by_name = {p.name: p for p in proc.positions}
    for p, name in enumerate(names):
        pos = by_name.get(name)
        if pos is None:
            continue
        for k, inp in enumerate(INPUTS):
            if pos.design:
                margin = cg[k, p] - curve
                worst = int(np.nanargmin(margin))
                checks.append(
                    _at_least(f"cancellation {inp} @ {name}", cg[k, p, worst], curve[worst] - target.tolerance_db,
                              detail=f"worst band {bands[worst]:g} Hz")
                )
            elif target.holdout_median_min_db is not None:
                checks.append(
                    _at_least(f"cancellation {inp} @ {name} (median)", float(np.nanmedian(cg[k, p])),
                              target.holdout_median_min_db)
                )
    beam = proc.targets.beam
    if beam is not None and metrics.beam is not None:
        checks += beam_checks(proc, metrics.beam)
    if proc.targets.effort is not None:
        value = metrics.effort.max_db
        limit = proc.targets.effort.max_db
        checks.append(Check("filter effort", value, limit, "dB", bool(value <= limit), upper=True))
    return checks


def _worst_band(name: str, values: np.ndarray, bands_hz: np.ndarray, limit: float) -> Check:
    """``values`` [B] judged at its lowest band against ``limit``."""
    worst = int(np.nanargmin(values))
    return _at_least(name, values[worst], limit, detail=f"worst band {bands_hz[worst]:g} Hz")


def beam_checks(proc: Procedure, metrics: BeamMetrics) -> list[Check]:
    """Return the centre beam, per 1/3-octave band: point nulls, sector (each side), main lobe, DI, WNG.

    The WNG is judged where the metrics carry it (the prediction: it needs
    the per-driver plant, which a verification of input C does not have).
    """
    beam = proc.targets.beam
    assert beam is not None
    bb = metrics.bands_hz
    tol = beam.tolerance_db
    checks = []
    for i, side in enumerate(("+", "-")):
        checks.append(_worst_band(f"beam null depth at {side}{beam.null_deg:g} deg", metrics.null_depth_db[i],
                                  bb, beam.null_depth_min_db - tol))
    if beam.null_sector_deg is not None and metrics.sector_rejection_db is not None:
        lo, hi = beam.null_sector_deg
        for i, side in enumerate(("+", "-")):
            checks.append(_worst_band(f"beam sector {side}{lo:g}..{side}{hi:g} deg rejection",
                                      metrics.sector_rejection_db[i], bb, beam.sector_rejection_min_db - tol))
    checks.append(_worst_band(f"beam main lobe within +-{beam.main_lobe_deg:g} deg", metrics.main_lobe_db, bb,
                              beam.main_lobe_min_db - tol))
    if beam.di_min_db is not None:
        checks.append(_worst_band("beam directivity index", metrics.di_db, bb, beam.di_min_db - tol))
    if beam.wng_min_db is not None and metrics.wng_db is not None:
        # a design limit, not a measured level: no tolerance
        checks.append(_worst_band("beam white-noise gain", metrics.wng_db, bb, beam.wng_min_db))
    return checks


def driver_checks(proc: Procedure, characterize) -> list[Check]:
    """Every driver present (best SNR over the arc) and of the expected acoustic polarity.

    The fit compensates anything it measures, including a reversed wiring, so
    these are judged on the characterize measurement itself: the polarity at
    the azimuth where the driver is loudest, the SNR at its best azimuth.
    """
    from calib.metrics.driver import ir_polarity
    from calib.stages.product_metrics import horizontal_mic_index

    mic = horizontal_mic_index(proc)
    snr = characterize.quality["directivity"]["snr_db"][:, mic]  # [A, S]
    irs = characterize.directivity_ir[:, mic]  # [A, S, N]
    loudest = np.argmax(np.sum(irs**2, axis=-1), axis=0)  # [S]
    checks = []
    for s, driver in enumerate(proc.drivers):
        best = float(np.nanmax(snr[:, s]))
        checks.append(_at_least(f"driver {driver.name} present (best SNR)", best, proc.sweep.min_snr_db))
        polarity = int(ir_polarity(irs[loudest[s], s]))
        checks.append(
            Check(f"driver {driver.name} polarity", float(polarity), float(driver.polarity), "",
                  polarity == driver.polarity, detail="+1 normal, -1 reversed", exact=True)
        )
    return checks


def verdict(checks: list[Check]) -> str:
    """``PASS`` if every check passed, else ``FAIL``."""
    return "PASS" if checks and all(c.passed for c in checks) else "FAIL"
