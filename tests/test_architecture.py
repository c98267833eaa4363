"""Architecture contracts: the layers (import-linter), a pure numpy/scipy core, calib without PortAudio."""

from __future__ import annotations

import os
import pkgutil
import re
import shutil
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


def _lint_imports(root: Path, contract: str) -> subprocess.CompletedProcess:
    """Run one import-linter contract of ``root``/pyproject.toml on the ``calib`` package under ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache", "--no-logo", "--contract", contract, str(root / "pyproject.toml")],
        capture_output=True, text=True, cwd=root, env=env, timeout=120,
    )


@pytest.fixture(scope="module")
def mutable_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its contracts that a test may break."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "calib", root / "calib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize("contract", ["layers", "acyclic", "pure-core"])
def test_import_contracts_are_kept(contract):
    out = _lint_imports(ROOT, contract)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(("module", "line", "contract", "message"), [
    # the capture loop reaching up into the stages (the cycle this contract was written against)
    ("calib/capture/plan.py", "from calib.stages import fit", "layers", r"calib\.capture\.plan -> calib\.stages\.fit"),
    # two sibling modules importing each other (rig.factory <-> rig.replay once did, lazily)
    ("calib/rig/virtual_lab.py", "from calib.rig import factory", "acyclic", r"\.virtual_lab -> \.factory"),
    # the numerical core writing files
    ("calib/metrics/ctc.py", "import h5py", "pure-core", r"calib\.metrics\.ctc -> h5py"),
])
def test_import_contracts_catch_a_violation(mutable_copy, module, line, contract, message):
    path = mutable_copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _violation() -> None:\n    {line}  # noqa: F401\n")
    try:
        out = _lint_imports(mutable_copy, contract)
    finally:
        path.write_text(original)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "0 kept, 1 broken" in out.stdout
    assert re.search(message, out.stdout), out.stdout


def test_public_api_is_lazy_and_complete():
    # ``import calib`` pulls in nothing heavy; each public name is the object its module defines
    out = _run(
        "import sys, importlib, calib\n"
        "assert 'numpy' not in sys.modules, 'import calib imported numpy'\n"
        "for name, module in calib._API.items():\n"
        "    assert getattr(calib, name) is getattr(importlib.import_module(module), name), name\n"
        "print(sorted(calib.__all__) == sorted(['__version__', *calib._API]), len(calib._API))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "22"]


def test_an_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'calib' has no attribute 'mesure_unit'"):
        calib.mesure_unit  # noqa: B018 - the attribute access is the test
