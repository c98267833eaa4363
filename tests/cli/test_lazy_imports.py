"""``calib --version`` and ``calib --help`` start without the numerical stack (lazy subcommands)."""

from __future__ import annotations

import subprocess
import sys

from calib.cli.main import LAZY_COMMANDS, cli


def _modules_after(args: list[str]) -> tuple[str, set[str]]:
    code = (
        "import sys\n"
        "from calib.cli.main import main\n"
        f"main({args!r})\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    text, _, modules = out.stdout.rpartition("MODULES ")
    return text, set(modules.split())


def test_version_loads_no_subcommand_and_no_numpy():
    text, modules = _modules_after(["--version"])
    assert "calib, version" in text
    assert not {m for m in modules if m.startswith("calib.cli.cmd_")}
    assert "numpy" not in modules and "scipy" not in modules


def test_help_lists_every_command_without_numpy_scipy_h5py_pydantic():
    text, modules = _modules_after(["--help"])
    for name in [*LAZY_COMMANDS, "check"]:
        assert f"  {name} " in text
    assert not modules & {"numpy", "scipy", "h5py", "pydantic", "matplotlib", "pandas"}


def test_lazy_commands_resolve_to_their_click_commands():
    ctx = cli.make_context("calib", ["--help"], resilient_parsing=True)
    for name in LAZY_COMMANDS:
        assert cli.get_command(ctx, name).name == name
    assert cli.get_command(ctx, "no-such-command") is None
