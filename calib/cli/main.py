"""The ``calib`` command line.

Every command turns a :class:`~calib.errors.CalibError` into one line on
stderr and exit code 2, without a traceback. ``calib verify`` and
``calib run`` exit 1 on a FAIL verdict. An operating-system error (disk
full, permission denied, read-only folder) is one line naming the file and
exit code 2 as well: the station, not the unit, has a problem. Anything
else is a bug: its trace goes to a log file (:func:`crash_log_dir`) and the
user sees one line naming that file, again with exit code 2.
"""

from __future__ import annotations

import datetime as _dt
import errno
import importlib
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import click

from calib import __version__
from calib.errors import CalibError

EXIT_FAIL = 1
EXIT_ERROR = 2


class _CalibGroup(click.Group):
    """A click group that reports CalibError as one clean line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CalibError as exc:
            click.echo(f"calib: error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except FileExistsError as exc:
            where = exc.filename if exc.filename is not None else _one_line(exc)
            click.echo(f"calib: error: {where}: exists already; nothing was overwritten", err=True)
            ctx.exit(EXIT_ERROR)
        except OSError as exc:
            click.echo(f"calib: error: {describe_os_error(exc)}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("calib: interrupted; what was measured so far is on disk (continue with --resume)", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # the last resort: never a traceback on the terminal
            log = log_crash(exc, ctx)
            click.echo(f"calib: internal error: {type(exc).__name__}: {_one_line(exc)} (trace in {log})", err=True)
            ctx.exit(EXIT_ERROR)


def describe_os_error(exc: OSError) -> str:
    """``<file>: <reason>`` for an operating-system error (disk full, permission, read-only, ...)."""
    # h5py's messages span lines and bury the file name; the errno says what happened.
    reason = os.strerror(exc.errno) if exc.errno else (_one_line(exc.strerror or exc)[:200] or type(exc).__name__)
    named = re.search(r"filename = '([^']+)'", str(exc))
    filename = exc.filename if exc.filename is not None else (named.group(1) if named else None)
    hint = {errno.ENOSPC: "; free space and continue with --resume", errno.EROFS: "; the folder is read-only",
            errno.EACCES: "; check the permissions", errno.EPERM: "; check the permissions"}.get(exc.errno or 0, "")
    where = filename if filename is not None else "(no file named by the system)"
    return f"{where}: {reason}{hint}"


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:300]


def crash_log_dir() -> Path:
    """Where internal-error traces go.

    ``$CALIB_LOG_DIR``, else ``$XDG_STATE_HOME/calib``, else ``~/.local/state/calib``.
    """
    if os.environ.get("CALIB_LOG_DIR"):
        return Path(os.environ["CALIB_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "calib"


def log_crash(exc: BaseException, ctx: click.Context) -> Path:
    """Write the trace of an unexpected error to a new log file and return its path."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    text = f"calib {__version__}\nargv: {sys.argv!r}\ncommand: {ctx.command_path}\n\n"
    text += "".join(traceback.format_exception(exc))
    for folder in (crash_log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"calib-crash-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return Path("(no writable log folder)")


#: Subcommands, imported only when used (or listed by ``--help``), so that
#: ``calib --version`` loads click alone and ``calib --help`` no numpy/scipy.
LAZY_COMMANDS = {
    "run": "calib.cli.cmd_chain:run",
    "measure": "calib.cli.cmd_measure:measure",
    "fit": "calib.cli.cmd_chain:fit",
    "verify": "calib.cli.cmd_chain:verify",
    "report": "calib.cli.cmd_chain:report",
    "inspect": "calib.cli.cmd_measure:inspect",
    "render": "calib.cli.cmd_render:render",
    "export": "calib.cli.cmd_render:export",
    "calibrate-mic": "calib.cli.cmd_hardware:calibrate_mic",
    "devices": "calib.cli.cmd_measure:devices",
    "results": "calib.cli.cmd_fleet:results",
    "fleet": "calib.cli.cmd_fleet:fleet",
    "limits": "calib.cli.cmd_fleet:limits",
    "grid-study": "calib.cli.cmd_station:grid_study",
    "spinorama": "calib.cli.cmd_spinorama:spinorama",
}


class _LazyCalibGroup(_CalibGroup):
    """:class:`_CalibGroup` whose subcommands in :data:`LAZY_COMMANDS` load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)


EXIT_CODES_HELP = """\b
Exit codes:
  0    PASS (or the command did what it was asked)
  1    FAIL: a verdict about the unit (verify, report, run)
  2    bad input or usage (one line naming the file or option), an
       operating-system error (disk full, permission denied, read-only
       folder) or an internal error (trace in $CALIB_LOG_DIR)
  130  interrupted (Ctrl-C); what was measured is on disk (--resume)"""


@click.group(cls=_LazyCalibGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="calib")
@click.option("-q", "--quiet", is_flag=True, help="Print only the verdict line per unit (and errors, warnings).")
@click.option("-v", "--verbose", is_flag=True, help="Print every check, passing or not, and the predicted ones.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Measure, fit, verify and report multi-driver loudspeakers (CTC and beamforming)."""
    from calib.cli.output import set_level, show_notes

    set_level(ctx, quiet, verbose)
    show_notes()


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False, path_type=str))
@click.option("--station", type=click.Path(dir_okay=False), help="Station file (its [room] sets the IR gates).")
def check(procedure: str, station: str | None) -> None:
    """Validate PROCEDURE (with a STATION's room) and print a summary with the estimated time per unit."""
    from calib.errors import ProcedureError
    from calib.procedure import load_procedure
    from calib.procedure.consistency import beam_grid_problem
    from calib.procedure.summary import summarize
    from calib.stages.gating import check_room_supports_targets, room_of

    proc = load_procedure(procedure)
    beam_problem = beam_grid_problem(proc)
    if beam_problem is not None:
        raise ProcedureError(f"{procedure}: {beam_problem}")
    station_obj = None
    if station is not None:
        from calib.procedure.station_file import apply_station, load_station

        station_obj = load_station(station)
        proc = apply_station(proc, station_obj)
    room = room_of(proc, station_obj)
    gates = check_room_supports_targets(proc, room, station or procedure, station_obj)
    click.echo(
        summarize(
            proc,
            estimated_s=_estimate(proc),
            room_lines=_room_lines(proc, room, gates) + _area_lines(proc),
            production=_production_estimate(proc),
        )
    )
    click.echo("OK")


def _room_lines(proc: Any, room: Any, gates: Any) -> list[str]:
    if room is None:
        return ["  room            none declared (reflections are detected in the IRs)"]
    dims = " x ".join(f"{v:g}" for v in room.dimensions_m)
    lines = [f"  room            {dims} m, turntable centre at {list(room.device_position_m)}"]
    if gates is not None:
        for mic, gate in zip(proc.mic_names, gates.directivity, strict=True):
            lines.append(f"  gate {mic:<10} {gate.describe()}")
        lines.append(f"  gate {'ears':<10} {gates.binaural.describe()}")
    return lines


def _area_lines(proc: Any) -> list[str]:
    """Return the listening area's cells and station time (one head position = one characterize step)."""
    if proc.listening_area is None:
        return []
    from calib.capture.plan import plan_characterize
    from calib.capture.schedule import capture_seconds, verify_plan_estimate
    from calib.procedure.area import area_lines

    return area_lines(proc, capture_seconds(plan_characterize(proc)), capture_seconds(verify_plan_estimate(proc)))


def _estimate(proc: Any) -> float:
    from calib.capture.schedule import estimate_unit_time_s

    return estimate_unit_time_s(proc)


def _production_estimate(proc: Any) -> tuple[Any, float] | None:
    """Return the production variant (``[production]``) and its estimated time per unit, if the procedure has one."""
    if proc.production is None:
        return None
    from calib.procedure.production import production_procedure

    variant = production_procedure(proc)
    return variant, _estimate(variant)


cli.add_command(check)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        result = cli.main(args=argv, prog_name="calib", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        # One line, like every other error (click's usage block would be several).
        click.echo(f"calib: error: {_one_line(exc.format_message()) if hasattr(exc, 'format_message') else exc}",
                   err=True)
        # Every click error is bad input (exit 2): its own code 1 (click.FileError) would read as FAIL.
        return EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("calib: aborted", err=True)
        return 130
    # Commands return their exit code (verify: 1 on FAIL); ctx.exit(n) arrives here as n.
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
