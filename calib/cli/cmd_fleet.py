"""``calib results`` (list, export, import), ``calib fleet`` and ``calib limits`` (golden-sample limits)."""

from __future__ import annotations

import click

_DB_HELP = "Results database URL or SQLite file (default: $CALIB_RESULTS_DB, else measurements/results.db)."


def _filters(fn):
    for option in reversed([
        click.option("--db", help=_DB_HELP),
        click.option("--product", help="Product id."),
        click.option("--station", help="Station name."),
        click.option("--serial", help="Serial (wildcards: *)."),
        click.option("--since", help="From this UTC time on (e.g. 2026-12-01)."),
        click.option("--until", help="Before this UTC time."),
        click.option("--verdict", type=click.Choice(["PASS", "FAIL"], case_sensitive=False), help="Verdict."),
    ]):
        fn = option(fn)
    return fn


def _store(db: str | None, create: bool = False):
    """Return the results store; a missing SQLite file is an error unless ``create`` (reading never creates one)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from calib.errors import CalibError
    from calib.fleet.db import resolve_url
    from calib.fleet.store import ResultsStore

    url = resolve_url(db)
    parsed = make_url(url)
    if not create and parsed.get_backend_name() == "sqlite" and parsed.database and \
            not Path(parsed.database).exists():
        raise CalibError(f"{parsed.database}: no results database (calib report creates it; or give --db)")
    return ResultsStore(url)


@click.group()
def results() -> None:
    """List, export and import the recorded runs."""


@results.command("list")
@_filters
@click.option("--stage", type=click.Choice(["characterize", "fit", "verify"]), default="verify", show_default=True)
def results_list(db: str | None, stage: str, **filters: str | None) -> None:
    """List runs, oldest first."""
    with _store(db) as store:
        df = store.runs(stage=stage, **filters)
    if df.empty:
        click.echo("no runs match")
        return
    cols = ["run_id", "product_id", "serial", "station", "time_utc", "verdict", "checks_failed", "checks_total"]
    click.echo(df[cols].to_string(index=False, na_rep="-"))
    click.echo(f"{len(df)} run(s)")


@results.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@_filters
def results_export(db: str | None, out: str, **filters: str | None) -> None:
    """Write the verifications to OUT (.csv or .parquet): one row per run, one value and pass column per check."""
    from calib.fleet.exchange import export_table

    with _store(db) as store:
        n = export_table(store, out, **filters)
    click.echo(f"{out}: {n} run(s)")


@results.command("import")
@click.argument("csv", type=click.Path(dir_okay=False))
@click.option("--db", help=_DB_HELP)
@click.option("--archive-root", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Absolute paths in the CSV are stored relative to it.")
def results_import(csv: str, db: str | None, archive_root: str) -> None:
    """Import an existing results.csv (rows already recorded are left alone)."""
    from calib.fleet.exchange import import_results_csv

    with _store(db, create=True) as store:
        new, already, skipped = import_results_csv(store, csv, archive_root)
    click.echo(f"{csv}: {new} run(s) imported, {already} already recorded, {skipped} without a verification hash")


@click.command()
@_filters
@click.option("--pdf", type=click.Path(dir_okay=False), default="reports/fleet.pdf", show_default=True,
              help="Fleet PDF.")
def fleet(db: str | None, pdf: str, **filters: str | None) -> None:
    """Yield per product, station and day; Cpk per check; outliers; drift — as a summary and a PDF."""
    from calib.fleet.fleet_report import fleet_view, summary_text, write_fleet_pdf

    with _store(db) as store:
        view = fleet_view(store, **filters)
    click.echo(summary_text(view))
    if not view.runs.empty:
        click.echo(f"fleet report: {write_fleet_pdf(view, pdf)}")


@click.group()
def limits() -> None:
    """Manage acceptance limits from a golden sample (mean ± k·σ per check and band), versioned per product."""


@limits.command("derive")
@click.argument("product")
@click.option("--golden", required=True, help="Known-good serials, comma-separated (at least 3).")
@click.option("--k", default=3.0, show_default=True, type=float, help="Half-width of the window in σ.")
@click.option("--note", default="", help="Why (stored with the version).")
@click.option("--db", help=_DB_HELP)
def limits_derive(product: str, golden: str, k: float, note: str, db: str | None) -> None:
    """Derive a new version of PRODUCT's limits; later reports of PRODUCT are judged against it."""
    from calib.fleet.limits import derive_limits

    with _store(db) as store:
        lset = derive_limits(store, product, [s.strip() for s in golden.split(",") if s.strip()], k, note)
    click.echo(f"{product}: limits v{lset.version} from {lset.n_units} units, k = {lset.k:g}: "
               f"{lset.values['name'].nunique()} quantities, {len(lset.values)} values")


@limits.command("show")
@click.argument("product")
@click.option("--version", type=int, help="Version (default: the newest).")
@click.option("--db", help=_DB_HELP)
def limits_show(product: str, version: int | None, db: str | None) -> None:
    """Print PRODUCT's limits."""
    from calib.errors import CalibError
    from calib.fleet.limits import load_limits

    with _store(db) as store:
        lset = load_limits(store, product, version)
    if lset is None:
        raise CalibError(f"{product}: no golden limits{f' version {version}' if version else ''} "
                         "(derive them with calib limits derive)")
    click.echo(f"{product}: limits v{lset.version} ({lset.created_utc}), k = {lset.k:g}, "
               f"units {', '.join(lset.serials)}")
    click.echo(lset.values.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))
