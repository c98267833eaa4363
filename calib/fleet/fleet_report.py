"""The fleet report: a terminal summary and a PDF of yield, distributions against limits, Cpk, drift and outliers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from calib.fleet import stats
from calib.fleet.store import ResultsStore

PLOTS_PER_PAGE = 6


@dataclass
class FleetView:
    """Everything ``calib fleet`` shows, computed once from the store."""

    runs: pd.DataFrame
    checks: pd.DataFrame
    yield_product: pd.DataFrame
    yield_station: pd.DataFrame
    yield_day: pd.DataFrame
    capability: pd.DataFrame
    outliers: pd.DataFrame
    drift_series: pd.DataFrame
    drift: pd.DataFrame


def fleet_view(store: ResultsStore, **filters: str | None) -> FleetView:
    """Query the store once and compute every table of the fleet report."""
    runs = store.runs("verify", **filters)
    checks = store.checks("verify", **filters)
    series = stats.drift_series(store, checks, **filters)
    return FleetView(
        runs, checks,
        stats.group_yield(runs, ["product_id"]), stats.group_yield(runs, ["product_id", "station"]),
        stats.group_yield(runs, ["product_id", "day"]), stats.capability(checks), stats.outliers(checks),
        series, stats.drift(series, "quantity"),
    )


def _fmt(df: pd.DataFrame, floats: str = "{:.2f}") -> str:
    if df.empty:
        return "  (none)"
    return df.to_string(index=False, float_format=lambda v: floats.format(v), na_rep="-")


def summary_text(view: FleetView, top: int = 10) -> str:
    """Return the terminal summary: yields, the least capable checks, outliers and drift."""
    if view.runs.empty:
        return "no verification runs match"
    n_units = view.runs[["product_id", "serial"]].drop_duplicates().shape[0]
    lines = [f"{len(view.runs)} verifications of {n_units} units, "
             f"{view.runs['time_utc'].min()} .. {view.runs['time_utc'].max()}", "",
             "yield per product", _fmt(view.yield_product), "", "yield per station", _fmt(view.yield_station), "",
             "yield per day (last 7)", _fmt(view.yield_day.groupby("product_id").tail(7)), "",
             f"least capable checks (Cpk, worst {top})",
             _fmt(view.capability.head(top)[["product_id", "check", "n", "mean", "std", "op", "limit", "cpk",
                                             "fail_pct"]]), "",
             f"outlier units (|modified z| > {stats.OUTLIER_Z:g}, largest first)",
             _fmt(view.outliers.head(3 * top)), "",
             "drift over units (slope per 100 units)", _fmt(view.drift, "{:.3g}")]
    return "\n".join(lines)


def write_fleet_pdf(view: FleetView, path: str | Path) -> Path:
    """Write the fleet PDF.

    Yield per day, check distributions with limits, Cpk, drift over time and serial, outliers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with PdfPages(tmp) as pdf:
        fig, axes = plt.subplots(2, 1, figsize=(8.27, 11.69))
        fig.suptitle("Fleet: yield")
        for product, block in view.yield_day.groupby("product_id"):
            axes[0].plot(pd.to_datetime(block["day"]), block["yield_pct"], marker="o", label=str(product))
        axes[0].set_ylabel("yield per day (%)")
        axes[0].set_ylim(0, 105)
        axes[0].legend(fontsize=7)
        axes[0].tick_params(axis="x", labelrotation=30, labelsize=7)
        axes[1].axis("off")
        axes[1].text(0, 1, "per product\n" + _fmt(view.yield_product) + "\n\nper station\n" + _fmt(view.yield_station),
                     family="monospace", fontsize=6.5, va="top")
        pdf.savefig(fig)
        plt.close(fig)
        _distribution_pages(pdf, plt, view)
        _cpk_page(pdf, plt, view)
        _drift_pages(pdf, plt, view)
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.suptitle("Outlier units (modified z-score)")
        fig.text(0.05, 0.95, _fmt(view.outliers.head(60)), family="monospace", fontsize=6, va="top")
        pdf.savefig(fig)
        plt.close(fig)
    tmp.replace(path)
    return path


def _distribution_pages(pdf, plt, view: FleetView) -> None:
    latest = stats.latest_per_unit(view.checks)
    groups = [(key, block) for key, block in latest.groupby(["product_id", "check"], sort=False)
              if np.isfinite(block["value"].astype(float)).sum() > 1 and block["op"].iloc[-1] != "=="]
    for start in range(0, len(groups), PLOTS_PER_PAGE):
        fig, axes = plt.subplots(3, 2, figsize=(8.27, 11.69))
        fig.suptitle("Check distributions against limits (latest verification per unit)")
        for ax, ((product, name), block) in zip(axes.flat, groups[start:start + PLOTS_PER_PAGE], strict=False):
            values = block["value"].astype(float)
            ax.hist(values[np.isfinite(values)], bins=20, color="0.6")
            limit = block["limit"].iloc[-1]
            if pd.notna(limit):
                ax.axvline(limit, color="red", label=f"limit {block['op'].iloc[-1]} {limit:g}")
                ax.legend(fontsize=6)
            ax.set_title(f"{product}: {name}", fontsize=7)
            ax.set_xlabel(block["unit"].iloc[-1], fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in axes.flat[len(groups[start:start + PLOTS_PER_PAGE]):]:
            ax.axis("off")
        pdf.savefig(fig)
        plt.close(fig)


def _cpk_page(pdf, plt, view: FleetView) -> None:
    cap = view.capability.dropna(subset=["cpk"]).head(40)
    fig, ax = plt.subplots(figsize=(8.27, 11.69))
    fig.suptitle("Process capability Cpk per check (worst first; 1.33 is the usual minimum)")
    if not cap.empty:
        labels = [f"{p}: {c}" for p, c in zip(cap["product_id"], cap["check"], strict=True)]
        ax.barh(range(len(cap)), cap["cpk"].clip(lower=-1, upper=10), color=np.where(cap["cpk"] < 1.33, "C3", "C2"))
        ax.set_yticks(range(len(cap)), labels, fontsize=6)
        ax.invert_yaxis()
        ax.axvline(1.33, color="k", ls="--")
    ax.set_xlabel("Cpk")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    pdf.savefig(fig)
    plt.close(fig)


def _drift_pages(pdf, plt, view: FleetView) -> None:
    series = view.drift_series.sort_values(["time_utc", "run_id"])
    groups = list(series.groupby(["product_id", "quantity"], sort=True))
    for start in range(0, len(groups), PLOTS_PER_PAGE // 2):
        fig, axes = plt.subplots(3, 2, figsize=(8.27, 11.69), squeeze=False)
        fig.suptitle("Drift over time (left) and over serial (right)")
        for row, ((product, name), block) in enumerate(groups[start:start + PLOTS_PER_PAGE // 2]):
            block = block.drop_duplicates("serial", keep="last")
            axes[row, 0].plot(pd.to_datetime(block["time_utc"]), block["value"], ".", ms=3)
            axes[row, 1].plot(block["serial"], block["value"], ".", ms=3)
            for ax in axes[row]:
                ax.set_title(f"{product}: {name}", fontsize=7)
                ax.tick_params(labelsize=5, labelrotation=45)
            step = max(1, len(block) // 12)
            axes[row, 1].set_xticks(range(0, len(block), step), block["serial"].iloc[::step])
        for ax in axes.flat[2 * len(groups[start:start + PLOTS_PER_PAGE // 2]):]:
            ax.axis("off")
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        pdf.savefig(fig)
        plt.close(fig)
