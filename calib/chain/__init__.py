"""The chain of one unit as a Python API: what ``calib run`` does, without the shell.

>>> from calib.chain import run_unit
>>> outcome = run_unit("procedures/aurora5.toml", "SN0001")   # doctest: +SKIP
>>> outcome.verdict                                            # doctest: +SKIP
'PASS'

Each stage is also callable alone: :func:`measure_unit`, :func:`fit_unit`,
:func:`verify_unit`, :func:`report_unit`.
"""

from calib.chain.run import ChainEvents, RunOutcome, fit_unit, report_unit, run_unit, verify_unit
from calib.stages.measure import measure_unit

__all__ = ["ChainEvents", "RunOutcome", "fit_unit", "measure_unit", "report_unit", "run_unit", "verify_unit"]
