"""``calib run`` killed (SIGKILL) at every stage boundary and inside every stage, and run on a full disk.

After ``--resume`` (and, for the disk, freeing space) every unit ends in the
same verdict as an uninterrupted run, with exactly one results row and one
PDF, and no output of any attempt is a traceback. Kill points: the child
prints ``[k/4]`` as each stage starts (unbuffered); the parent waits for the
stage it targets, then a fraction of that stage's length more, then sends
SIGKILL. The lengths are the uninterrupted reference run's own (its closing
table), so the fractions land at the same places on an idle and a loaded
machine: at the boundary (0), in the middle of the measurement's steps, the
fit, the verification's steps and the PDF's drawing (0.5), and, in the
report, as the PDF is written and the run recorded (0.95). The reference unit
is run in the same archive first, so a second unit is killed at each point
in turn, resuming each time (every stage resumes from a kill in itself and
in the stages before it), beside a unit whose row and PDF must survive.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("[1/4]", "[2/4]", "[3/4]", "[4/4]")
STAGE_NAMES = ("measure", "fit", "verify", "report")
KILL_FRACTIONS = {"[1/4]": (0.0, 0.5), "[2/4]": (0.0, 0.5), "[3/4]": (0.0, 0.5), "[4/4]": (0.0, 0.5, 0.95)}
"""Where in each stage to kill, as a fraction of the stage's length in the reference run."""


def tiny_procedure(path: Path) -> Path:
    """Duo 2 at 4 azimuths with 0.3 s sweeps: a run measures 9 steps twice."""
    text = (ROOT / "procedures" / "duo2.toml").read_text()
    assert "step_deg = 10.0" in text and "duration_s = 1.0" in text
    path.write_text(text.replace("step_deg = 10.0", "step_deg = 90.0").replace("duration_s = 1.0", "duration_s = 0.3"))
    return path


def _argv(proc: Path, base: Path, serial: str) -> list[str]:
    return [sys.executable, "-m", "calib.cli.main", "run", str(proc), "--serial", serial, "--out", str(base / "m"),
            "--reports", str(base / "r"), "--results", str(base / "results.csv"), "--resume"]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "CALIB_LOG_DIR": str(tmp / "logs")}


def _run_and_kill(argv: list[str], env: dict[str, str], stage: str, delay_s: float) -> tuple[str | None, str, str]:
    """Start ``argv``; SIGKILL it ``delay_s`` after it prints ``stage``. Returns (stage killed in, out, err)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out, current, deadline = b"", None, None
    while proc.poll() is None:
        if deadline is not None and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            break
        for key, _ in sel.select(timeout=0.02):
            chunk = os.read(key.fileobj.fileno(), 4096)
            out += chunk
            seen = [s for s in STAGES if s.encode() in out]
            current = seen[-1] if seen else None
            if deadline is None and stage.encode() in out:
                deadline = time.monotonic() + delay_s
    rest, err = proc.communicate()
    killed = proc.returncode == -signal.SIGKILL
    return (current or "start") if killed else None, (out + rest).decode(), err.decode()


def stage_seconds(stdout: str) -> dict[str, float]:
    """Each stage's wall time from ``calib run``'s closing table (``measure  <path>  2.2s``), by stage marker."""
    found = {}
    for marker, name in zip(STAGES, STAGE_NAMES, strict=True):
        match = re.search(rf"(?m)^{name}\s.*\s([0-9.]+)s\s*$", stdout)
        assert match is not None, stdout
        found[marker] = float(match.group(1))
    return found


@pytest.mark.slow
def test_sigkill_at_every_stage_boundary_and_inside_every_stage_then_resume(tmp_path: Path) -> None:
    proc = tiny_procedure(tmp_path / "tiny.toml")
    env = _env(tmp_path)
    ref = subprocess.run(_argv(proc, tmp_path, "K0"), capture_output=True, text=True, env=env, cwd=ROOT)
    assert ref.returncode in (0, 1), ref.stderr
    seconds = stage_seconds(ref.stdout)
    kills: dict[str, int] = {s: 0 for s in STAGES}
    n = 0
    for stage in STAGES:
        for fraction in KILL_FRACTIONS[stage]:
            killed, out, err = _run_and_kill(_argv(proc, tmp_path, "K1"), env, stage, fraction * seconds[stage])
            n += 1
            assert "Traceback" not in out + err and "internal error" not in err, err
            if killed is not None:
                kills[killed if killed in kills else STAGES[0]] += 1
            else:
                assert "error" not in err.lower() or "note" in err.lower(), err
    final = subprocess.run(_argv(proc, tmp_path, "K1"), capture_output=True, text=True, env=env, cwd=ROOT)
    assert final.returncode == ref.returncode, final.stderr
    assert "Traceback" not in final.stdout + final.stderr
    print(f"\n{sum(kills.values())} kills in {n} attempts; per stage: {kills}; reference stage lengths {seconds}")
    assert all(k >= 1 for k in kills.values()), kills
    serials = ["K0", "K1"]
    table = pd.read_csv(tmp_path / "results.csv", dtype={"serial": str})
    assert sorted(table["serial"]) == serials, "exactly one row per unit"
    verdict = "PASS" if ref.returncode == 0 else "FAIL"
    assert set(table["verdict"]) == {verdict}
    for serial in serials:
        assert (tmp_path / "r" / f"{serial}.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(f"{s}.pdf" for s in serials), "no temp PDFs"
    assert not (tmp_path / "logs").exists()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.mark.slow
def test_full_disk_then_free_space_and_resume(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if shutil.which("mount") is None or not _mount_tmpfs(disk, "1200k"):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        proc = tiny_procedure(tmp_path / "tiny.toml")
        env = _env(tmp_path)
        full = subprocess.run(_argv(proc, disk, "F1"), capture_output=True, text=True, env=env, cwd=ROOT)
        err = full.stderr.strip().splitlines()
        assert full.returncode == 2, full.stderr
        assert "Traceback" not in full.stdout + full.stderr and not (tmp_path / "logs").exists()
        assert err[-1].startswith("calib: error: ") and "No space left on device" in err[-1], err
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        again = subprocess.run(_argv(proc, disk, "F1"), capture_output=True, text=True, env=env, cwd=ROOT)
        assert again.returncode in (0, 1), again.stderr
        assert "Traceback" not in again.stdout + again.stderr
        table = pd.read_csv(disk / "results.csv", dtype={"serial": str})
        assert list(table["serial"]) == ["F1"]
        assert (disk / "r" / "F1.pdf").read_bytes()[:5] == b"%PDF-"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
