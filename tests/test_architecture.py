"""Architecture contracts: the numerical core is pure numpy/scipy; calib works without PortAudio."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import calib

ROOT = Path(__file__).resolve().parents[1]
CORE = ("calib.signals", "calib.solve", "calib.metrics", "calib.sim")
FORBIDDEN = ("h5py", "sounddevice", "matplotlib", "pandas", "serial", "jack", "click", "pydantic", "tqdm")


def _core_modules() -> list[str]:
    names = []
    for package in CORE:
        path = ROOT / package.replace(".", "/")
        names.append(package)
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path)])]
    return names


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_numerical_core_imports_no_io_or_ui():
    modules = _core_modules()
    assert len(modules) > 20  # the contract covers the real core, not an empty list
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core modules pulled in: {out.stdout.strip()}"


@pytest.mark.parametrize("module", ["calib", "calib.cli.main", "calib.rig.portaudio", "calib.rig.factory"])
def test_imports_work_without_portaudio(module):
    # sys.modules[name] = None makes "import sounddevice" raise ImportError, as on a machine without PortAudio
    out = _run(f"import sys; sys.modules['sounddevice'] = None; import {module}; print('ok')")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_calib_check_and_devices_work_without_portaudio():
    aurora = ROOT / "procedures" / "aurora5.toml"
    out = _run(
        "import sys; sys.modules['sounddevice'] = None\n"
        "from calib.cli.main import main\n"
        f"code = main(['check', {str(aurora)!r}])\n"
        "code2 = main(['devices'])\n"
        "print('codes', code, code2)"
    )
    assert out.returncode == 0, out.stderr
    assert "codes 0 0" in out.stdout
    assert "Aurora 5 smart speaker" in out.stdout
    assert "portaudio: unavailable: PortAudio is not available" in out.stdout


def test_version_is_exposed():
    assert calib.__version__.count(".") == 2
