"""A small archive made once per session by ``calib run``: Duo 2 on a 30-degree grid, 0.5 s sweeps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from calib.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SERIAL = "T1"


def duo_text(step_deg: float = 30.0, duration_s: float = 0.5) -> str:
    """``procedures/duo2.toml`` on a coarser grid with shorter sweeps."""
    text = (ROOT / "procedures" / "duo2.toml").read_text()
    assert "step_deg = 10.0" in text and "duration_s = 1.0" in text
    return text.replace("step_deg = 10.0", f"step_deg = {step_deg}").replace("duration_s = 1.0",
                                                                             f"duration_s = {duration_s}")


def run_args(base: Path, proc: Path, serial: str = SERIAL, *extra: str) -> list[str]:
    """``calib run`` writing everything under ``base``."""
    return ["run", str(proc), "--serial", serial, "--out", str(base / "m"), "--reports", str(base / "r"),
            "--results", str(base / "results.csv"), *extra]


@pytest.fixture(scope="session")
def archive_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished unit: procedure, characterize, calibration, verification, PDF, results row."""
    base = tmp_path_factory.mktemp("trust-archive")
    proc = base / "duo.toml"
    proc.write_text(duo_text())
    assert main(run_args(base, proc)) == 0
    return base


@pytest.fixture
def archive(archive_master: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of the archive and its files by role."""
    base = tmp_path / "a"
    shutil.copytree(archive_master, base)
    unit = base / "m" / SERIAL
    (char,) = unit.glob("characterize-*.h5")
    (cal,) = unit.glob("calibration-*.h5")
    (ver,) = unit.glob("verify-*.h5")
    return {"base": base, "proc": base / "duo.toml", "out": base / "m", "unit": unit, "characterize": char,
            "calibration": cal, "verification": ver, "reports": base / "r", "pdf": base / "r" / f"{SERIAL}.pdf",
            "results": base / "results.csv"}
