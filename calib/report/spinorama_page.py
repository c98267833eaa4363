"""Spinorama pages of the unit report (CTA-2034-A layout), when the procedure measured the sphere.

The standard's layout: On Axis, Listening Window, Early Reflections, Sound
Power and the Estimated In-Room Response on the left axis (dB), the two
directivity indices on a right axis whose span is the left one's, shifted
down, so the DIs sit under the curves they are the differences of. Page 1:
the beamformed centre C and the CTC inputs L and R as verified (solid), the
predicted DIs dashed, and a table of both DIs over the beam band; page 2: the
drivers, each about its own axis, predicted from the characterize IRs.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from calib.metrics.spinorama import CURVES, DI_CURVES
from calib.report.figures import TITLE_Y, _freq_axis, _grid, _page, _plots
from calib.stages.spinorama import Spinorama
from calib.stages.unit_report import UnitReport

COLORS = {"On Axis": "#1f77b4", "Listening Window": "#ff7f0e", "Early Reflections": "#2ca02c",
          "Sound Power": "#d62728", "Estimated In-Room Response": "#9467bd",
          "Early Reflections DI": "#8c564b", "Sound Power DI": "#e377c2"}
DI_SPAN_DB = 45.0
"""Vertical span of both axes (dB); the DI axis starts at 0 dB."""


def di_band_table(report: UnitReport, source: str = "C") -> list[tuple[str, float, float]]:
    """Mean ERDI and SPDI over the beam band (or 500 Hz - 4 kHz): ``(curve, predicted, verified)`` in dB."""
    spin = report.spinorama or {}
    band = report.procedure.targets.beam.band_hz if report.procedure.targets.beam else (500.0, 4000.0)
    rows: list[tuple[str, float, float]] = []
    for name in DI_CURVES:
        values = []
        for which in ("predicted", "verified"):
            s = spin[which]
            inside = (s.bands_hz >= band[0]) & (s.bands_hz <= band[1])
            values.append(float(np.nanmean(s.curves[source][name][inside])))
        rows.append((name, values[0], values[1]))
    return rows


def _spin_axes(ax, spin: Spinorama, source: str, predicted: Spinorama | None, title: str,
               legend: bool = True) -> None:
    curves = spin.curves[source]
    f = spin.bands_hz
    top = np.nanmax([np.nanmax(curves[c]) for c in CURVES])
    top = 5.0 * np.ceil((top + 3.0) / 5.0)
    for name in CURVES:
        ax.plot(f, curves[name], color=COLORS[name], lw=1.2, label=name)
    if source in spin.sphere_power_db:  # what the 70 points estimate: the power through the whole measured sphere
        ax.plot(f, spin.sphere_power_db[source], color=COLORS["Sound Power"], lw=1.0, ls=":",
                label="Sound Power (whole sphere)")
    ax.set_ylim(top - DI_SPAN_DB, top)
    ax.set_ylabel(f"level ({spin.level_label})")
    _freq_axis(ax, (f[0], f[-1]))
    right = ax.twinx()
    for name in DI_CURVES:
        right.plot(f, curves[name], color=COLORS[name], lw=1.2, label=name)
        if predicted is not None:
            right.plot(predicted.bands_hz, predicted.curves[source][name], color=COLORS[name], lw=1.0, ls="--",
                       label=f"{name} (predicted)")
    right.set_ylim(-5.0, DI_SPAN_DB - 5.0)
    right.set_ylabel("directivity index (dB)")
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    if legend:
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=6, loc="lower left", ncol=2)


def fig_spinorama_inputs(report: UnitReport) -> Figure:
    """C, L and R as verified, with the predicted DIs and the DI table of C."""
    spin = report.spinorama
    if spin is None:
        raise ValueError(f"unit {report.serial}: no spinorama (its procedure did not measure the sphere)")
    short = {"Early Reflections DI": "ERDI", "Sound Power DI": "SPDI"}
    table = ";  ".join(f"{short[n]} predicted {p:+.2f} / verified {v:+.2f} dB" for n, p, v in di_band_table(report))
    fig, y = _page("Spinorama (CTA-2034-A) of the inputs", report, f"C, beam band mean: {table}")
    axes = _plots(_grid(fig, 3, 1, y, right_in=0.75))[:, 0]  # right: the DI axis
    for i, (ax, source, what) in enumerate(zip(axes, "CLR", ("beamformed centre", "CTC left", "CTC right"),
                                                strict=True)):
        title = f"{source}: {what} (verified; DIs predicted dashed)"
        _spin_axes(ax, spin["verified"], source, spin["predicted"], title, legend=i == 0)
    return fig


def fig_spinorama_drivers(report: UnitReport) -> Figure:
    """Each driver about its own axis, predicted from the characterize IRs."""
    if report.spinorama is None:
        raise ValueError(f"unit {report.serial}: no spinorama (its procedure did not measure the sphere)")
    spin = report.spinorama["predicted"]
    drivers = list(spin.sphere_db)
    fig, y = _page("Spinorama (CTA-2034-A) of the drivers", report,
                   "from the characterize IRs, each about its own axis")
    axes = _plots(_grid(fig, len(drivers), 1, y, right_in=0.75))[:, 0]  # right: the DI axis
    for i, (ax, name) in enumerate(zip(axes, drivers, strict=True)):
        az, el = spin.axes[name]
        _spin_axes(ax, spin, name, None, f"{name} (axis azimuth {az:g}°, elevation {el:g}°)", legend=i == 0)
    return fig


def spinorama_pages(report: UnitReport) -> list[Figure]:
    """Return the spinorama pages of ``report`` (none when its procedure did not measure the sphere)."""
    if not report.spinorama:
        return []
    return [fig_spinorama_inputs(report), fig_spinorama_drivers(report)]


def spinorama_page_count(report: UnitReport) -> int:
    """Pages :func:`spinorama_pages` makes (without drawing them)."""
    return 2 if report.spinorama else 0
