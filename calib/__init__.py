"""calib: measurement and calibration of multi-driver loudspeakers.

The chain is procedure -> rig -> measure -> fit -> verify -> report; see
``docs/README.md`` (the design documents) and the README. The names below
are the public Python API (``docs/architecture.md``, 'The Python API'): a
lab scripts ``calib`` with them as the command line does, e.g.::

    import calib

    outcome = calib.run_unit("procedures/aurora5.toml", "SN0001")
    print(outcome.verdict, outcome.report.pdf)

They are imported on first use, so ``import calib`` (and ``calib --help``)
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_API = {
    # the chain (calib run) and its stages
    "run_unit": "calib.chain",
    "measure_unit": "calib.chain",
    "fit_unit": "calib.chain",
    "verify_unit": "calib.chain",
    "report_unit": "calib.chain",
    "ChainEvents": "calib.chain",
    "RunOutcome": "calib.chain",
    "fit_file": "calib.stages.fit",
    "fit_measurement": "calib.stages.fit",
    "verify_calibration": "calib.stages.verify",
    "build_unit_report": "calib.stages.unit_report",
    "UnitReport": "calib.stages.unit_report",
    "Metrics": "calib.stages.product_metrics",
    # procedures and stations
    "load_procedure": "calib.procedure",
    "parse_procedure": "calib.procedure",
    "Procedure": "calib.procedure",
    "load_station": "calib.procedure.station_file",
    # files
    "read_measurement": "calib.store.measurement",
    "read_calibration": "calib.store.calibration",
    # rigs
    "open_rig": "calib.rig.factory",
    # rendering through a calibration
    "render_wav": "calib.render.wav_render",
    # errors
    "CalibError": "calib.errors",
}

__all__ = [
    "__version__",
    "run_unit",
    "measure_unit",
    "fit_unit",
    "verify_unit",
    "report_unit",
    "ChainEvents",
    "RunOutcome",
    "fit_file",
    "fit_measurement",
    "verify_calibration",
    "build_unit_report",
    "UnitReport",
    "Metrics",
    "load_procedure",
    "parse_procedure",
    "Procedure",
    "load_station",
    "read_measurement",
    "read_calibration",
    "open_rig",
    "render_wav",
    "CalibError",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'calib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what a type checker and an IDE see
    from calib.chain import (
        ChainEvents,
        RunOutcome,
        fit_unit,
        measure_unit,
        report_unit,
        run_unit,
        verify_unit,
    )
    from calib.errors import CalibError
    from calib.procedure import Procedure, load_procedure, parse_procedure
    from calib.procedure.station_file import load_station
    from calib.render.wav_render import render_wav
    from calib.rig.factory import open_rig
    from calib.stages.fit import fit_file, fit_measurement
    from calib.stages.product_metrics import Metrics
    from calib.stages.unit_report import UnitReport, build_unit_report
    from calib.stages.verify import verify_calibration
    from calib.store.calibration import read_calibration
    from calib.store.measurement import read_measurement
