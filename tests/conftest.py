"""Test-run-wide setup: simulated units built once and shared, ``slow`` marks, xdist groups.

- :class:`SimUnits` (session fixture ``sim_units``): measure (characterize) and
  fit a simulated unit of a shipped product on a given grid, once per
  configuration and test run; verify it once per fault set. The stage and
  report tests take their units from here, so a unit several folders need is
  measured once.
- ``area_unit``: an Aurora 5 with a small listening area (+-5 cm lateral,
  4 cells), characterized and fitted with its bank.
- Tests that use one of the expensive fixtures in :data:`SHARED_FIXTURES` are
  marked ``slow`` (``pytest -m "not slow"`` skips them) and put into one
  pytest-xdist group per fixture, so that with ``pytest -n 2 --dist loadgroup``
  (pyproject's default options) each shared unit is built on one worker only.
  The hook runs before pytest-xdist's own (which reads the group marks) and
  puts the long work first, so that it starts early.
- ``postgres``: one throwaway PostgreSQL server per test run (worker) for the
  fleet and the report tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests (tests/trust/test_properties.py): the suite runs a fixed sample of examples
# (derandomized: the same on every run, so CI is reproducible); HYPOTHESIS_PROFILE=explore searches
# afresh with ten times the examples. A random search once found a byte flip in an HDF5 attribute heap
# that crashes the HDF5 C library itself (a segfault no Python code can catch): exploring can find
# such library faults, CI must not stumble over them at random.
settings.register_profile("ci", derandomize=True, max_examples=150)
settings.register_profile("explore", derandomize=False, max_examples=1500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One BLAS/OpenMP thread per process: the suite runs one worker per core (-n 2), and the calib processes
# the tests start inherit this. OpenBLAS's extra threads busy-wait: with a thread per core in every worker
# they cost CPU and saved no time (tests/stages/test_beam_sector.py alone: 128 s of CPU with them, 108 s
# without, the same wall time; the whole suite 897 s and 8 min 00 s with them, 835 s and 7 min 28 s without).
# Set before a worker loads numpy; the environment wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

PROCEDURES = Path(__file__).resolve().parents[1] / "procedures"

#: Expensive fixtures -> xdist group: tests sharing one run on the same worker.
SHARED_FIXTURES = {
    "aurora5_unit_a": "aurora5-5deg",
    "aurora5_unit_b": "aurora5-5deg",
    "lab": "aurora5-15deg",
    "own": "aurora5-15deg",
    "reports": "reports",
    "pdfs": "reports",
    "baseline": "capture-baseline",
    "units": "aurora5-5deg",  # tests/stages/test_beam_sector.py: units A and B verified
    "runs": "rooms",  # tests/stages/test_rooms.py: one unit in free field and in three rooms
    "sphere_unit": "aurora5-sphere",  # tests/stages/test_unit_spinorama.py: one unit measured on the sphere
    "area_unit": "tracked",  # a small listening area's bank: tests/stages/test_tracked_bank.py, report, verify
}
#: Test modules that run whole measurement chains themselves (no shared fixture fits them).
SLOW_MODULES = {"test_run.py": "run", "test_resume.py": "resume", "test_tracked_bank.py": "tracked"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Longest work first, so that no long test or group starts last on one worker while the other has
    # run out of tests: tests marked slow themselves (single long runs, e.g. the kill test), then the
    # shared-unit groups, then the rest (stable: file order within each rank).
    rank = {item.nodeid: 0 if any(m.name == "slow" for m in item.own_markers) else 2 for item in items}
    for item in items:
        groups = sorted({SHARED_FIXTURES[f] for f in getattr(item, "fixturenames", ()) if f in SHARED_FIXTURES})
        module = SLOW_MODULES.get(item.path.name)
        if module is not None:
            groups = groups or [module]
        if item.get_closest_marker("jack") is not None:  # one JACK server at a time
            item.add_marker(pytest.mark.xdist_group("jack"))
            continue
        if groups:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(groups[0]))
            rank[item.nodeid] = min(rank[item.nodeid], 1)
    items.sort(key=lambda item: rank[item.nodeid])


def procedure_text(product: str, *, step_deg: float | None = None, duration_s: float | None = None,
                   settings: tuple[tuple[str, object], ...] = ()) -> str:
    """``procedures/<product>.toml`` with another turntable step and/or sweep duration.

    Other ``key = value`` lines are set too.
    """
    text = (PROCEDURES / f"{product}.toml").read_text()
    for key, value in settings:  # the first line setting ``key`` (e.g. ("ir_length", 2048))
        text, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value!r}", text, count=1)
        assert n == 1, f"{key} not found"
    if step_deg is not None:
        text, n = re.subn(r"(?m)^step_deg = .*$", f"step_deg = {step_deg!r}", text, count=1)
        assert n == 1, "turntable.step_deg not found"
    if duration_s is not None:
        text, n = re.subn(r"(?m)^duration_s = .*$", f"duration_s = {duration_s!r}", text, count=1)
        assert n == 1, "sweep.duration_s not found"
    return text


@dataclass
class SimUnit:
    """A simulated unit measured (characterize) and fitted; its verifications are memoized."""

    procedure: Path
    serial: str
    out: Path  # the measurements folder (verifications go there too)
    measurement: Path
    fit: object  # calib.stages.fit.FitResult
    _verified: dict = field(default_factory=dict, repr=False)

    @property
    def calibration(self) -> Path:
        """The calibration file written by ``fit_file``."""
        assert self.fit.path is not None
        return self.fit.path

    def verified(self, faults: object = None):
        """The unit's verification report (``faults``: a SimFaults present during verification only)."""
        from calib.stages.unit_report import build_unit_report
        from calib.stages.verify import verify_calibration

        key = repr(faults)
        if key not in self._verified:
            path = verify_calibration(self.calibration, "sim", self.out, faults=faults, progress=False)
            self._verified[key] = build_unit_report(path)
        return self._verified[key]


class SimUnits:
    """Simulated units of the shipped products, built on first request and kept for the test run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._units: dict[tuple, SimUnit] = {}

    def procedure(self, product: str, *, step_deg: float | None = None, duration_s: float | None = None,
                  settings: tuple[tuple[str, object], ...] = ()) -> Path:
        """The (edited) procedure file, written once."""
        edits = "".join(f"-{k}{v}" for k, v in settings)
        name = f"{product}-step{step_deg}-sweep{duration_s}{edits}.toml"
        path = self.root / name
        if not path.exists():
            path.write_text(procedure_text(product, step_deg=step_deg, duration_s=duration_s, settings=settings))
        return path

    def unit(
        self, product: str, serial: str, *, step_deg: float | None = None, duration_s: float | None = None,
        faults: tuple[str, ...] = (), settings: tuple[tuple[str, object], ...] = (),
    ) -> SimUnit:
        """Unit ``serial`` of ``product`` characterized on the sim (``faults`` present) and fitted."""
        from calib.procedure.spec import SimFaults
        from calib.stages.fit import fit_file
        from calib.stages.measure import measure_unit

        key = (product, serial, step_deg, duration_s, faults, settings)
        if key not in self._units:
            proc = self.procedure(product, step_deg=step_deg, duration_s=duration_s, settings=settings)
            out = self.root / proc.stem / "measurements"
            measurement = measure_unit(str(proc), serial, "sim", str(out), resume=False,
                                       faults=SimFaults.from_flags(faults) if faults else None)
            fit = fit_file(measurement)  # beside the measurement, as calib fit does
            self._units[key] = SimUnit(proc, serial, out, measurement, fit)
        return self._units[key]


@pytest.fixture(scope="session")
def sim_units(tmp_path_factory: pytest.TempPathFactory) -> SimUnits:
    """The run's :class:`SimUnits` (one per xdist worker)."""
    return SimUnits(tmp_path_factory.mktemp("sim-units"))


#: aurora5_area cut down for tests: a +-5 cm lateral area (4 cells of 2.5 cm; no depth, no yaw) measured at its
#: two edges only, a 30 deg turntable and 0.3 s sweeps.
AREA_UNIT = dict(step_deg=30.0, duration_s=0.3,
                 settings=(("lateral_m", 0.05), ("depth_m", 0.0), ("yaw_range_deg", 0.0)))


@pytest.fixture(scope="session")
def area_unit(sim_units: SimUnits) -> SimUnit:
    """An Aurora 5 unit (SN-TRACK) with a small listening area: characterized and fitted with its bank."""
    return sim_units.unit("aurora5_area", "SN-TRACK", **AREA_UNIT)


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A PostgreSQL server (``calib.fleet.pgserver.TempPostgres``) for the run: the fleet and the report tests.

    Started once per test run (per xdist worker) rather than per module; skipped, saying why, where none can start.
    """
    from calib.fleet.pgserver import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield server
    server.stop()
