"""The ``calib`` command line.

Every command turns a :class:`~calib.errors.CalibError` into one line on
stderr and exit code 2, without a traceback. ``calib verify`` and
``calib run`` exit 1 on a FAIL verdict.
"""

from __future__ import annotations

import importlib
import sys
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
            click.echo(f"calib: error: {exc.filename}: exists already; nothing was overwritten", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("calib: interrupted; what was measured so far is on disk (continue with --resume)", err=True)
            ctx.exit(130)


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


@click.group(cls=_LazyCalibGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="calib")
def cli() -> None:
    """Measure, fit, verify and report multi-driver loudspeakers (CTC and beamforming)."""


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False, path_type=str))
@click.option("--station", type=click.Path(dir_okay=False), help="Station file (its [room] sets the IR gates).")
def check(procedure: str, station: str | None) -> None:
    """Validate PROCEDURE (with a STATION's room) and print a summary with the estimated time per unit."""
    from calib.procedure import load_procedure
    from calib.procedure.summary import summarize
    from calib.stages.gating import check_room_supports_targets, room_of

    proc = load_procedure(procedure)
    station_obj = None
    if station is not None:
        from calib.procedure.station import apply_station, load_station

        station_obj = load_station(station)
        proc = apply_station(proc, station_obj)
    room = room_of(proc, station_obj)
    gates = check_room_supports_targets(proc, room, station or procedure, station_obj)
    click.echo(summarize(proc, estimated_s=_estimate(proc), room_lines=_room_lines(proc, room, gates)))
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


def _estimate(proc: Any) -> float:
    from calib.capture.schedule import estimate_unit_time_s

    return estimate_unit_time_s(proc)


cli.add_command(check)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        result = cli.main(args=argv, prog_name="calib", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("calib: aborted", err=True)
        return 130
    # Commands return their exit code (verify: 1 on FAIL); ctx.exit(n) arrives here as n.
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
