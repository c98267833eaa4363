"""The ``calib`` command line.

Every command turns a :class:`~calib.errors.CalibError` into one line on
stderr and exit code 2, without a traceback. ``calib verify`` and
``calib run`` exit 1 on a FAIL verdict.
"""

from __future__ import annotations

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


@click.group(cls=_CalibGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="calib")
def cli() -> None:
    """Measure, fit, verify and report multi-driver loudspeakers (CTC and beamforming)."""


@click.command()
@click.argument("procedure", type=click.Path(dir_okay=False, path_type=str))
def check(procedure: str) -> None:
    """Validate PROCEDURE and print a summary."""
    from calib.procedure import load_procedure
    from calib.procedure.summary import summarize

    proc = load_procedure(procedure)
    click.echo(summarize(proc, estimated_s=_estimate(proc)))
    click.echo("OK")


def _register() -> None:
    from calib.cli.cmd_chain import fit, report, run, verify
    from calib.cli.cmd_fleet import fleet, limits, results
    from calib.cli.cmd_hardware import calibrate_mic
    from calib.cli.cmd_measure import devices, inspect, measure
    from calib.cli.cmd_render import export, render

    for command in (run, measure, fit, verify, report, check, inspect, render, export, calibrate_mic, devices,
                    results, fleet, limits):
        cli.add_command(command)


def _estimate(proc: Any) -> float:
    from calib.capture.schedule import estimate_unit_time_s

    return estimate_unit_time_s(proc)


_register()


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
