"""The PDF report: pages, page-1 text, metadata, atomic replacement, and the figures' data.

Pages and text are read back with poppler (``pdftoppm``, ``pdftotext``,
``pdfinfo``), independently of matplotlib; the page count is also read from
the PDF's page tree (``/Type /Pages ... /Count n``).
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_pdf import PdfPages

from calib.metrics.bands import third_octave_bands
from calib.metrics.beam import wrap_deg
from calib.report import pdf as pdf_module
from calib.report.figures import (
    FIGURE_PAGES,
    centre_patterns,
    driver_onaxis_db,
    fig_beam,
    fig_cancellation,
    fig_directivity_maps,
    fig_driver_responses,
    ir_unit,
    nearest_azimuth,
    pattern_bands_db,
)
from calib.report.pdf import MIN_ROWS_ON_A_PAGE, ROW_HEIGHT, rows_per_page, summary_pages, write_report

POPPLER = all(shutil.which(t) for t in ("pdftoppm", "pdftotext", "pdfinfo"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext, pdfinfo) not installed")


def rendered_pages(pdf: Path, out: Path) -> int:
    """Pages that pdftoppm renders (PNG files written)."""
    out.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "12", "-png", str(pdf), str(out / "p")], check=True, capture_output=True)
    return len(list(out.glob("p-*.png")))


def page_text(pdf: Path, page: int, crop: tuple[float, float, float, float] | None = None) -> str:
    """Text of one page; ``crop`` = (x, y, width, height) as fractions of the page (origin top left)."""
    region = []
    if crop is not None:  # pdftotext crops in pixels at its -r resolution (72 dpi: points); A4 = 595 x 842 pt
        x, y, w, h = crop
        region = ["-r", "72", "-x", f"{x * 595:.0f}", "-y", f"{y * 842:.0f}", "-W", f"{w * 595:.0f}",
                  "-H", f"{h * 842:.0f}"]
    result = subprocess.run(["pdftotext", "-layout", *region, "-f", str(page), "-l", str(page), str(pdf), "-"],
                            check=True, capture_output=True, text=True)
    return result.stdout


VERDICT_BOX = (0.68, 0.0, 0.32, 0.25)
"""Top right of page 1: the verdict in large type, the failure count and the SIMULATED mark."""


def tree_count(pdf: Path) -> int:
    """``/Count`` of the root page tree node."""
    counts = re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf.read_bytes())
    assert counts, "no /Type /Pages node found"
    return max(int(c) for c in counts)


@pytest.fixture(scope="session")
def pdfs(reports, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pdf")  # the beam product's pages are drawn in test_beam_product_pages
    return {key: write_report(reports[key], out / f"{key}.pdf") for key in ("pass", "dead")}


# ------------------------------------------------------------------ the PDF


def test_page_count_summary_plus_one_page_per_figure(pdfs, reports, tmp_path) -> None:
    # Duo 2's 15 checks (4 driver checks, 11 acoustic) fit on page 1, then 7 figure pages.
    assert len(reports["pass"].checks) == len(reports["dead"].checks) == 15
    assert len(FIGURE_PAGES) == 7
    for key in ("pass", "dead"):
        assert tree_count(pdfs[key]) == 8
        if POPPLER:
            assert rendered_pages(pdfs[key], tmp_path / key) == 8


def test_rows_per_page_never_leaves_a_row_alone() -> None:
    # page 1 has room for 0.6 / 0.019 = 31 lines (30 rows and the header) at the normal height
    assert rows_per_page(0, 0.6) == ([0], ROW_HEIGHT)
    assert rows_per_page(30, 0.6) == ([30], ROW_HEIGHT)
    sizes, h = rows_per_page(34, 0.6)  # 4 more rows: shrunk onto page 1, not spilled onto a page of their own
    assert sizes == [34] and h == pytest.approx(0.6 / 35)
    assert rows_per_page(43, 0.6) == ([30, 13], ROW_HEIGHT)  # 44 lines do not fit even at 0.0145: continued
    assert rows_per_page(75, 0.6) == ([30, 37, 8], ROW_HEIGHT)  # not [30, 43, 2]: the last page takes 8 rows
    for n in range(0, 200):
        sizes, _ = rows_per_page(n, 0.6)
        assert sum(sizes) == n and all(k >= min(MIN_ROWS_ON_A_PAGE, n) for k in sizes), (n, sizes)


@needs_poppler
def test_page1_of_a_passing_simulated_unit(pdfs, reports) -> None:
    report = reports["pass"]
    text = page_text(pdfs["pass"], 1)
    assert report.serial in text
    assert page_text(pdfs["pass"], 1, VERDICT_BOX).split()[:6] == ["PASS", "15", "checks,", "0", "failed", "SIMULATED"]
    assert "FAIL" not in text
    assert "Duo 2 compact stereo" in text and "duo2" in text
    for key in ("characterize", "calibration", "verification"):
        assert Path(report.files[key]).name in text
        assert report.hashes[key][:12] in text
    for check in report.checks:
        assert check.name in text
    assert "15 checks, 0 failed" in text


@needs_poppler
def test_fail_report_names_the_failing_checks_on_page1(pdfs, reports) -> None:
    report = reports["dead"]
    failing = [c for c in report.checks if not c.passed]
    assert report.verdict == "FAIL" and len(failing) >= 6  # a dead driver ruins the cancellation
    text = page_text(pdfs["dead"], 1)
    assert page_text(pdfs["dead"], 1, VERDICT_BOX).split()[0] == "FAIL"
    for check in failing:
        line = next(ln for ln in text.splitlines() if check.name in ln)
        assert "FAIL" in line, line
        assert f"{check.value:.1f} dB" in line, line
    assert f"{len(report.checks)} checks, {len(failing)} failed" in text


@needs_poppler
def test_metadata_names_serial_and_verdict(pdfs, reports) -> None:
    for key in ("pass", "dead"):
        info = subprocess.run(["pdfinfo", str(pdfs[key])], check=True, capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        serial, verdict = reports[key].serial, reports[key].verdict
        for name in ("Title", "Subject"):
            assert serial in fields[name] and verdict in fields[name], fields[name]


@needs_poppler
def test_figure_pages_are_titled(pdfs) -> None:
    titles = ("Drivers", "Distortion and noise floor", "Directivity", "Centre beam", "Crosstalk cancellation",
              "Filters", "Measurement quality")
    for page, title in enumerate(titles, start=2):
        text = page_text(pdfs["pass"], page)
        assert title in text and f"page {page} of 8" in text


@needs_poppler
def test_real_rig_is_not_marked_simulated_and_long_check_lists_continue(reports, tmp_path) -> None:
    report = reports["dead"]
    real = dataclasses.replace(
        report,
        characterize=dataclasses.replace(report.characterize, simulated=False, rig="portaudio"),
        verification=dataclasses.replace(report.verification, simulated=False, rig="portaudio"),
        checks=report.checks * 4,  # 60 checks: page 1 and one continuation page
    )
    pages = summary_pages(real)
    assert len(pages) == 2
    path = tmp_path / "summary.pdf"
    with PdfPages(path) as out:
        for fig in pages:
            out.savefig(fig)
    first, second = page_text(path, 1), page_text(path, 2)
    assert "SIMULATED" not in first + second
    assert page_text(path, 1, VERDICT_BOX).split()[:5] == ["FAIL", "60", "checks,", "40", "failed"]
    assert "portaudio" in first and "continued" in first
    names = {c.name for c in report.checks}

    def rows(text: str) -> int:
        return sum(any(name in line for name in names) for line in text.splitlines())

    assert rows(first) + rows(second) == 60 and rows(second) >= MIN_ROWS_ON_A_PAGE


def test_replacing_a_report_is_atomic(reports, tmp_path, monkeypatch) -> None:
    report = reports["pass"]
    path = tmp_path / "unit.pdf"
    path.write_bytes(b"old report")

    def broken(_report):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(pdf_module, "FIGURE_PAGES", (broken,))
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(report, path)
    assert path.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["unit.pdf"], "no temporary file left behind"

    monkeypatch.setattr(pdf_module, "FIGURE_PAGES", ())
    assert write_report(report, path) == path
    assert path.read_bytes().startswith(b"%PDF") and tree_count(path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["unit.pdf"]


# ------------------------------------------------------------- figure data


def test_nearest_azimuth_wraps_around() -> None:
    az = np.array([0.0, 30.0, 60.0, 90.0, 120.0, 150.0, -180.0, -150.0, -120.0, -90.0, -60.0, -30.0])
    assert nearest_azimuth(az) == 0
    assert nearest_azimuth(az, 179.0) == 6
    assert nearest_azimuth(az, -95.0) == 9


def test_onaxis_level_matches_the_sim_sensitivity(reports) -> None:
    # Duo 2 sim: 85 dB SPL at 1 m for a full-scale sine, mic 2 m from the axis,
    # driver 3 cm forward and 7.5 cm to the side, input gain 0.05 FS/Pa:
    # |H| = p(1 m) * 1 m / r * 0.05 (peak over peak). Unit variation: 0.5 dB sd.
    freqs, level = driver_onaxis_db(reports["pass"])
    r = np.hypot(2.0 - 0.03, 0.075)
    expected = 20 * np.log10(20e-6 * 10 ** (85 / 20) * np.sqrt(2) / r * 0.05)
    i = int(np.argmin(np.abs(freqs - 1000.0)))
    np.testing.assert_allclose(level[:, i], expected, atol=1.5)


def test_centre_pattern_reproduces_the_verified_beam_metrics(reports) -> None:
    report = reports["beam"]
    freqs, verified, predicted = centre_patterns(report)
    az = report.verification.azimuth_deg
    bands = third_octave_bands(*report.procedure.targets.beam.band_hz)
    ver_db = pattern_bands_db(verified, freqs, az, bands)
    np.testing.assert_allclose(ver_db[nearest_azimuth(az)], 0.0, atol=1e-9)
    lobe = np.min(ver_db[np.abs(wrap_deg(az)) <= 45], axis=0)
    np.testing.assert_allclose(lobe, report.verified.beam.main_lobe_db, atol=0.05)
    # predicted (characterize IRs x centre FIRs) agrees with the re-measurement off the nulls
    # (the sector design puts deep minima wherever it can, not only at +-90 deg: compare down to
    # -35 dB re on axis; on the coarse report grid the capture noise makes deeper levels differ)
    pre_db = pattern_bands_db(predicted, freqs, az, bands)
    off_null = (np.abs(np.abs(wrap_deg(az)) - 90.0) > 1.0)[:, None] & (pre_db > -35.0)
    # verified on the checks' azimuths of the 30-degree grid (0, +-30, +-90): 3 of the 5 are off +-90 deg
    assert off_null.mean() >= 0.6
    np.testing.assert_allclose(pre_db[off_null], ver_db[off_null], atol=1.0)


def test_figures_survive_a_silent_driver_and_infinite_gains(reports) -> None:
    report = reports["pass"]
    char_ir = report.characterize.directivity_ir.copy()
    char_ir[:, :, 0] = 0.0  # driver 'left' silent: -inf dB on axis
    cg = report.verified.ctc.cancellation_db.copy()
    cg[0, 0, :3] = (np.inf, -np.inf, np.nan)
    verified = dataclasses.replace(report.verified, ctc=dataclasses.replace(report.verified.ctc, cancellation_db=cg))
    broken = dataclasses.replace(
        report, characterize=dataclasses.replace(report.characterize, directivity_ir=char_ir), verified=verified
    )
    fig = fig_driver_responses(broken)
    top = fig.axes[0]
    freqs, level = driver_onaxis_db(broken)
    assert np.all(np.isneginf(level[0, 1:]))
    lo, hi = report.procedure.sweep.band_hz
    np.testing.assert_allclose(top.get_ylim()[1], np.max(level[1, (freqs >= lo) & (freqs <= hi)]) + 5.0, atol=1e-9)
    fig = fig_cancellation(broken)
    for k, ax in enumerate(fig.axes[0:4:2]):  # input L design positions (with the non-finite bands), input R
        finite = cg[k][np.isfinite(cg[k])]
        np.testing.assert_allclose(ax.get_ylim(), (min(-5.0, finite.min() - 2), max(30.0, finite.max() + 3)))
    fig.savefig(io.BytesIO(), format="pdf")  # draws without error


def test_beam_product_pages(reports) -> None:
    """Aurora 5 beam panels: verified against limits, predicted apart, sector shaded, WNG.

    Aurora 5 (5 drivers, a centre beam): the beam panels show the verified metrics against their limits,
    predicted apart from verified (line style and colour), the sector shaded, the WNG against frequency.
    """
    report = reports["beam"]
    beam = report.procedure.targets.beam
    fig = fig_beam(report)
    polar, sector_ax, null_ax, lobe_ax, wng_ax = fig.axes[:5]
    np.testing.assert_allclose(
        sector_ax.lines[0].get_ydata(), report.verified.beam.sector_rejection_db[0], rtol=1e-12
    )
    np.testing.assert_allclose(null_ax.lines[0].get_ydata(), report.verified.beam.null_depth_db[0], rtol=1e-12)
    np.testing.assert_allclose(lobe_ax.lines[0].get_ydata(), report.verified.beam.main_lobe_db, rtol=1e-12)
    assert sector_ax.lines[-1].get_ydata()[0] == beam.sector_rejection_min_db - beam.tolerance_db
    assert null_ax.lines[-1].get_ydata()[0] == beam.null_depth_min_db - beam.tolerance_db
    assert lobe_ax.lines[-1].get_ydata()[0] == beam.main_lobe_min_db - beam.tolerance_db
    for ax in (sector_ax, null_ax, lobe_ax):  # verified vs predicted: both style and colour differ
        ver = next(line for line in ax.lines if "verified" in line.get_label())
        pre = next(line for line in ax.lines if "predicted" in line.get_label())
        assert ver.get_linestyle() != pre.get_linestyle() and ver.get_color() != pre.get_color()
    for ver, pre in zip(polar.lines[0::2], polar.lines[1::2], strict=True):
        assert "verified" in ver.get_label() and "predicted" in pre.get_label()
        assert ver.get_linestyle() != pre.get_linestyle() and ver.get_color() != pre.get_color()
    shaded = [c for c in polar.collections if c.get_label().startswith("null sector")]
    assert len(shaded) == 1 and shaded[0].get_label() == "null sector 80-100°"
    # WNG: the per-bin curve of the design; the band markers are the predicted metric
    np.testing.assert_allclose(wng_ax.lines[1].get_ydata(), report.predicted.beam.wng_db, rtol=1e-12)
    assert wng_ax.lines[-1].get_ydata()[0] == beam.wng_min_db
    fig.savefig(io.BytesIO(), format="pdf")
    fig = fig_directivity_maps(report)
    assert fig.axes[1].get_title() == "Input C, beamformed centre (verification)"
    spans = [p for p in fig.axes[1].patches if p.get_label() == "null sector 80-100°"]
    assert len(spans) == 1 and len(fig.axes[1].patches) == 2  # both sides shaded, one legend entry
    fig.savefig(io.BytesIO(), format="pdf")
    # Aurora 5's 34 checks (10 driver checks, 24 acoustic) fit page 1 (rows a little lower than 16 pt)
    assert len(report.checks) == 34 and len(summary_pages(report)) == 1


def test_ir_unit_follows_the_file_attributes(reports) -> None:
    meas = reports["pass"].characterize
    assert ir_unit(meas) == "FS/FS"
    absolute = dataclasses.replace(meas, attrs={**meas.attrs, "ir_unit_directivity": "Pa/FS"})
    assert (ir_unit(absolute), ir_unit(absolute, "binaural")) == ("Pa/FS", "FS/FS")
    fig = fig_driver_responses(dataclasses.replace(reports["pass"], characterize=absolute))
    assert fig.axes[0].get_ylabel() == "SPL at 0 dBFS (dB re 20 µPa)"
    # the same IRs in pascal per FS: the level is 20 log10(|H| / (sqrt(2) 20 uPa)), |H| in FS/FS numbers
    freqs, relative = driver_onaxis_db(reports["pass"])
    _, spl = driver_onaxis_db(dataclasses.replace(reports["pass"], characterize=absolute))
    np.testing.assert_allclose(spl[:, 1:] - relative[:, 1:], -20 * np.log10(np.sqrt(2) * 20e-6), rtol=1e-12)
