"""Eight stations recording at once, on SQLite and PostgreSQL: eight runs, none lost, none doubled.

To stay affordable on two cores the eight processes record prepared units
through the store's API (what ``calib report`` ends with) rather than
measuring eight units; tests/report/test_record_cli.py runs the real
``calib report`` on a verification twice.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from fleet_helpers import synthetic_unit

from calib.fleet.store import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import pickle, sys, time
from pathlib import Path
go = Path(sys.argv[3])
while not go.exists():  # start together
    time.sleep(0.005)
from calib.fleet.store import ResultsStore
records = pickle.loads(Path(sys.argv[1]).read_bytes())
with ResultsStore(sys.argv[2]) as store:
    print(",".join(str(store.record(r).created) for r in records))
"""


def _record_in_parallel(batches: list[list], url: str, tmp: Path) -> list[str]:
    """One process per batch, all released at once; each prints the ``created`` flags of its records."""
    go = tmp / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for i, batch in enumerate(batches):
        path = tmp / f"batch{i}.pkl"
        path.write_bytes(pickle.dumps(batch))
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, str(path), url, str(go)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(1.0)  # let every process import and wait at the start line
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    return outs


def test_eight_stations_at_once_record_eight_runs_none_lost_none_doubled(db_url, tmp_path) -> None:
    units = [synthetic_unit(f"SN{i:04d}", {"cancellation L @ centre": (20.0 + i, 12.0, ">=")},
                            f"2026-12-01T10:00:0{i}Z", station=f"st-{i % 3}") for i in range(8)]
    shared = synthetic_unit("SN-SAME", {"filter effort": (5.0, 15.0, "<=")}, "2026-12-01T11:00:00Z")
    # each station records its unit, then one verification that all eight report, then its unit again
    outs = _record_in_parallel([[unit, shared, unit] for unit in units], db_url, tmp_path)
    flags = [out.split(",") for out in outs]
    assert [f[0] for f in flags] == ["True"] * 8 and [f[2] for f in flags] == ["False"] * 8
    assert sorted(f[1] for f in flags) == ["False"] * 7 + ["True"]  # the shared one: created exactly once
    with ResultsStore(db_url) as store:
        runs = store.runs()
        assert sorted(runs["serial"]) == sorted([f"SN{i:04d}" for i in range(8)] + ["SN-SAME"])
        assert len(store.runs(stage="characterize")) == 9 and len(store.runs(stage="fit")) == 9
        assert len(store.checks()) == 9 and len(store.files()) == 9
        assert sorted(runs["station"].unique()) == ["st-0", "st-1", "st-2"]
