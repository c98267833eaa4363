"""Figures of the unit report, one A4 page each (matplotlib, object API, no pyplot).

Each ``fig_*`` function takes a :class:`~calib.stages.unit_report.UnitReport` and
returns a :class:`matplotlib.figure.Figure`; :mod:`calib.report.pdf` adds
them to the PDF in the order of :data:`FIGURE_PAGES`. The data shown are
derived here from the files' IRs and the metrics dictionaries (the keys of
:func:`calib.stages.product_metrics.product_metrics`), so nothing is recomputed that
the verdict depends on.

Spectra are power-smoothed over a fraction of an octave (``1/3`` here), the
usual presentation of loudspeaker responses
(:func:`calib.signals.smoothing.smooth_fractional_octave`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec, SubplotSpec
from matplotlib.projections.polar import PolarAxes
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter

from calib.export.levels import ir_unit, level_db, level_label
from calib.metrics.bands import Bands, band_power_average, power_db, third_octave_bands
from calib.metrics.beam import wrap_deg
from calib.metrics.effort import white_noise_gain_db
from calib.signals.convolve import next_pow2
from calib.signals.smoothing import smooth_fractional_octave
from calib.stages.product_metrics import horizontal_mic_index
from calib.stages.unit_report import UnitReport
from calib.store.measurement import Measurement

A4_PORTRAIT_IN = (8.27, 11.69)
PASS_COLOR = "#1a7f37"
FAIL_COLOR = "#cf222e"
POLAR_BANDS_HZ = (500.0, 1000.0, 2000.0, 4000.0)
MAP_FLOOR_DB = -30.0
# Colour pairs (dark = verified, light = predicted) of matplotlib's "tab20".
_PAIRED = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896")
VERIFIED_COLORS = ("#0072B2", "#E69F00")
"""Verified beam metrics (+ side, − side): Okabe-Ito blue and orange."""
PREDICTED_COLORS = ("0.1", "0.45")
"""Predicted beam metrics: black and grey, dashed."""
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
"""Drivers and positions: the Okabe-Ito palette, told apart with the common colour-vision deficiencies."""
LIMIT_STYLE: dict[str, Any] = {"color": "k", "ls": "-.", "lw": 1.2}
"""Limit lines: black dash-dot, a colour no data curve uses."""
RESPONSE_RANGE_DB = 80.0
"""Most a response plot spans below its peak (the data's own minimum in the sweep band if higher)."""
FOOTER_FRACTION = 0.025
"""Bottom strip of every page kept free for the PDF's footer line."""
TITLE_Y = 1.0
"""Plot titles sit on their plot's frame, placed rather than automatic: no cartesian plot has labels above its
frame, and the automatic placement measures every y tick label of the plot once more to find that out."""
_HZ_TICKS = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
_HZ_TICKS_FINE = tuple(m * 10**e for e in range(1, 5) for m in (1, 1.5, 2, 3, 4, 5, 7))


# ----------------------------------------------------------------- data


def nearest_azimuth(azimuth_deg: np.ndarray, target_deg: float = 0.0) -> int:
    """Index of the grid azimuth closest to ``target_deg`` (around the circle)."""
    return int(np.argmin(np.abs(wrap_deg(np.asarray(azimuth_deg, float) - target_deg))))


def spectrum(ir: np.ndarray, sample_rate: int, n_fft: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(freqs_hz [F], rfft(ir) [..., F])`` with ``n_fft`` (default: the IR length)."""
    n = int(n_fft or ir.shape[-1])
    return np.fft.rfftfreq(n, 1.0 / sample_rate), np.fft.rfft(np.nan_to_num(ir), n, axis=-1)


def driver_onaxis_db(report: UnitReport) -> tuple[np.ndarray, np.ndarray]:
    """On-axis (azimuth nearest 0, horizontal mic) 1/3-octave smoothed level of each driver.

    Returns ``(freqs_hz [F], level_db [S, F])`` in the level of
    :func:`calib.export.levels.level_label`: dB SPL at 0 dBFS where the station
    calibrates the microphones (IRs in Pa/FS), else dB re 1 FS/FS.
    """
    meas = report.characterize
    ir = meas.directivity_ir[nearest_azimuth(meas.azimuth_deg), horizontal_mic_index(report.procedure)]
    freqs, x = spectrum(ir, meas.sample_rate)
    return freqs, level_db(smooth_fractional_octave(freqs, np.abs(x) ** 2), ir_unit(meas))


def pattern_bands_db(spectra: np.ndarray, freqs_hz: np.ndarray, azimuth_deg: np.ndarray, bands: Bands) -> np.ndarray:
    """Band power of a horizontal pattern ``[A, F]`` in dB re the on-axis azimuth, ``[A, B]``."""
    power = band_power_average(freqs_hz, np.abs(spectra) ** 2, bands)
    return power_db(power, power[nearest_azimuth(azimuth_deg)])


def centre_patterns(report: UnitReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal pattern of input C, verified and predicted.

    Verified: the verification's directivity IR of source ``C``. Predicted:
    the characterize directivity IRs convolved with the centre row of the FIR
    matrix, ``B(θ, f) = Σ_s C_s(θ, f) H_{C,s}(f)``.

    Returns ``(freqs_hz [F], verified [A, F], predicted [A, F])`` on the
    verification's azimuth grid (a subset of the characterize grid: the
    azimuths the checks read, :func:`calib.procedure.layout.check_azimuths`).
    """
    mic = horizontal_mic_index(report.procedure)
    ver = report.verification
    fs = ver.sample_rate
    fir = report.calibration.fir[report.calibration.inputs.index("C")].astype(float)  # [S, T]
    on_grid = [nearest_azimuth(report.characterize.azimuth_deg, a) for a in ver.azimuth_deg]
    char_ir = np.asarray(report.characterize.directivity_ir[:, mic])[on_grid]  # [A, S, N]
    n_fft = next_pow2(max(ver.ir_length, char_ir.shape[-1] + fir.shape[-1]))
    freqs, verified = spectrum(ver.directivity_ir[:, mic, ver.sources.index("C")], fs, n_fft)
    _, plant = spectrum(char_ir, fs, n_fft)
    _, h = spectrum(fir, fs, n_fft)
    return freqs, verified, np.einsum("asf,sf->af", plant, h)


def map_bands(report: UnitReport) -> Bands:
    """Third-octave bands of the directivity maps: the sweep band."""
    lo, hi = report.procedure.sweep.band_hz
    return third_octave_bands(max(lo, 20.0), min(hi, 0.45 * report.characterize.sample_rate))


def closed_circle(azimuth_deg: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths sorted ascending in ``[-180, 180)`` with the first repeated 360° later (for lines and maps)."""
    az = (np.asarray(azimuth_deg, dtype=float) + 180.0) % 360.0 - 180.0
    order = np.argsort(az)
    az, vals = az[order], np.asarray(values)[order]
    return np.append(az, az[0] + 360.0), np.concatenate([vals, vals[:1]], axis=0)


# ----------------------------------------------------------------- pages


def _finite(values: np.ndarray, reduce, default: float) -> float:
    """``reduce`` over the finite values (axis limits must be finite), ``default`` if there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(reduce(v)) if v.size else default


def _page(title: str, report: UnitReport, subtitle: str = "") -> tuple[Figure, float]:
    """A4 page with its title (and subtitle); returns the figure and the figure height where the plots may start.

    No layout engine: each page places its grid with :func:`_grid` (margins in inches, fixed for the
    page's fonts), since constrained layout costs a whole extra draw of the page plus two passes of
    measuring every tick label, about 40 % of drawing the report.
    """
    fig = Figure(figsize=A4_PORTRAIT_IN)
    top = 0.99 - (0.045 + 0.012 * subtitle.count("\n") if subtitle else 0.025)
    fig.text(0.5, 0.99, f"{title} — {report.procedure.product.name}, unit {report.serial}", ha="center", va="top",
             fontsize=12, fontweight="bold")
    if subtitle:
        fig.text(0.5, 0.965, subtitle, ha="center", va="top", fontsize=8.5, color="0.25")
    return fig, top


TOP_IN, HGAP_IN, WGAP_IN = 0.3, 0.8, 0.95
"""Default room (inches) above a page's first row of plots, between its rows and between its columns (:func:`_grid`)."""


def _spacing(box_w_in: float, box_h_in: float, nrows: int, ncols: int, hgap_in: float,
             wgap_in: float) -> tuple[float, float]:
    """``hspace`` and ``wspace`` of a grid in a box: the gaps as fractions of the mean cell height and width."""
    cell_h = (box_h_in - (nrows - 1) * hgap_in) / nrows
    cell_w = (box_w_in - (ncols - 1) * wgap_in) / ncols
    return hgap_in / cell_h, wgap_in / cell_w


def _grid(fig: Figure, nrows: int, ncols: int, top: float, *, left_in: float = 0.85, right_in: float = 0.25,
          bottom_in: float = 0.55, top_in: float = TOP_IN, hgap_in: float = HGAP_IN, wgap_in: float = WGAP_IN,
          **kwargs: Any) -> GridSpec:
    """Make a grid of ``nrows`` x ``ncols`` plots below figure height ``top``, with margins and gaps in inches.

    Parameters
    ----------
    fig, nrows, ncols
        The page and its grid.
    top
        Figure height (fraction) where the page's title block ends (:func:`_page`).
    left_in, right_in, bottom_in, top_in
        Room outside the plots: y labels and tick labels (left), x tick labels and label (bottom, above
        the footer strip), the first row's titles (top).
    hgap_in, wgap_in
        Room between rows (x tick labels, x label and the next row's title) and between columns
        (the next column's y label and tick labels).
    **kwargs
        Passed to :meth:`~matplotlib.figure.Figure.add_gridspec` (e.g. ``height_ratios``).

    Returns
    -------
    GridSpec
        Margins as figure fractions; ``hspace`` and ``wspace`` are fractions of the mean cell size, so
        they are computed from the gaps and the room left for the cells.
    """
    width_in, height_in = fig.get_size_inches()
    left, right = left_in / width_in, 1.0 - right_in / width_in
    bottom, top = FOOTER_FRACTION + bottom_in / height_in, top - top_in / height_in
    hspace, wspace = _spacing((right - left) * width_in, (top - bottom) * height_in, nrows, ncols, hgap_in, wgap_in)
    return fig.add_gridspec(nrows, ncols, left=left, right=right, bottom=bottom, top=top,
                            hspace=hspace, wspace=wspace, **kwargs)


def _plots(grid: GridSpec, **kwargs: Any) -> np.ndarray:
    """All plots of ``grid``, a 2-D array (:meth:`~matplotlib.gridspec.GridSpec.subplots`, never squeezed)."""
    kwargs["squeeze"] = False
    return np.asarray(grid.subplots(**kwargs))


def _subgrid(fig: Figure, spec: SubplotSpec, nrows: int, ncols: int, hgap_in: float = HGAP_IN,
             wgap_in: float = WGAP_IN) -> GridSpecFromSubplotSpec:
    """Make a grid of ``nrows`` x ``ncols`` plots inside the cell ``spec``, gaps in inches as in :func:`_grid`."""
    box = spec.get_position(fig)
    width_in, height_in = fig.get_size_inches()
    hspace, wspace = _spacing(box.width * width_in, box.height * height_in, nrows, ncols, hgap_in, wgap_in)
    return spec.subgridspec(nrows, ncols, hspace=hspace, wspace=wspace)


def _legend_in(entries: int, ncol: int, fontsize: float) -> float:
    """Height (inches) of a legend of ``entries`` in ``ncol`` columns: rows of 1.7 font sizes, plus its frame."""
    rows = -(-entries // ncol)
    return (rows * 1.7 + 1.2) * fontsize / 72.0


def _hz_ticks(ax, lo: float, hi: float, ticks=None) -> None:
    """Log frequency axis labelled 20, 50, 100, ..., 1k, 2k, ... Hz (or at ``ticks``, e.g. band centres)."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    if ticks is None:
        fine = np.log10(hi / lo) < 1.5  # less than a decade and a half: label more ticks
        ticks = _HZ_TICKS_FINE if fine else _HZ_TICKS
    ticks = [float(t) for t in ticks if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{t / 1000:g}k" if t >= 1000 else f"{t:g}" for t in ticks],
                       fontsize=7 if len(ticks) > 8 else None)


def _freq_axis(ax, band_hz: tuple[float, float], label: bool = True, ticks=None) -> None:
    _hz_ticks(ax, *band_hz, ticks=ticks)
    if label:
        ax.set_xlabel("frequency (Hz)")
    ax.grid(True, which="both", alpha=0.3)


def fig_driver_responses(report: UnitReport) -> Figure:
    """On-axis response of every driver and THD per driver on axis."""
    fig, y = _page("Drivers", report)
    top, bottom = _plots(_grid(fig, 2, 1, y, height_ratios=[3, 2]))[:, 0]
    freqs, level = driver_onaxis_db(report)
    drivers = report.characterize.sources
    for s, name in enumerate(drivers):
        top.plot(freqs[1:], level[s, 1:], label=name, lw=1.2, color=OKABE_ITO[s % len(OKABE_ITO)])
    band = report.procedure.sweep.band_hz
    _freq_axis(top, band)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    top.set_ylim(*response_ylim(level[:, inside]))
    top.set_ylabel(level_label(ir_unit(report.characterize)))
    top.set_title("On-axis response (azimuth 0°, horizontal mic, 1/3-octave smoothed)", fontsize=10, y=TITLE_Y)
    top.legend(fontsize=8, ncol=min(len(drivers), 3))

    meas = report.characterize
    on_axis = nearest_azimuth(meas.azimuth_deg)
    thd = meas.quality["directivity"]["thd_percent"][on_axis, horizontal_mic_index(report.procedure)]  # [S]
    x = np.arange(len(drivers))
    bars = bottom.bar(x, np.nan_to_num(thd), width=0.5, color="tab:blue")
    bottom.bar_label(bars, labels=[f"{v:.2f} %" for v in thd], fontsize=8)
    bottom.set_xticks(x, drivers)
    bottom.set_xlabel("driver")
    bottom.set_ylabel("THD (%)")
    bottom.set_ylim(0, max(1e-3, _finite(thd, np.max, 0.0)) * 1.3)
    bottom.set_title(f"Total harmonic distortion on axis (sweep at {report.procedure.sweep.level_dbfs:g} dBFS, "
                     "harmonics separated from the sweep IR)", fontsize=10, y=TITLE_Y)
    return fig


NO_SPECTRA_TEXT = "no THD or noise per band in this measurement (written before calib stored them)"
NOISE_LABELS = {
    "dBFS": "noise per 1/3-octave band (dBFS, re a full-scale sine)",
    "dB SPL": "noise per 1/3-octave band (dB SPL, re 20 µPa)",
}
"""Noise axis label per ``noise_unit`` of the measurement file."""


def spectra_step(meas: Measurement, mic: int) -> int | None:
    """Directivity step whose per-band THD is shown: the azimuth nearest the front with any finite THD.

    In MESM "linear" mode only the dedicated THD step (the azimuth nearest the front) has it; elsewhere every
    step does and this is the front one. None: the file has no per-band THD (an older file) or none is finite.
    """
    if meas.band_centre_hz is None:
        return None
    thd = meas.quality["directivity"]["thd_band_percent"][:, mic]  # [A, S, B]
    order = np.argsort(np.abs(wrap_deg(np.asarray(meas.azimuth_deg, float))), kind="stable")
    return next((int(a) for a in order if np.isfinite(thd[a]).any()), None)


def fig_distortion_noise(report: UnitReport) -> Figure:
    """THD against the excitation frequency and the background noise per band, per driver, on axis.

    From the characterize measurement: per 1/3-octave band, ``THD(f) = sqrt(sum_n |H_n(n f)|^2) / |H_1(f)|``
    from the sweep's separated harmonic IRs (:func:`calib.signals.harmonics.thd_bands_percent`), and the
    background noise the same capture recorded, from the IR's noise window
    (:func:`calib.signals.quality.noise_band_power`), in dB SPL when the station calibrates the microphones.
    """
    meas = report.characterize
    mic = horizontal_mic_index(report.procedure)
    sweep = report.procedure.sweep
    step = spectra_step(meas, mic)
    subtitle = (f"characterize measurement, horizontal mic {meas.receivers[mic]}, sweep at {sweep.level_dbfs:g} dBFS"
                + (f", azimuth {meas.azimuth_deg[step]:g}°" if step is not None else ""))
    fig, y = _page("Distortion and noise floor", report, subtitle)
    top, bottom = _plots(_grid(fig, 2, 1, y, hgap_in=0.5), sharex=True)[:, 0]
    band = sweep.band_hz
    for ax in (top, bottom):
        _freq_axis(ax, band, label=ax is bottom)
    top.set_ylabel("THD (%)")
    unit = meas.noise_unit.get("directivity", "dBFS")
    bottom.set_ylabel(NOISE_LABELS.get(unit, NOISE_LABELS["dBFS"]))
    if step is None or meas.band_centre_hz is None:
        for ax in (top, bottom):
            ax.text(0.5, 0.5, NO_SPECTRA_TEXT, transform=ax.transAxes, ha="center", va="center", fontsize=9,
                    color="0.3")
        return fig
    fc = meas.band_centre_hz
    thd = meas.quality["directivity"]["thd_band_percent"][step, mic]  # [S, B]
    noise = meas.quality["directivity"]["noise_band_db"]  # [A, Rm, S, B]
    done = np.asarray(meas.directivity_done, bool)
    # noise: power mean over the measured azimuths (one background, many captures: less scatter)
    with np.errstate(divide="ignore"):
        noise_db = 10 * np.log10(np.nanmean(10 ** (noise[done, mic] / 10), axis=0))  # [S, B]
    for s, name in enumerate(meas.sources):
        style = {"color": OKABE_ITO[s % len(OKABE_ITO)], "marker": "o", "ms": 3, "lw": 1.2, "label": name}
        top.plot(fc, thd[s], **style)
        bottom.plot(fc, noise_db[s], **style)
    top.set_yscale("log")
    top.set_ylim(max(1e-3, _finite(thd, np.min, 0.01) / 2), max(1.0, _finite(thd, np.max, 1.0) * 2))
    top.set_title(f"THD against excitation frequency f, 1/3-octave bands (harmonics 2..{sweep.n_harmonics} "
                  "up to the sweep's top)", fontsize=9, y=TITLE_Y)
    same = "; MESM: one capture for all drivers" if report.procedure.sweep.schedule == "mesm" else ""
    bottom.set_title(f"Background noise in the captures (IR noise window, mean over the azimuths{same})",
                     fontsize=9, y=TITLE_Y)
    top.legend(fontsize=8, ncol=min(len(meas.sources), 3))
    return fig


def response_ylim(level_db: np.ndarray) -> tuple[float, float]:
    """Y range of a response plot: the finite data of the shown band, at most :data:`RESPONSE_RANGE_DB` deep."""
    peak = _finite(level_db, np.max, 0.0)
    low = max(_finite(level_db, np.min, peak - RESPONSE_RANGE_DB), peak - RESPONSE_RANGE_DB)
    return 5.0 * np.floor(low / 5.0) - 5.0, peak + 5.0


def map_top_db(*maps_db: np.ndarray) -> float:
    """Top of the maps' colour scale: the loudest finite value, rounded up to 3 dB, at least +6 dB.

    A driver aimed off the front is louder off axis than on axis at high
    frequencies; a fixed top would paint that as one saturated colour.
    """
    loudest = max(_finite(m, np.max, 0.0) for m in maps_db)
    return float(max(6.0, 3.0 * np.ceil(loudest / 3.0)))


def _map(ax, azimuth_deg: np.ndarray, bands: Bands, db: np.ndarray, title: str, top_db: float):
    az, vals = closed_circle(azimuth_deg, db)
    az_edges = np.concatenate([[az[0] - (az[1] - az[0]) / 2], (az[1:] + az[:-1]) / 2, [az[-1] + (az[-1] - az[-2]) / 2]])
    f_edges = np.append(bands.lower_hz, bands.upper_hz[-1])
    # Rasterized without edges: vector cells leave hairline gaps that viewers draw as white grid lines.
    mesh = ax.pcolormesh(f_edges, az_edges, np.clip(vals, MAP_FLOOR_DB, top_db), cmap="viridis",
                         vmin=MAP_FLOOR_DB, vmax=top_db, shading="flat", edgecolors="none", antialiased=False,
                         rasterized=True)
    ax.grid(False)
    _hz_ticks(ax, f_edges[0], f_edges[-1])
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("azimuth (deg, ccw from front)")
    ax.set_yticks(np.arange(-180, 181, 45))
    ax.set_ylim(az_edges[0], az_edges[-1])
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    return mesh


def fig_directivity_maps(report: UnitReport) -> Figure:
    """Frequency x azimuth maps (dB re on axis) of the first driver and of input C."""
    fig, y = _page("Directivity", report)
    # right: the colorbar (taken from the plots' width by fig.colorbar), its ticks and label
    top, bottom = _plots(_grid(fig, 2, 1, y, right_in=0.75))[:, 0]
    bands = map_bands(report)
    meas = report.characterize
    mic = horizontal_mic_index(report.procedure)
    freqs, x = spectrum(meas.directivity_ir[:, mic, 0], meas.sample_rate)
    driver_db = pattern_bands_db(x, freqs, meas.azimuth_deg, bands)
    freqs_c, verified, _ = centre_patterns(report)
    centre_db = pattern_bands_db(verified, freqs_c, report.verification.azimuth_deg, bands)
    top_db = map_top_db(driver_db, centre_db)
    _map(top, meas.azimuth_deg, bands, driver_db, f"Driver {meas.sources[0]!r} (characterize, horizontal mic)", top_db)
    kind = "beamformed centre" if report.procedure.targets.beam is not None else "centre input (no beam target)"
    mesh = _map(bottom, report.verification.azimuth_deg, bands, centre_db, f"Input C, {kind} (verification)", top_db)
    if report.procedure.targets.beam is not None and report.procedure.targets.beam.null_sector_deg is not None:
        _shade_sector(bottom, report.procedure.targets.beam.null_sector_deg, polar=False)
        bottom.legend(fontsize=7, loc="upper right")
    fig.colorbar(mesh, ax=[top, bottom], label="dB re on axis", shrink=0.6)
    return fig


def centre_wng_db(report: UnitReport) -> tuple[np.ndarray, np.ndarray]:
    """White-noise gain of input C per bin: ``(freqs_hz, dB)`` from the characterize on-axis IRs and the FIRs.

    ``|sum_s c_0s h_s|^2 / (sum_s |h_s|^2 mean_s |c_0s|^2)``
    (:func:`calib.metrics.effort.white_noise_gain_db`), 0 dB = one driver.
    """
    meas = report.characterize
    mic = horizontal_mic_index(report.procedure)
    fir = report.calibration.fir[report.calibration.inputs.index("C")].astype(float)  # [S, T]
    on_axis = meas.directivity_ir[nearest_azimuth(meas.azimuth_deg), mic]  # [S, N]
    n_fft = next_pow2(on_axis.shape[-1] + fir.shape[-1])
    freqs, c0 = spectrum(on_axis, meas.sample_rate, n_fft)
    _, h = spectrum(fir, meas.sample_rate, n_fft)
    return freqs, white_noise_gain_db(c0.T, h.T)


def _shade_sector(ax, sector_deg: tuple[float, float] | None, polar: bool) -> None:
    """Shade the null sector on both sides: grey on a polar plot (azimuth), hatched on a map (y axis)."""
    if sector_deg is None:
        return
    lo, hi = sector_deg
    for k, side in enumerate((1.0, -1.0)):
        label = f"null sector {lo:g}-{hi:g}°" if k == 0 else None
        if polar:
            theta = np.deg2rad(side * np.linspace(lo, hi, 31))
            ax.fill_between(theta, -40.0, 6.0, color="0.5", alpha=0.25, lw=0, label=label)
        else:
            # hatched, not filled: the map's colours inside the sector stay readable
            ax.axhspan(side * lo, side * hi, facecolor="none", edgecolor="white", hatch="///", ls="--", lw=0.8,
                       label=label)


def fig_beam(report: UnitReport) -> Figure:
    """Polar plots of input C at a few bands with the null sector shaded; sector, nulls, main lobe and WNG.

    Verified: solid lines, saturated colours. Predicted: dashed, light
    colours (polar) or greys (metrics): the two stay apart in print and in
    grey scale.
    """
    fig, y = _page("Centre beam", report)
    freqs, verified, predicted = centre_patterns(report)
    az = report.verification.azimuth_deg
    beam = report.procedure.targets.beam
    wanted = [f for f in POLAR_BANDS_HZ if f < 0.45 * report.verification.sample_rate]
    bands = third_octave_bands(min(wanted), max(wanted))
    keep = np.isin(bands.nominal_hz, wanted)
    # below the polar plot: its 180° label, its legend (one entry per band and kind, and the sector)
    # and the panels' titles; above it: its 0° label and its title
    entries = 2 * int(np.sum(keep)) + (beam is not None and beam.null_sector_deg is not None)
    outer = _grid(fig, 2, 1, y, top_in=0.55, hgap_in=0.75 + _legend_in(entries, 4, 7), height_ratios=[3, 3.2])
    polar = fig.add_subplot(outer[0], projection="polar")
    assert isinstance(polar, PolarAxes)  # projection="polar" makes one
    ver_db = pattern_bands_db(verified, freqs, az, bands)[:, keep]
    pre_db = pattern_bands_db(predicted, freqs, az, bands)[:, keep]
    _shade_sector(polar, beam.null_sector_deg if beam is not None else None, polar=True)
    for b, f_hz in enumerate(bands.nominal_hz[keep]):
        dark, light = _PAIRED[2 * (b % 4)], _PAIRED[2 * (b % 4) + 1]
        for vals, style, color, what in ((ver_db, "-", dark, "verified"), (pre_db, "--", light, "predicted")):
            a, v = closed_circle(az, vals[:, b])
            polar.plot(np.deg2rad(a), np.clip(v, -40, 6), style, color=color, lw=1.4, label=f"{f_hz:g} Hz {what}")
    polar.set_theta_zero_location("N")  # device front up, azimuth counter-clockwise (AES69)
    polar.set_rlim(-40, 6)
    polar.set_rticks([-30, -20, -10, 0], ["−30 dB", "−20", "−10", "0 dB"])
    polar.set_rlabel_position(95.0)  # inside the shaded null sector, where the curves are at their lowest
    for label in polar.get_yticklabels():  # readable over the rings and curves
        label.set_bbox({"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    grid_deg = np.arange(0, 360, 45)
    labels = [f"{(g + 180) % 360 - 180:+d}°" if g % 180 else ("0° front" if g == 0 else "180°") for g in grid_deg]
    polar.set_thetagrids(grid_deg, labels)
    polar.tick_params(labelsize=7)
    polar.set_title("Input C, horizontal pattern, 1/3-octave bands (dB re on axis; device front up, "
                    "its left = +90°)", fontsize=10)
    polar.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=4)

    grid = _subgrid(fig, outer[1], 2, 2)
    panels = [fig.add_subplot(grid[r, c]) for r in (0, 1) for c in (0, 1)]
    if beam is None or report.verified.beam is None:
        for ax in panels:
            ax.set_axis_off()
        fig.text(0.5, 0.25, "No beam target for this product: input C is the phantom centre of the CTC pair.",
                 fontsize=10, ha="center")
        return fig
    sector_ax, null_ax, lobe_ax, wng_ax = panels
    # verified: solid, thick, colour, markers; predicted: dashed, thin, black/grey, drawn on top so that
    # where the two agree the verified colour shows between the dashes (print, grey scale, colour-blind)
    styles = (
        (report.verified.beam, {"ls": "-", "marker": "o", "lw": 2.2, "zorder": 2}, VERIFIED_COLORS, "verified"),
        (report.predicted.beam, {"ls": "--", "marker": None, "lw": 1.1, "zorder": 3}, PREDICTED_COLORS, "predicted"),
    )
    for metrics, line_style, colors, what in styles:
        if metrics is None:
            continue
        bb = metrics.bands_hz
        if metrics.sector_rejection_db is not None:
            for i, side in enumerate("+-"):
                sector_ax.plot(bb, metrics.sector_rejection_db[i], color=colors[i], ms=3,
                               label=f"{side} side {what}", **line_style)
        for i, side in enumerate("+-"):
            null_ax.plot(bb, metrics.null_depth_db[i], color=colors[i], ms=3,
                         label=f"{side}{beam.null_deg:g}° {what}", **line_style)
        lobe_ax.plot(bb, metrics.main_lobe_db, color=colors[0], ms=3, label=what, **line_style)
    f_wng, wng = centre_wng_db(report)
    inside = (f_wng >= beam.band_hz[0] / 1.2) & (f_wng <= beam.band_hz[1] * 1.2)
    wng_ax.plot(f_wng[inside], wng[inside], "-", color="tab:purple", lw=1.2, label="per bin (design)")
    predicted_beam = report.predicted.beam
    if predicted_beam is not None and predicted_beam.wng_db is not None:
        wng_ax.plot(predicted_beam.bands_hz, predicted_beam.wng_db, "s", color="0.15", ms=3,
                    label="1/3-octave bands")
    tol = f" (target − {beam.tolerance_db:g} dB)" if beam.tolerance_db else ""
    if beam.null_sector_deg is not None:
        sector_ax.axhline(beam.sector_rejection_min_db - beam.tolerance_db, label=f"limit{tol}", **LIMIT_STYLE)
        sector_ax.set_title(f"Sector {beam.null_sector_deg[0]:g}-{beam.null_sector_deg[1]:g}°: worst azimuth "
                            "(dB below on axis)", fontsize=9, y=TITLE_Y)
    else:
        sector_ax.set_axis_off()
    null_ax.axhline(beam.null_depth_min_db - beam.tolerance_db, label=f"limit{tol}", **LIMIT_STYLE)
    lobe_ax.axhline(beam.main_lobe_min_db - beam.tolerance_db, label=f"limit{tol}", **LIMIT_STYLE)
    if beam.wng_min_db is not None:
        wng_ax.axhline(beam.wng_min_db, label="limit", **LIMIT_STYLE)
    null_ax.set_title(f"Point nulls at ±{beam.null_deg:g}° (dB below on axis)", fontsize=9, y=TITLE_Y)
    lobe_ax.set_title(f"Main lobe: worst within ±{beam.main_lobe_deg:g}° (dB)", fontsize=9, y=TITLE_Y)
    wng_ax.set_title("White-noise gain (dB re one driver)", fontsize=9, y=TITLE_Y)
    band_ticks = report.verified.beam.bands_hz  # every judged band labelled (800 Hz included)
    for ax, unit in zip(panels, ("dB", "dB", "dB re on axis", "dB re one driver"), strict=True):
        if ax.axison:
            _freq_axis(ax, (beam.band_hz[0] / 1.2, beam.band_hz[1] * 1.2), ticks=band_ticks)
            ax.set_ylabel(unit)
            ax.legend(fontsize=6.5)
    return fig


def fig_cancellation(report: UnitReport) -> Figure:
    """Plot cancellation gain per position and input, predicted (dashed) and verified (solid), against the limits.

    Design positions (judged band by band against the target less its
    tolerance, the shaded region below it) and holdout positions (judged on
    their median over the bands, outside the design zone: no band limit, so
    no shading) are drawn in separate panels, so a passing holdout is never
    drawn inside a failure region. The target is drawn over its whole range;
    the checked bands are the 1/3-octave bands whose centre lies in it.
    """
    target = report.procedure.targets.cancellation
    lo, hi = target.band_hz()
    bands = report.verified.ctc.bands_hz
    fig, y = _page("Crosstalk cancellation", report, "solid: verified, dashed: predicted. Design positions: every "
                f"1/3-octave band centred in the target's {lo:g}-{hi:g} Hz\n({bands[0]:g} Hz to {bands[-1]:g} Hz) "
                "against the limit; holdout positions: their median over the bands")
    design = {p.name for p in report.procedure.design_positions()}
    ver_pos = list(report.verified.ctc.positions)
    pre_pos = list(report.predicted.ctc.positions)
    names = list(dict.fromkeys(ver_pos + [p for p in pre_pos if p in ver_pos]))
    groups = {"design": [n for n in names if n in design], "holdout": [n for n in names if n not in design]}
    kinds = [k for k in ("design", "holdout") if groups[k]]
    # bottom: x tick labels and label, then the legends, 0.16 of a plot's height below it (solved for)
    entries = max(len(groups[k]) + (3 if k == "design" else target.holdout_median_min_db is not None) + 1
                  for k in kinds)
    free_in = (y - FOOTER_FRACTION) * A4_PORTRAIT_IN[1] - TOP_IN - HGAP_IN  # less the top room and the gap
    bottom_in = (0.08 * free_in + _legend_in(entries, 2, 6.5) + 0.1) / 1.08
    axes = _plots(_grid(fig, 2, len(kinds), y, bottom_in=bottom_in), sharex=True, sharey="row")
    f_curve = np.geomspace(lo, hi, 200)
    curve = target.min_db(f_curve)
    x_range = (min(lo, bands[0]) / 1.15, max(hi, bands[-1]) * 1.15)
    for k, inp in enumerate(("L", "R")):
        cg = report.verified.ctc.cancellation_db[k]
        for j, kind in enumerate(kinds):
            ax = axes[k, j]
            if kind == "design":
                ax.fill_between(f_curve, curve - target.tolerance_db, -100, color=FAIL_COLOR, alpha=0.08, lw=0,
                                label="below the limit")
                ax.plot(f_curve, curve, color="k", lw=1.5, label="target")
                ax.plot(f_curve, curve - target.tolerance_db, label=f"limit (target − {target.tolerance_db:g} dB)",
                        **LIMIT_STYLE)
            elif target.holdout_median_min_db is not None:
                ax.axhline(target.holdout_median_min_db, label="median limit", **LIMIT_STYLE)
            for i, name in enumerate(groups[kind]):
                color = OKABE_ITO[i % len(OKABE_ITO)]
                verified = cg[ver_pos.index(name)]
                ax.plot(bands, verified, ls="-", marker="o", ms=3, lw=1.8, color=color, label=name, zorder=2)
                if kind == "holdout":  # what is judged: the median, as a short mark at the right
                    ax.plot([bands[-1] * 1.04], [np.nanmedian(verified)], marker="<", ms=6, color=color, zorder=3)
                if name in pre_pos:
                    ax.plot(report.predicted.ctc.bands_hz, report.predicted.ctc.cancellation_db[k, pre_pos.index(name)],
                            ls="--", lw=1.0, color="k", alpha=0.7, zorder=3,
                            label="predicted" if i == 0 else None)
            ax.set_ylim(min(-5.0, _finite(cg, np.min, 0.0) - 2), max(30.0, _finite(cg, np.max, 0.0) + 3))
            _freq_axis(
                ax,
                x_range,
                label=k == 1,
                ticks=(500, 700, 1000, 1500, 2000, 3000, 4000, 6000, 8000) if hi / lo < 20 else None,
            )
            ax.set_ylabel("cancellation gain (dB, ipsi − contra)")
            what = "design positions" if kind == "design" else "holdout positions (◂ median)"
            ax.set_title(f"Input {inp}: {what}", fontsize=9.5, y=TITLE_Y)
            if k == 1:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=6.5)
    return fig


def energy_span_s(fir: np.ndarray, sample_rate: float, fraction: float = 0.99) -> float:
    """Time by which every filter of ``fir [..., T]`` has delivered ``fraction`` of its energy (seconds)."""
    e = np.cumsum(np.asarray(fir, float).reshape(-1, fir.shape[-1]) ** 2, axis=-1)
    total = e[:, -1:]
    reached = np.where(total > 0, e >= fraction * total, True)
    return float(np.max(np.argmax(reached, axis=-1)) + 1) / sample_rate


def fig_filters(report: UnitReport) -> Figure:
    """FIR impulse responses and magnitude responses per input, with the filter effort.

    The impulse responses are shown up to where 99 % of every filter's
    energy has arrived (plus 20 %); magnitudes are the filters' gain in dB re
    unity (0 dB passes a driver feed unchanged), down to their lowest value
    in the sweep band.
    """
    cal = report.calibration
    limit = report.procedure.targets.effort.max_db if report.procedure.targets.effort is not None else None
    effort = report.verified.effort.max_db
    shown = f"{effort:.1f} dB" + (f" (limit {limit:g} dB)" if limit is not None else "")
    fig, y = _page("Filters", report, f"{cal.taps} taps at {cal.sample_rate} Hz, modeling delay "
                f"{cal.modeling_delay_s * 1e3:g} ms; filter effort (max |H| in the sweep band) {shown}")
    axes = _plots(_grid(fig, len(cal.inputs), 2, y))
    fir = cal.fir.astype(float)
    t_ms = np.arange(cal.taps) / cal.sample_rate * 1e3
    span_ms = min(t_ms[-1], 1.2 * energy_span_s(fir, cal.sample_rate) * 1e3)
    freqs, h = spectrum(fir, cal.sample_rate, max(4096, 2 * cal.taps))
    mag = power_db(np.abs(h[..., 1:]) ** 2)
    band = report.procedure.sweep.band_hz
    in_band = (freqs[1:] >= band[0]) & (freqs[1:] <= band[1])
    bottom = max(-80.0, 10.0 * np.floor(_finite(mag[..., in_band], np.min, -40.0) / 10.0))
    for k, inp in enumerate(cal.inputs):
        ir_ax, mag_ax = axes[k]
        for s, name in enumerate(cal.drivers):
            color = OKABE_ITO[s % len(OKABE_ITO)]
            ir_ax.plot(t_ms, fir[k, s], lw=0.8, label=name, color=color)
            mag_ax.plot(freqs[1:], mag[k, s], lw=1.0, label=name, color=color)
        ir_ax.set_title(f"Input {inp}: impulse responses", fontsize=9, y=TITLE_Y)
        ir_ax.set_xlabel("time (ms)")
        ir_ax.set_ylabel("amplitude (FS out per FS in)")
        ir_ax.set_xlim(0, span_ms)
        ir_ax.grid(True, alpha=0.3)
        mag_ax.set_title(f"Input {inp}: magnitude", fontsize=9, y=TITLE_Y)
        if limit is not None:
            mag_ax.axhline(limit, label="effort limit", **LIMIT_STYLE)
        _freq_axis(mag_ax, (20.0, cal.sample_rate / 2))
        mag_ax.set_ylim(bottom, max(20.0, (limit or 0.0) + 5))
        mag_ax.set_ylabel("gain (dB re unity)")
    # one legend, in the panel that draws every line it names (drivers and the effort limit)
    axes[0, 1].legend(loc="lower right", fontsize=7, ncol=2)
    return fig


def _steps(meas: Measurement, group: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Step order for plotting (azimuth ascending; positions as listed), x values and labels."""
    if group == "directivity":
        az = (np.asarray(meas.azimuth_deg, float) + 180.0) % 360.0 - 180.0
        order = np.argsort(az)
        return order, az[order], [f"{a:g}" for a in az[order]]
    names = [p.name for p in meas.positions]
    return np.arange(len(names)), np.arange(len(names), dtype=float), names


def step_snr_db(snr_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step ``[steps, receivers, S]``: the capture criterion and the worst value.

    The criterion is the one the measurement engine enforces: every receiver
    must hear at least one source, ``min_r max_s SNR``; the worst value
    ``min_{r,s} SNR`` shows sources that are quiet at a receiver by design
    (a beam null, a rear azimuth).
    """
    snr = np.where(np.isnan(snr_db), -np.inf, snr_db)
    criterion = np.min(np.max(snr, axis=-1), axis=-1)
    worst = np.min(np.where(np.isnan(snr_db), np.inf, snr_db), axis=(-2, -1))
    return np.where(np.isfinite(criterion), criterion, np.nan), np.where(np.isfinite(worst), worst, np.nan)


def fig_quality(report: UnitReport) -> Figure:
    """SNR, latency and retries per step of both measurements."""
    fig, y = _page("Measurement quality", report, "SNR: solid = capture criterion (every mic hears its best source), "
                "dotted = worst mic and source; latency as measured on the loopback")
    # x tick labels on the bottom row only (shared x); the binaural position names are turned 30°
    longest = max((len(p.name) for m in (report.characterize, report.verification) for p in m.positions), default=0)
    axes = _plots(_grid(fig, 3, 2, y, left_in=0.8, right_in=0.15, hgap_in=0.35, wgap_in=0.8,
                        bottom_in=0.45 + 0.5 * 0.06 * longest), sharex="col")
    min_snr = report.procedure.sweep.min_snr_db
    counts = []
    for meas, color, marker, label in ((report.characterize, "tab:blue", "o", "characterize"),
                                       (report.verification, "tab:orange", "x", "verification")):
        retries = clipped = 0
        for g, group in enumerate(("directivity", "binaural")):
            q = meas.quality[group]
            order, x, names = _steps(meas, group)
            retries += int(np.sum(q["retries"]))
            clipped += int(np.sum(q["clipped"]))
            if x.size == 0:
                continue
            criterion, worst = step_snr_db(q["snr_db"][order])
            lat = q["latency_samples"][order].reshape(x.size, -1).astype(float)
            lat = np.where(lat < 0, np.nan, lat)
            axes[0, g].plot(x, criterion, "-", marker=marker, color=color, ms=4, lw=1.2, label=label)
            axes[0, g].plot(x, worst, ":", color=color, lw=1.0)
            worst_lat = np.max(np.nan_to_num(lat, nan=-1.0), axis=-1)
            axes[1, g].plot(x, np.where(worst_lat < 0, np.nan, worst_lat), marker, color=color, ms=5, label=label)
            width = 0.35 * (np.min(np.diff(x)) if x.size > 1 else 1.0)
            shift = -width / 2 if label == "characterize" else width / 2
            axes[2, g].bar(x + shift, q["retries"][order], width=width, color=color, label=label)
            if group == "binaural":
                axes[2, g].set_xticks(x, names, rotation=30, ha="right", fontsize=7)
        counts.append(f"{label}: {retries} retries, {clipped} steps clipped (level backed off)")
    for g, what in enumerate(("directivity steps (azimuth, deg)", "binaural steps (head position)")):
        axes[0, g].axhline(min_snr, color=FAIL_COLOR, lw=1, label=f"min SNR {min_snr:g} dB")
        axes[0, g].set_ylabel("SNR (dB)")
        axes[1, g].set_ylabel("latency (samples, max of sources)")
        axes[2, g].set_ylabel("retries (count)")
        axes[2, g].set_xlabel(what)
        axes[2, g].set_ylim(0, max(2.0, axes[2, g].get_ylim()[1]))
        axes[2, g].yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: whole numbers only
        axes[1, g].yaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, g].set_title(what.split(" (")[0].capitalize(), fontsize=10, y=TITLE_Y)
        for ax in axes[:, g]:
            ax.grid(True, alpha=0.3)
    axes[2, 0].text(0.02, 0.95, "\n".join(counts), transform=axes[2, 0].transAxes, va="top", fontsize=8)
    for g, group in enumerate(("directivity", "binaural")):
        if not any(np.sum(m.quality[group]["retries"]) for m in (report.characterize, report.verification)):
            axes[2, g].text(0.5, 0.5, "no step needed a retry", transform=axes[2, g].transAxes, ha="center",
                            va="center", fontsize=9, color="0.3")
    axes[0, 0].legend(fontsize=7)
    return fig


FIGURE_PAGES: tuple[Callable[[UnitReport], Figure], ...] = (
    fig_driver_responses,
    fig_distortion_noise,
    fig_directivity_maps,
    fig_beam,
    fig_cancellation,
    fig_filters,
    fig_quality,
)
"""Pages after the summary, in order."""
