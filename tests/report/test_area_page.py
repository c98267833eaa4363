"""The listening area page of the PDF: there for a calibration with a bank, absent without; its figures true.

The unit is tests/conftest.py's ``area_unit`` (a +-5 cm area, 4 cells), verified once per run; the page's text
is read with poppler (pdftotext) and compared with what :mod:`calib.stages.area_verify` computes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.report.area_map import area_page_count, area_pages
from calib.report.figures import FIGURE_PAGES
from calib.report.pdf import page_count, summary_pages, write_report
from calib.stages.area_verify import predicted_area_map

needs_poppler = pytest.mark.skipif(not all(shutil.which(t) for t in ("pdftoppm", "pdftotext")),
                                   reason="poppler-utils (pdftoppm, pdftotext) not installed")


def page_text(pdf: Path, page: int) -> str:
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def pages_of(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


@needs_poppler
def test_area_page_names_fixed_and_tracked_figures_as_computed(area_unit, tmp_path) -> None:
    report = area_unit.verified()
    pdf = write_report(report, tmp_path / "area.pdf")
    n = page_count(report)
    assert pages_of(pdf) == n
    text = page_text(pdf, n)  # the last page
    assert "Listening area" in text and "fixed against tracked CTC" in text
    # The figures on the page are those of the map computed again from the files.
    again = predicted_area_map(report.procedure, report.characterize, report.calibration)
    assert_allclose(again.tracked_db, report.area_map.tracked_db, atol=1e-9)
    figures = re.search(r"median over the map: fixed calibration (-?[\d.]+) dB, tracked (-?[\d.]+) dB", text)
    fixed, tracked = float(figures.group(1)), float(figures.group(2))
    assert_allclose([fixed, tracked], [np.median(again.fixed_db), np.median(again.tracked_db)], atol=0.051)
    assert tracked > fixed + 5.0  # the bank holds the area, the fixed filters their zone
    # Every hidden head listed with its cell and its verified figure.
    hidden = report.hidden
    for name, cell, value in zip(hidden.names, hidden.cells, hidden.tracked_db, strict=True):
        line = next(ln for ln in text.splitlines() if name in ln)
        assert re.search(rf"cell\s+{cell}\s+tracked\s+{value:.1f} dB", line) and line.rstrip().endswith("PASS"), line
    # The page renders (poppler) and is not blank.
    subprocess.run(["pdftoppm", "-r", "24", "-png", "-f", str(n), "-l", str(n), str(pdf), str(tmp_path / "p")],
                   check=True)
    assert len(list(tmp_path.glob("p-*.png"))) == 1


def test_no_area_page_without_a_bank(reports) -> None:
    """A fixed calibration's report has no area page (tests/report/test_pages.py renders that PDF: 7 pages)."""
    report = reports["beam"]
    assert report.calibration.area is None and report.area_map is None and report.hidden is None
    assert area_pages(report) == [] and area_page_count(report) == 0
    assert page_count(report) == len(summary_pages(report)) + len(FIGURE_PAGES)
