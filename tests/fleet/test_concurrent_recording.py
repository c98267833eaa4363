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
import uuid
from pathlib import Path

import pytest
from fleet_helpers import synthetic_unit

from calib.fleet.store import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import pickle, sys, time
from pathlib import Path
from calib.fleet.store import ResultsStore
records = pickle.loads(Path(sys.argv[1]).read_bytes())
start, n = Path(sys.argv[2]), int(sys.argv[3])
for k, url in enumerate(sys.argv[4:]):
    # start together: the parent's start line first, then the moment all n are through the previous database
    deadline = time.monotonic() + 120.0
    while not start.exists() if k == 0 else len(list(start.parent.glob(f"done{k - 1}-*"))) < n:
        if time.monotonic() > deadline:
            sys.exit(f"not all {n} stations got through database {k - 1}")
        time.sleep(0.005)
    with ResultsStore(url) as store:
        print(",".join(str(store.record(r).created) for r in records), flush=True)
    (start.parent / f"done{k}-{Path(sys.argv[1]).stem}").touch()
"""


def _record_in_parallel(batches: list[list], urls: list[str], tmp: Path) -> dict[str, list[str]]:
    """One process per batch, all released at once into each database in turn.

    Each process imports once and records its batch into every database of
    ``urls`` in order; all of them start on a database together (a barrier of
    files). Returns, per URL, each process's ``created`` flags of its records.
    """
    go = tmp / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for i, batch in enumerate(batches):
        path = tmp / f"batch{i}.pkl"
        path.write_bytes(pickle.dumps(batch))
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(go), str(len(batches)), *urls],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(1.0)  # let every process import and wait at the start line
    go.touch()
    outs: dict[str, list[str]] = {url: [] for url in urls}
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        lines = out.strip().splitlines()
        assert len(lines) == len(urls), out
        for url, line in zip(urls, lines, strict=True):
            outs[url].append(line)
    return outs


def test_eight_stations_at_once_record_eight_runs_none_lost_none_doubled(request, tmp_path) -> None:
    """SQLite, then PostgreSQL (skipped, saying why, where no server starts): the same eight processes for both."""
    units = [synthetic_unit(f"SN{i:04d}", {"cancellation L @ centre": (20.0 + i, 12.0, ">=")},
                            f"2026-12-01T10:00:0{i}Z", station=f"st-{i % 3}") for i in range(8)]
    shared = synthetic_unit("SN-SAME", {"filter effort": (5.0, 15.0, "<=")}, "2026-12-01T11:00:00Z")
    urls = [str(tmp_path / "results.db")]
    try:
        urls.append(request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}"))
        no_postgres = None
    except pytest.skip.Exception as exc:
        no_postgres = str(exc)
    # each station records its unit, then one verification that all eight report, then its unit again
    outs = _record_in_parallel([[unit, shared, unit] for unit in units], urls, tmp_path)
    for url in urls:
        flags = [out.split(",") for out in outs[url]]
        assert [f[0] for f in flags] == ["True"] * 8 and [f[2] for f in flags] == ["False"] * 8, url
        assert sorted(f[1] for f in flags) == ["False"] * 7 + ["True"], url  # the shared one: created exactly once
        with ResultsStore(url) as store:
            runs = store.runs()
            assert sorted(runs["serial"]) == sorted([f"SN{i:04d}" for i in range(8)] + ["SN-SAME"])
            assert len(store.runs(stage="characterize")) == 9 and len(store.runs(stage="fit")) == 9
            assert len(store.checks()) == 9 and len(store.files()) == 9
            assert sorted(runs["station"].unique()) == ["st-0", "st-1", "st-2"]
    if no_postgres is not None:
        pytest.skip(f"SQLite passed; {no_postgres}")
