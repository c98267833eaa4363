"""What the ``calib`` commands print, at three levels of detail.

``calib --quiet`` prints the one verdict line per unit (and errors and
warnings on stderr); the default adds the stages, the files written and the
failing checks; ``calib --verbose`` adds every check, passing or not, and
the predicted ones. The level lives on the root click context
(:func:`set_level`); commands print through :func:`say`, :func:`detail` and
:func:`verdict_line`, never through ``click.echo`` directly for progress.

Tables (:func:`table`, :func:`check_table`) size their columns from their
content, so a long position name does not push a row out of line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click

QUIET, NORMAL, VERBOSE = 0, 1, 2


def set_level(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Store the level chosen by ``--quiet``/``--verbose`` on the root context."""
    if quiet and verbose:
        from calib.errors import CalibError

        raise CalibError("--quiet and --verbose: expected at most one of them")
    ctx.ensure_object(dict)["level"] = QUIET if quiet else (VERBOSE if verbose else NORMAL)


class _NotesHandler(logging.Handler):
    """Shows :mod:`calib.notes` on stderr at every level: ``calib: note: ...``, ``calib: warning: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning" if record.levelno >= logging.WARNING else "note"
        click.echo(f"calib: {kind}: {record.getMessage()}", err=True)


def show_notes() -> None:
    """Route the stages' notes and warnings (:mod:`calib.notes`) to stderr, once per process."""
    from calib.notes import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _NotesHandler) for h in logger.handlers):
        logger.addHandler(_NotesHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # shown once, not again by a handler further up


def level() -> int:
    """Return the current level (NORMAL outside a ``calib`` command, e.g. when a function is called from Python)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return NORMAL
    obj = ctx.find_root().obj
    return int(obj.get("level", NORMAL)) if isinstance(obj, dict) else NORMAL


def progress_bars() -> bool | None:
    """``progress`` for the capture engine: no bars with ``--quiet``, else tqdm's default (on a terminal)."""
    return False if level() == QUIET else None


def say(message: str) -> None:
    """Progress and files written: shown unless ``--quiet``."""
    if level() >= NORMAL:
        click.echo(message)


def detail(message: str) -> None:
    """Print passing checks, predictions, reused files: shown with ``--verbose`` only."""
    if level() >= VERBOSE:
        click.echo(message)


def warn(message: str) -> None:
    """Print a warning on stderr, at every level (``calib: warning: ...``)."""
    click.echo(f"calib: warning: {message}", err=True)


def verdict_line(serial: str, verdict: str, n_checks: int, n_failed: int) -> None:
    """Print the one line per unit every level shows: ``SN0001: PASS (32 checks, 0 failed)``."""
    click.secho(f"{serial}: {verdict} ({n_checks} checks, {n_failed} failed)", bold=True,
                fg="green" if verdict == "PASS" else "red")


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = (), indent: str = "  ") -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell.

    ``right`` lists the columns aligned right (numbers); trailing blanks are stripped.
    """
    if not rows:
        return []
    n = max(len(r) for r in rows)
    cells = [list(r) + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[c]) for r in cells) for c in range(n)]
    return [
        (indent + "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                            for c, (cell, w) in enumerate(zip(r, widths, strict=True)))).rstrip()
        for r in cells
    ]


def check_table(checks: Sequence, prefix: str = "") -> list[str]:
    """Format checks as aligned lines: result, name, value with unit, limit, detail.

    The limit is the one judged (the target less its tolerance, where the
    target has one), written with its comparison, e.g. ``>= 19 dB``.
    """
    rows = []
    for c in checks:
        op = c.op
        if c.exact:
            value, limit = f"{c.value:+.0f}", f"{op} {c.limit:+.0f}"
        else:
            value, limit = f"{c.value:.1f} {c.unit}".rstrip(), f"{op} {c.limit:g} {c.unit}".rstrip()
        rows.append([f"{prefix}{'PASS' if c.passed else 'FAIL'}", c.name, value, f"({limit})",
                     f"[{c.detail}]" if c.detail else ""])
    return table(rows, right=(2,))
