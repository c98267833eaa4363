"""The per-unit PDF verification report.

Page 1 is what a lab engineer signs off: unit identity, provenance (files
and their SHA-256), the verdict in large type and the table of checks with
the failing ones highlighted; a rig that moved no air is marked SIMULATED in
red. The figures of :mod:`calib.report.figures` follow, one page each.

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
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from calib import __version__
from calib.report.figures import A4_PORTRAIT_IN, FAIL_COLOR, FIGURE_PAGES, PASS_COLOR
from calib.report.model import UnitReport
from calib.report.spinorama_page import spinorama_page_count, spinorama_pages
from calib.stages.checks import Check
from calib.store.atomic import write_atomic

FIRST_PAGE_CHECKS = 30
"""Check rows on page 1; more continue on extra summary pages."""
MORE_PAGE_CHECKS = 44
ROW_HEIGHT = 0.019
"""Table row height as a fraction of the A4 page height."""
FAIL_ROW_COLOR = "#ffd7d5"
SIMULATED_TEXT = "SIMULATED"


def summary_page_count(n_checks: int) -> int:
    """Pages the summary (header and checks table) takes for ``n_checks`` checks."""
    extra = max(0, n_checks - FIRST_PAGE_CHECKS)
    return 1 + -(-extra // MORE_PAGE_CHECKS)


def page_count(report: UnitReport) -> int:
    """Pages of the PDF :func:`write_report` writes for ``report``."""
    return summary_page_count(len(report.checks)) + len(FIGURE_PAGES) + spinorama_page_count(report)


def _short(sha256: str | None) -> str:
    return f"{sha256[:12]}…" if sha256 else "—"


def _gate_text(gate) -> str:  # noqa: ANN001 - Gate
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
        ("Report (UTC)", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")),
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
    """The verdict in large type (top right), the failure count and the SIMULATED mark under it."""
    n_fail = sum(not c.passed for c in report.checks)
    color = PASS_COLOR if report.verdict == "PASS" else FAIL_COLOR
    fig.text(0.84, 0.915, report.verdict, fontsize=40, fontweight="bold", color=color, ha="center", va="top",
             bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": color, "lw": 3})
    fig.text(0.84, 0.825, f"{len(report.checks)} checks, {n_fail} failed", fontsize=10, ha="center", va="top",
             color=color)
    if report.simulated:
        fig.text(0.84, 0.800, SIMULATED_TEXT, fontsize=14, color=FAIL_COLOR, fontweight="bold", ha="center", va="top")


def _table(fig: Figure, checks: list[Check], predicted: dict[str, Check], top: float, continued: bool) -> None:
    """Checks as a table from figure height ``top`` down; failing rows tinted and bold."""
    if not checks:
        fig.text(0.06, top, "No checks defined by the procedure's targets (verdict FAIL).", fontsize=10, va="top")
        return
    row_h = ROW_HEIGHT
    height = row_h * (len(checks) + 1)
    ax = fig.add_axes((0.04, top - height, 0.92, height))
    ax.set_axis_off()
    cells, colours = [], []
    for c in checks:
        op = {"<=": "≤", ">=": "≥", "==": "="}[c.op]
        pred = predicted.get(c.name)
        cells.append([
            c.name,
            f"{c.value:.1f} {c.unit}".strip() if not c.exact else f"{c.value:+.0f}",
            f"{op} {c.limit:g} {c.unit}".strip() if not c.exact else f"{op} {c.limit:+.0f}",
            f"{pred.value:.1f}" if pred is not None else "—",
            "PASS" if c.passed else "FAIL",
            c.detail,
        ])
        colours.append(["white"] * 6 if c.passed else [FAIL_ROW_COLOR] * 6)
    labels = ["Check", "Verified", "Limit", "Predicted", "Result", "Detail"]
    table = ax.table(cellText=cells, colLabels=labels, cellColours=colours, loc="upper left", cellLoc="left",
                     colLoc="left", colWidths=[0.43, 0.10, 0.10, 0.09, 0.07, 0.21], bbox=(0, 0, 1, 1))
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
    if continued:
        fig.text(0.06, top - height - 0.01, "(continued on the next page)", fontsize=8, va="top", color="0.35")


def summary_pages(report: UnitReport) -> list[Figure]:
    """Page 1 (header, verdict, checks) and continuation pages for long check lists."""
    predicted = {c.name: c for c in report.predicted_checks}
    checks = list(report.checks)
    first = Figure(figsize=A4_PORTRAIT_IN)
    y = _header(first, report) - 0.01
    _verdict(first, report)
    first.text(0.06, y, "Checks (verified metrics are binding; predicted from the characterize IRs)",
               fontsize=10, fontweight="bold", va="top")
    chunks = [checks[:FIRST_PAGE_CHECKS]] + [
        checks[i:i + MORE_PAGE_CHECKS] for i in range(FIRST_PAGE_CHECKS, len(checks), MORE_PAGE_CHECKS)
    ]
    _table(first, chunks[0], predicted, y - 0.022, continued=len(chunks) > 1)
    pages = [first]
    for i, chunk in enumerate(chunks[1:], start=1):
        fig = Figure(figsize=A4_PORTRAIT_IN)
        fig.text(0.06, 0.965, f"Checks, continued — unit {report.serial}: {report.verdict}", fontsize=12,
                 fontweight="bold", va="top")
        _table(fig, chunk, predicted, 0.93, continued=i < len(chunks) - 1)
        pages.append(fig)
    return pages


def _footer(fig: Figure, report: UnitReport, page: int, total: int) -> None:
    sim = f"  —  {SIMULATED_TEXT}" if report.simulated else ""
    text = f"{report.procedure.product.id}  {report.serial}  {report.verdict}{sim}  —  page {page} of {total}"
    fig.text(0.5, 0.012, text, ha="center", fontsize=7, color="0.4")


def verification_tag(report: UnitReport) -> str:
    """The Keywords token naming the verification a report was made from."""
    return f"verification-sha256:{report.hashes.get('verification', '')}"


def is_report_of(path: str | Path, report: UnitReport) -> bool:
    """True if ``path`` is a complete PDF report of this very verification (same SHA-256)."""
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
    total = page_count(report)
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
            for fig in summary_pages(report):
                page += 1
                _footer(fig, report, page, total)
                pdf.savefig(fig)
            for fig in chain((build(report) for build in FIGURE_PAGES), spinorama_pages(report)):
                page += 1
                _footer(fig, report, page, total)
                pdf.savefig(fig)

    write_atomic(path, write, replace=True)
    return path
