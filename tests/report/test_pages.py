"""The report page by page: every page rendered to PNG (poppler's pdftoppm) and checked for what a program can.

- the checks table: no row alone on a page, units in every value column, the notes on limits and predictions;
- every plot axis labelled (a shared x axis labelled once, under its column);
- the cancellation shading (below the design limit) under no passing curve, holdouts in panels without it;
- predicted and verified lines told apart by line style and colour, the predicted drawn on top;
- no saturated colour scale, integer ticks on counts, the legend where its lines are drawn.

The figures are inspected as matplotlib objects (what is drawn, not pixels); the PNGs show that poppler
renders every page and that none is blank. Reports come from the session fixtures (tests/report/conftest.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.image import imread
from matplotlib.projections.polar import PolarAxes

from calib.report.figures import (
    FIGURE_PAGES,
    NO_SPECTRA_TEXT,
    fig_beam,
    fig_cancellation,
    fig_directivity_maps,
    fig_distortion_noise,
    fig_filters,
    fig_quality,
)
from calib.report.pdf import MIN_ROWS_ON_A_PAGE, summary_pages, write_report

needs_poppler = pytest.mark.skipif(not all(shutil.which(t) for t in ("pdftoppm", "pdftotext")),
                                   reason="poppler-utils (pdftoppm, pdftotext) not installed")


@pytest.fixture(scope="session")
def beam_pdf(reports, tmp_path_factory) -> Path:
    return write_report(reports["beam"], tmp_path_factory.mktemp("pages") / "beam.pdf")


@needs_poppler
def test_every_page_renders_to_a_png_that_is_not_blank(reports, beam_pdf, tmp_path) -> None:
    subprocess.run(["pdftoppm", "-r", "24", "-png", str(beam_pdf), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == len(summary_pages(reports["beam"])) + len(FIGURE_PAGES) == 8
    for png in pngs:
        ink = np.mean(imread(png)[..., :3], axis=-1) < 0.9  # anything darker than a light grey
        assert 0.01 < ink.mean() < 0.9, (png.name, ink.mean())


@needs_poppler
def test_checks_table_rows_units_and_notes(reports, beam_pdf) -> None:
    report = reports["beam"]
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(beam_pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    rows = [line for line in text.splitlines() if any(c.name in line for c in report.checks)]
    assert len(rows) == len(report.checks) == 34  # all on page 1, none spilled alone onto page 2
    predicted = {c.name: c for c in report.predicted_checks}
    for check in report.checks:
        line = next(ln for ln in rows if check.name in ln)
        if check.name in predicted and not check.exact:  # the Predicted column carries the unit too
            assert len(re.findall(rf"-?\d+\.\d {re.escape(check.unit)}", line)) == 2, line
    flat = " ".join(text.split())
    assert "target less its tolerance" in flat and "have no prediction" in flat


def test_long_tables_leave_no_row_alone(reports) -> None:
    import dataclasses

    report = reports["dead"]
    for n in (16, 31, 45, 75, 90):  # repeated checks: page 1 shrunk, or continued with at least 8 rows
        long = dataclasses.replace(report, checks=(report.checks * 7)[:n])
        pages = summary_pages(long)
        per_page = [len(p.axes[0].tables[0].get_celld()) // 6 - 1 for p in pages]
        assert sum(per_page) == n and min(per_page) >= min(n, MIN_ROWS_ON_A_PAGE), (n, per_page)


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.axison and not isinstance(ax, PolarAxes)
            and (ax.lines or ax.collections or ax.images or ax.patches)]


@pytest.mark.parametrize("key", ["beam", "dead"])
def test_every_axis_is_labelled(reports, key) -> None:
    report = reports[key]
    for build in FIGURE_PAGES:
        fig = build(report)
        for ax in _data_axes(fig):
            where = f"{build.__name__}: {ax.get_title()!r}"
            assert ax.get_ylabel().strip(), where
            if hasattr(ax, "_colorbar"):  # a vertical colour bar: its label is the y label
                continue
            siblings = ax.get_shared_x_axes().get_siblings(ax)
            assert any(s.get_xlabel().strip() for s in siblings), where


def _verified_and_predicted(ax):
    lines = [ln for ln in ax.lines if np.size(ln.get_xdata()) > 1]
    verified = [ln for ln in lines if ln.get_linestyle() == "-" and "predicted" not in ln.get_label()]
    predicted = [ln for ln in lines if ln.get_linestyle() == "--"]
    return verified, predicted


def test_cancellation_shading_covers_no_passing_curve(reports) -> None:
    for key in ("beam", "dead"):
        report = reports[key]
        passed = {c.name: c.passed for c in report.checks}
        fig = fig_cancellation(report)
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["Input L: design positions", "Input L: holdout positions (◂ median)",
                          "Input R: design positions", "Input R: holdout positions (◂ median)"]
        for ax in fig.axes:
            inp = ax.get_title()[6]
            shades = [c for c in ax.collections if isinstance(c, PolyCollection)]
            verified, predicted = _verified_and_predicted(ax)
            if "holdout" in ax.get_title():
                holdouts = [q.name for q in report.procedure.positions if not q.design]
                assert shades == [] and [v.get_label() for v in verified] == holdouts  # judged on the median
                continue
            (shade,) = shades
            edge = shade.get_paths()[0].vertices
            top = edge[edge[:, 1] > -99.0]
            order = np.argsort(top[:, 0])
            checked = failed = 0
            for line in verified:
                name = line.get_label()
                if name == "target" or name.startswith("limit"):
                    continue
                x, y = line.get_xdata(), line.get_ydata()
                inside = y < np.interp(np.log(x), np.log(top[order, 0]), top[order, 1]) - 1e-9
                if passed[f"cancellation {inp} @ {name}"]:
                    assert not inside.any(), (key, ax.get_title(), name)
                    checked += 1
                else:  # a failing curve does enter the shading: the region means what it says
                    assert inside.any(), (key, ax.get_title(), name)
                    failed += 1
            assert (checked, failed) == ((5, 0) if key == "beam" else (0, checked + failed)) and checked + failed >= 1
            # the whole target range is drawn: the plot reaches past its top (6 kHz for Aurora 5)
            assert ax.get_xlim()[1] > report.procedure.targets.cancellation.band_hz()[1]


def test_predicted_and_verified_are_told_apart_and_both_visible(reports) -> None:
    report = reports["beam"]
    fig = fig_beam(report)
    panels = [ax for ax in fig.axes[1:4]]  # sector, point nulls, main lobe
    for ax in panels + fig_cancellation(report).axes:
        verified, predicted = _verified_and_predicted(ax)
        verified = [v for v in verified if v.get_label() not in ("target",)]
        assert verified and predicted, ax.get_title()
        for pre in predicted:
            for ver in verified:
                assert pre.get_color() != ver.get_color(), ax.get_title()
                assert pre.get_zorder() > ver.get_zorder(), ax.get_title()  # dashes on top: both show
                assert pre.get_linewidth() < ver.get_linewidth(), ax.get_title()


def test_polar_labels_maps_filters_and_quality(reports) -> None:
    report = reports["beam"]
    polar = fig_beam(report).axes[0]
    labels = [t.get_text() for t in polar.get_yticklabels()]
    assert labels[0] == "−30 dB" and labels[-1] == "0 dB"
    assert all(t.get_bbox_patch() is not None for t in polar.get_yticklabels())  # legible over the rings
    beam_ax = fig_beam(report).axes[1]
    assert "800" in [t.get_text() for t in beam_ax.get_xticklabels()]  # every judged band has its label
    # directivity maps: the colour scale reaches the loudest cell (nothing saturates), no grid over the cells
    maps = fig_directivity_maps(report)
    for ax in maps.axes[:2]:
        (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
        assert mesh.norm.vmax >= np.nanmax(mesh.get_array()) and not any(g.get_visible() for g in ax.get_xgridlines())
    # filters: the legend sits where the effort limit is drawn; the limit's colour is no driver's; a short span
    filters = fig_filters(report)
    legend_ax = next(ax for ax in filters.axes if ax.get_legend() is not None)
    assert "effort limit" in [ln.get_label() for ln in legend_ax.lines]
    limit = next(ln for ln in legend_ax.lines if ln.get_label() == "effort limit")
    assert all(ln.get_color() != limit.get_color() for ln in legend_ax.lines if ln is not limit)
    ir_ax = filters.axes[0]
    assert ir_ax.get_xlim()[1] < report.calibration.taps / report.calibration.sample_rate * 1e3
    assert ir_ax.get_ylabel() and "re unity" in filters.axes[1].get_ylabel()
    # quality: counts have whole-number ticks; an empty retries panel says why
    quality = fig_quality(report)
    for ax in quality.axes[4:6]:
        ticks = ax.get_yticks()
        np.testing.assert_array_equal(ticks, np.round(ticks))
        assert any(t.get_text() == "no step needed a retry" for t in ax.texts)


def test_verification_latencies_are_its_own(reports) -> None:
    """A verification draws its own latency, not the characterize run's.

    The sim draws latency per call; a verification is a run of its own, not the characterize run's draws
    again (page 8 showed both latency series on top of each other).
    """
    report = reports["beam"]
    char, ver = (m.quality["directivity"]["latency_samples"][:, 0] for m in (report.characterize, report.verification))
    # the verification measures the checks' azimuths only (calib.procedure.layout.check_azimuths): compare those
    at = [int(np.argmin(np.abs(np.asarray(report.characterize.azimuth_deg) - a)))
          for a in report.verification.azimuth_deg]
    assert char.size == 12 and ver.size == len(at) >= 4 and np.mean(char[at] != ver) > 0.7
    assert len(np.unique(ver)) >= ver.size - 1  # and it changes from call to call


def test_distortion_and_noise_page(reports, tmp_path) -> None:
    """THD (%) and noise per band against frequency, one line per driver, from the characterize file; in PNG.

    The page shows exactly the stored on-axis bands; the noise axis names its reference (dBFS, or dB SPL when
    the file says the microphones were calibrated); an older file without the spectra gets a note, not a crash.
    """
    import dataclasses

    report = reports["beam"]
    meas = report.characterize
    fig = fig_distortion_noise(report)
    fig.savefig(tmp_path / "thd.png", dpi=30)
    ink = np.mean(imread(tmp_path / "thd.png")[..., :3], axis=-1) < 0.9
    assert 0.01 < ink.mean() < 0.9
    thd_ax, noise_ax = fig.axes[:2]
    assert thd_ax.get_ylabel() == "THD (%)" and thd_ax.get_yscale() == "log"
    assert noise_ax.get_ylabel() == "noise per 1/3-octave band (dBFS, re a full-scale sine)"
    assert noise_ax.get_xlabel() == "frequency (Hz)"
    assert [ln.get_label() for ln in thd_ax.lines] == [ln.get_label() for ln in noise_ax.lines] == meas.sources
    front = int(np.argmin(np.abs(meas.azimuth_deg)))
    mic = next(m for m in range(len(meas.receivers)) if meas.receivers[m] in fig.texts[1].get_text())
    stored = meas.quality["directivity"]["thd_band_percent"][front, mic]
    for s, line in enumerate(thd_ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), meas.band_centre_hz)
        np.testing.assert_array_equal(line.get_ydata(), stored[s])
    assert np.isfinite(stored).sum() > stored.size / 3  # THD is measured up to half the sweep band
    # the noise drawn is the power mean over the azimuths of the stored levels (their values: tests/capture)
    noise = meas.quality["directivity"]["noise_band_db"][:, mic]  # [A, S, B]
    for s, line in enumerate(noise_ax.lines):
        np.testing.assert_allclose(line.get_ydata(), 10 * np.log10(np.mean(10 ** (noise[:, s] / 10), axis=0)))
        assert np.all(np.isfinite(line.get_ydata()))
    spl = dataclasses.replace(report, characterize=dataclasses.replace(meas, noise_unit={"directivity": "dB SPL"}))
    assert fig_distortion_noise(spl).axes[1].get_ylabel() == "noise per 1/3-octave band (dB SPL, re 20 µPa)"
    old = dataclasses.replace(report, characterize=dataclasses.replace(meas, band_centre_hz=None, noise_unit={}))
    texts = [t.get_text() for ax in fig_distortion_noise(old).axes for t in ax.texts]
    assert texts == [NO_SPECTRA_TEXT] * 2
