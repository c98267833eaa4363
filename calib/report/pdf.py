"""The per-unit PDF verification report.

Page 1 is what a lab engineer signs off: unit identity, provenance (files
and their SHA-256), the verdict in large type and the table of checks with
the failing ones highlighted; a rig that moved no air is marked SIMULATED in
red. The figures of :mod:`calib.report.figures` follow, one page each, then
the spinorama pages (a procedure that measured the sphere) and the listening
area page (a calibration with a bank, :mod:`calib.report.area_map`).

Reports are derived data: a report of another verification of the unit is
replaced, but atomically (:func:`calib.store.atomic.write_atomic`: a hidden
temporary file in the same folder, then ``os.replace``), so a crash never
leaves half a PDF under the report's name, and a killed writer's temporary
file is removed by the next write. The report of the *same* verification is
written once: its Keywords carry the verification file's SHA-256, and
:func:`write_report` leaves a PDF alone that already names it.
"""

from __future__ import annotations

import datetime as _dt
from itertools import chain
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from calib import __version__
from calib.report.area_map import area_page_count, area_pages
from calib.report.figures import A4_PORTRAIT_IN, FAIL_COLOR, FIGURE_PAGES, PASS_COLOR
from calib.report.spinorama_page import spinorama_page_count, spinorama_pages
from calib.stages.unit_report import UnitReport
from calib.stages.verdict import Check
from calib.store.atomic import write_atomic

ROW_HEIGHT = 0.019
"""Table row height as a fraction of the A4 page height (16 pt)."""
MIN_ROW_HEIGHT = 0.0145
"""Rows shrink down to this (12.2 pt, 7.5 pt text) before a table continues on another page."""
TABLE_BOTTOM = 0.09
"""Figure height where a table ends: room for its notes and the footer."""
MORE_PAGE_TOP = 0.93
"""Where the table starts on a continuation page."""
MIN_ROWS_ON_A_PAGE = 8
"""A continuation page holds at least this many rows (or all of a shorter table): no row alone on a page."""
FAIL_ROW_COLOR = "#ffd7d5"
SIMULATED_TEXT = "SIMULATED"
TABLE_NOTES = (
    "Limit: the value judged, the procedure's target less its tolerance (a 15 dB target with 1 dB tolerance "
    "is judged ≥ 14 dB); exact checks compare equality.",
    "Predicted: the same metric from the characterize IRs through the fitted filters (calib fit); the driver "
    "checks (presence, polarity) judge the re-measured drivers and have no prediction (—).",
)


def rows_per_page(n_checks: int, first_height: float, more_height: float = MORE_PAGE_TOP - TABLE_BOTTOM,
                  row_height: float = ROW_HEIGHT, min_row_height: float = MIN_ROW_HEIGHT,
                  min_rows: int = MIN_ROWS_ON_A_PAGE) -> tuple[list[int], float]:
    """How a checks table of ``n_checks`` rows is split over pages, and its row height.

    Parameters
    ----------
    n_checks
        Rows (a header row is added on every page).
    first_height, more_height
        Height free for the table on page 1 and on a continuation page (fractions of the page).

    Returns
    -------
    (list of int, float)
        Rows on each page, and the row height: ``row_height``, or less (down
        to ``min_row_height``) if that keeps the table on page 1. A last page
        that would hold fewer than ``min_rows`` takes rows from the page before.
    """
    if n_checks + 1 <= first_height / row_height:
        return [n_checks], row_height
    if n_checks + 1 <= first_height / min_row_height:
        return [n_checks], first_height / (n_checks + 1)
    first, more = int(first_height / row_height) - 1, int(more_height / row_height) - 1
    sizes, rest = [first], n_checks - first
    while rest > more:
        sizes.append(more)
        rest -= more
    sizes.append(rest)
    short = min_rows - sizes[-1]
    if short > 0:
        sizes[-2] -= short
        sizes[-1] += short
    return sizes, row_height


def page_count(report: UnitReport) -> int:
    """Pages of the PDF :func:`write_report` writes for ``report``."""
    return len(summary_pages(report)) + len(FIGURE_PAGES) + spinorama_page_count(report) + area_page_count(report)


def _short(sha256: str | None) -> str:
    return f"{sha256[:12]}…" if sha256 else "—"


def _gate_text(gate) -> str:
    """``4.25 ms, >= 250 Hz`` (reflection-free time and the lowest frequency judged)."""
    if not gate.gated:
        return "ungated"
    return f"{gate.reflection_free_s * 1e3:.2f} ms, >= {gate.lowest_hz:.0f} Hz"


def _header(fig: Figure, report: UnitReport) -> float:
    """Identity and provenance block (left); returns the figure y where it ends."""
    proc = report.procedure
    ver = report.verification
    fig.text(0.06, 0.965, "calib — unit verification report", fontsize=16, fontweight="bold", va="top")
    software = sorted({f"calib {__version__}", report.characterize.software, ver.software})
    rows = [
        ("Serial", report.serial),
        ("Product", f"{proc.product.name} (id {proc.product.id})"),
        ("Verified (UTC)", ver.created_utc),
        ("Report (UTC)", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")),
        ("Station / rig", f"{report.station} / {ver.rig}"),
        ("Software", ", ".join(software)),
        ("Procedure", f"sha256 {_short(ver.procedure_sha256)}"),
    ]
    gates = report.gates
    if gates is not None and (gates.binaural.gated or any(g.gated for g in gates.directivity)):
        parts = [f"ears {_gate_text(gates.binaural)}"] + [
            f"{name} {_gate_text(g)}" for name, g in zip(report.characterize.receivers, gates.directivity, strict=True)
        ]
        rows.append(("IR gates", "; ".join(parts)))
    if report.calibration.serial != report.serial:
        rows.append(("Calibration of", f"unit {report.calibration.serial} (cross-unit verification)"))
    y = 0.92
    for label, value in rows:
        fig.text(0.06, y, label, fontsize=9, color="0.35", va="top")
        fig.text(0.22, y, value, fontsize=9, va="top", fontweight="bold" if label == "Serial" else "normal")
        y -= 0.021
    fig.text(0.06, y, "Files", fontsize=9, color="0.35", va="top")
    keys = ("characterize", "calibration", "verification")
    for key in keys:
        path = report.files.get(key)
        for x, text in ((0.22, key), (0.34, Path(path).name if path is not None else "—"),
                        (0.64, f"sha256 {_short(report.hashes.get(key))}")):
            fig.text(x, y, text, fontsize=7.5, va="top")
        y -= 0.018
    return y


def _verdict(fig: Figure, report: UnitReport) -> None:
    """Draw the verdict in large type (top right), the failure count and the SIMULATED mark under it."""
    n_fail = sum(not c.passed for c in report.checks)
    color = PASS_COLOR if report.verdict == "PASS" else FAIL_COLOR
    fig.text(0.84, 0.915, report.verdict, fontsize=40, fontweight="bold", color=color, ha="center", va="top",
             bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": color, "lw": 3})
    fig.text(0.84, 0.825, f"{len(report.checks)} checks, {n_fail} failed", fontsize=10, ha="center", va="top",
             color=color)
    if report.simulated:
        fig.text(0.84, 0.800, SIMULATED_TEXT, fontsize=14, color=FAIL_COLOR, fontweight="bold", ha="center", va="top")


def _table(fig: Figure, checks: list[Check], predicted: dict[str, Check], top: float, continued: bool,
           row_h: float = ROW_HEIGHT) -> None:
    """Draw checks as a table from figure height ``top`` down; failing rows tinted and bold, then the notes."""
    if not checks:
        fig.text(0.06, top, "No checks defined by the procedure's targets (verdict FAIL).", fontsize=10, va="top")
        return
    height = row_h * (len(checks) + 1)
    ax = fig.add_axes((0.04, top - height, 0.92, height))
    ax.set_axis_off()
    cells, colours = [], []
    for c in checks:
        op = {"<=": "≤", ">=": "≥", "==": "="}[c.op]
        pred = predicted.get(c.name)
        cells.append(
            [
                c.name,
                f"{c.value:.1f} {c.unit}".strip() if not c.exact else f"{c.value:+.0f}",
                f"{op} {c.limit:g} {c.unit}".strip() if not c.exact else f"{op} {c.limit:+.0f}",
                (f"{pred.value:.1f} {c.unit}".strip() if not c.exact else f"{pred.value:+.0f}")
                if pred is not None
                else "—",
                "PASS" if c.passed else "FAIL",
                c.detail,
            ]
        )
        colours.append(["white"] * 6 if c.passed else [FAIL_ROW_COLOR] * 6)
    labels = ["Check", "Verified", "Limit", "Predicted", "Result", "Detail"]
    table = ax.table(cellText=cells, colLabels=labels, cellColours=colours, loc="upper left", cellLoc="left",
                     colLoc="left", colWidths=[0.43, 0.10, 0.10, 0.09, 0.07, 0.21], bbox=Bbox.from_bounds(0, 0, 1, 1))
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.92")
        elif not checks[row - 1].passed:
            cell.set_text_props(fontweight="bold", color=FAIL_COLOR if col == 4 else "black")
        elif col == 4:
            cell.set_text_props(color=PASS_COLOR)
    below = top - height - 0.008
    if continued:
        fig.text(0.06, below, "(continued on the next page)", fontsize=8, va="top", color="0.35")
    else:
        for note in TABLE_NOTES:
            fig.text(0.06, below, note, fontsize=6.5, va="top", color="0.3", wrap=True)
            below -= 0.022


def summary_pages(report: UnitReport) -> list[Figure]:
    """Page 1 (header, verdict, checks) and continuation pages for long check lists."""
    predicted = {c.name: c for c in report.predicted_checks}
    checks = list(report.checks)
    first = Figure(figsize=A4_PORTRAIT_IN)
    y = _header(first, report) - 0.01
    _verdict(first, report)
    first.text(0.06, y, "Checks (verified metrics are binding; predicted from the characterize IRs)",
               fontsize=10, fontweight="bold", va="top")
    top = y - 0.022
    sizes, row_h = rows_per_page(len(checks), top - TABLE_BOTTOM)
    starts = np.cumsum([0, *sizes])
    chunks = [checks[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    _table(first, chunks[0], predicted, top, continued=len(chunks) > 1, row_h=row_h)
    pages = [first]
    for i, chunk in enumerate(chunks[1:], start=1):
        fig = Figure(figsize=A4_PORTRAIT_IN)
        fig.text(0.06, 0.965, f"Checks, continued — unit {report.serial}: {report.verdict}", fontsize=12,
                 fontweight="bold", va="top")
        _table(fig, chunk, predicted, MORE_PAGE_TOP, continued=i < len(chunks) - 1, row_h=row_h)
        pages.append(fig)
    return pages


def _footer(fig: Figure, report: UnitReport, page: int, total: int) -> None:
    sim = f"  —  {SIMULATED_TEXT}" if report.simulated else ""
    text = f"{report.procedure.product.id}  {report.serial}  {report.verdict}{sim}  —  page {page} of {total}"
    fig.text(0.5, 0.012, text, ha="center", fontsize=7, color="0.4")


def verification_tag(report: UnitReport) -> str:
    """Return the Keywords token naming the verification a report was made from."""
    return f"verification-sha256:{report.hashes.get('verification', '')}"


def is_report_of(path: str | Path, report: UnitReport) -> bool:
    """Return True if ``path`` is a complete PDF report of this very verification (same SHA-256)."""
    path = Path(path)
    if not report.hashes.get("verification") or not path.is_file():
        return False
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and verification_tag(report).encode() in data


def write_report(report: UnitReport, path: str | Path) -> Path:
    """Write the unit's PDF report to ``path``, once per verification.

    Parameters
    ----------
    report : UnitReport
    path : str or Path
        Destination; its folder is created.

    Returns
    -------
    Path
        ``path``. If it already was the report of this verification
        (:func:`is_report_of`) it is left as it is. The PDF's Title and Subject
        name the serial and the verdict, its Keywords the verification's SHA-256.
    """
    path = Path(path)
    if is_report_of(path, report):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summary_pages(report)
    total = len(summary) + len(FIGURE_PAGES) + spinorama_page_count(report) + area_page_count(report)
    metadata = {
        "Title": f"calib verification report {report.serial}: {report.verdict}",
        "Subject": f"{report.procedure.product.id} unit {report.serial} verdict {report.verdict}"
        + (" (simulated)" if report.simulated else ""),
        "Author": "calib",
        "Creator": f"calib {__version__}",
        "Keywords": f"{report.serial} {report.verdict} {report.procedure.product.id} {verification_tag(report)}",
    }

    def write(tmp: Path) -> None:
        # Type 42 (TrueType) fonts keep the text searchable and extractable.
        with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(tmp, metadata=metadata) as pdf:
            page = 0
            for fig in summary:
                page += 1
                _footer(fig, report, page, total)
                pdf.savefig(fig)
            for fig in chain((build(report) for build in FIGURE_PAGES), spinorama_pages(report), area_pages(report)):
                page += 1
                _footer(fig, report, page, total)
                pdf.savefig(fig)

    write_atomic(path, write, replace=True)
    return path
