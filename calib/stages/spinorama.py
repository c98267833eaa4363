"""CTA-2034-A spinoramas of a unit: per driver, and for the inputs L, R, C through its filters.

A procedure measures the sphere when its arc microphones span the
elevations -90 .. +90 deg and its turntable the azimuths at 10 deg steps
(``procedures/aurora5_sphere.toml``): every direction of the horizontal and
the vertical orbit is then a grid point (:func:`calib.metrics.spinorama.orbits_from_sphere`).

- Predicted: the characterize IRs (gated like the fit's) of every driver,
  and their sums through the calibration's FIRs for L, R and C.
- Verified: the verify measurement; with the ``filters`` method its sources
  are L, R and C themselves, with ``drivers`` (rooms) the drivers, filtered
  in software exactly as predicted.

A driver's spinorama is taken about its own axis (``[[drivers]] axis_deg``)
when that axis lies on the grid, else about the device front; L, R and C
about the device front. Levels are band powers on 1/12-octave bands
(power averaging, then the standard's spatial rms averages), in dB re
20 uPa when the IRs are in pascals per full scale (a calibrated or simulated
station: the file's ``ir_unit`` is ``Pa/FS``), else in dB re 1 (full scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calib.capture.absolute import IR_UNIT_PASCAL
from calib.metrics.bands import Bands, power_db
from calib.metrics.spinorama import orbits_from_sphere, sphere_mean_power, spinorama
from calib.procedure.layout import sphere_problem
from calib.procedure.spec import Procedure
from calib.signals.convolve import next_pow2
from calib.stages.gating import Gates, measurement_gates
from calib.stages.product_metrics import fir_response, rfft_grid
from calib.store.calibration import Calibration
from calib.store.measurement import Measurement

FRONT = (0.0, 0.0)
REFERENCE_PA = 20e-6
BANDS_PER_OCTAVE = 12


@dataclass
class Spinorama:
    """Spinorama curves of several sources on common bands.

    Attributes
    ----------
    bands : Bands
        The 1/12-octave bands (``bands.centre_hz`` is ``bands_hz``).
    curves : dict
        ``source -> curve name -> [B]`` dB (the curves of :func:`calib.metrics.spinorama.spinorama`).
    axes : dict
        ``source -> (azimuth, elevation)`` of the reference axis used, degrees.
    orbits_db : dict
        ``source -> (horizontal [36, B], vertical [36, B])`` band levels on
        :data:`calib.metrics.spinorama.ORBIT_DEG` about the source's axis, dB.
    sphere_db : dict
        ``driver -> [A, E, B]`` band level on the whole grid (the balloon), dB.
    sphere_power_db : dict
        ``source -> [B]``: the mean level over the whole sphere (the sound power
        the grid integrates, :func:`calib.metrics.spinorama.sphere_mean_power`), dB.
    azimuth_deg, elevation_deg : ndarray
        The grid.
    """

    bands: Bands
    curves: dict[str, dict[str, np.ndarray]]
    axes: dict[str, tuple[float, float]]
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    orbits_db: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    sphere_db: dict[str, np.ndarray] = field(default_factory=dict)
    sphere_power_db: dict[str, np.ndarray] = field(default_factory=dict)
    reference: float = REFERENCE_PA

    @property
    def level_label(self) -> str:
        """What the levels are relative to: ``dB re 20 µPa`` or ``dB re 1 FS``."""
        return "dB re 20 µPa" if self.reference == REFERENCE_PA else f"dB re {self.reference:g} FS"

    @property
    def bands_hz(self) -> np.ndarray:
        """Band centres, Hz [B]."""
        return self.bands.centre_hz


def log_bands(f_lo: float, f_hi: float, per_octave: int = BANDS_PER_OCTAVE) -> Bands:
    """Fractional-octave bands (base 2, centred on 1 kHz) with centres in ``[f_lo, f_hi]``."""
    k = np.arange(np.ceil(per_octave * np.log2(f_lo / 1000.0)), np.floor(per_octave * np.log2(f_hi / 1000.0)) + 1)
    centre = 1000.0 * 2.0 ** (k / per_octave)
    half = 2.0 ** (0.5 / per_octave)
    return Bands(k.astype(int), centre, centre / half, centre * half, np.round(centre, 1))


def band_mean(freqs_hz: np.ndarray, power: np.ndarray, bands: Bands) -> np.ndarray:
    """Mean of ``power`` [..., F] over the bins ``lower <= f < upper`` of each band, [..., B] (NaN: no bin).

    Bands are contiguous runs of an ascending grid: each is summed as a slice,
    in float64 (a membership-matrix product costs O(F B); a cumulative sum
    would lose a quiet band's power in the rounding of the loud ones below it).
    """
    lo = np.searchsorted(freqs_hz, bands.lower_hz, side="left")
    hi = np.searchsorted(freqs_hz, bands.upper_hz, side="left")
    out = np.full(power.shape[:-1] + (len(lo),), np.nan)
    for b, (i, j) in enumerate(zip(lo, hi, strict=True)):
        if j > i:
            out[..., b] = np.mean(power[..., i:j], axis=-1, dtype=np.float64)
    return out


def _elevations(proc: Procedure, meas: Measurement) -> np.ndarray:
    by_name = {m.name: m.elevation_deg for m in proc.mics}
    return np.array([by_name[name] for name in meas.receivers], dtype=float)


def _sphere_band_power(meas: Measurement, gates: Gates | None, n_fft: int, bands: Bands,
                       combine: np.ndarray | None) -> np.ndarray:
    """Band power ``[A, E, K, B]`` of the sources (``combine`` [F, S, K]: through filters; None: as measured)."""
    from calib.stages.fit import arc_spectra  # the fit's gated spectra, read one microphone at a time

    freqs = rfft_grid(n_fft, meas.sample_rate)
    out = []
    for mic in range(len(meas.receivers)):
        windows = None if gates is None else gates.directivity[mic].windows(meas.ir_length, meas.sample_rate)
        spectra = arc_spectra(meas.directivity_ir, mic, n_fft, windows)  # [F, A, S]
        if combine is not None:
            spectra = spectra @ combine  # [F, A, S] @ [F, S, K]: batched over bins
        power = np.abs(np.moveaxis(spectra, 0, -1)) ** 2  # [A, K, F]
        out.append(band_mean(freqs, power, bands))
    return np.stack(out, axis=1)


def unit_spinorama(proc: Procedure, meas: Measurement, cal: Calibration | None = None,
                   gates: Gates | None = None, reference: float | None = None,
                   bands: Bands | None = None) -> Spinorama:
    """Spinoramas of a characterize or verify measurement (see the module docstring).

    Parameters
    ----------
    proc : Procedure
        Its grid must hold the orbits (:func:`sphere_problem`).
    meas : Measurement
        ``characterize`` (sources: drivers) or ``verify`` (drivers, or inputs L, R, C).
    cal : Calibration, optional
        With it and driver sources, L, R and C are formed through its FIRs.
    gates : Gates, optional
        The measurement's IR gates (default: :func:`calib.stages.gating.measurement_gates`).
    reference : float, optional
        What reads 0 dB; default 20 uPa for IRs in Pa/FS, else 1 (full scale).
    bands : Bands, optional
        Default: 1/12 octave from the sweep's (and the gates') lowest frequency,
        100 Hz at least, to the sweep's highest (20 kHz at most). A verification
        takes its prediction's bands, so the two compare band by band.
    """
    problem = sphere_problem(proc)
    if problem is not None:
        raise ValueError(problem)
    sources = list(meas.sources)
    drivers = [d for d in sources if d in proc.driver_names]
    if drivers == sources:  # driver IRs are gated as the fit gates them
        gates = gates or measurement_gates(meas, proc)
    else:  # responses through the filters cannot be gated (as calib.stages.verify.verified_metrics)
        gates = None
    if reference is None:
        unit = meas.attrs.get("ir_unit_directivity", meas.attrs.get("ir_unit", "FS/FS"))
        reference = REFERENCE_PA if str(unit) == IR_UNIT_PASCAL else 1.0
    fs = meas.sample_rate
    taps = 0 if cal is None else cal.fir.shape[-1]
    n_fft = next_pow2(max(meas.ir_length + taps, 16384))  # >= 2.9 Hz bins at 48 kHz
    if bands is None:
        gated = [] if gates is None else [g.lowest_hz for g in gates.directivity]
        bands = log_bands(max([*gated, proc.sweep.band_hz[0], 100.0]), min(proc.sweep.band_hz[1], 20000.0, fs / 2))
    combine = None
    if cal is not None and drivers == sources == list(cal.drivers):
        _, filters = fir_response(cal.fir, fs, n_fft)  # [F, S, K]
        identity = np.broadcast_to(np.eye(len(sources)), (filters.shape[0], len(sources), len(sources)))
        combine = np.concatenate([identity, filters], axis=-1).astype(np.complex64)  # the drivers, then L, R, C
        sources = sources + list(cal.inputs)
    power = _sphere_band_power(meas, gates, n_fft, bands, combine)  # [A, E, K, B]
    az, el = np.asarray(meas.azimuth_deg, float), _elevations(proc, meas)
    rows = np.argsort(el)  # elevations ascending, whatever the arc's order
    power, el = power[:, rows], el[rows]
    axis_of = {d.name: (float(d.axis_deg[0]), float(d.axis_deg[1])) for d in proc.drivers}
    result = Spinorama(bands, {}, {}, az, el, reference=reference)
    for k, source in enumerate(sources):
        axis = axis_of.get(source, FRONT)
        try:
            h, v = orbits_from_sphere(power[:, :, k], az, el, axis)
        except ValueError:  # a driver axis between grid points: about the device front
            axis = FRONT
            h, v = orbits_from_sphere(power[:, :, k], az, el, axis)
        result.curves[source] = spinorama(np.sqrt(h), np.sqrt(v), reference=reference)
        result.axes[source] = axis
        result.orbits_db[source] = (power_db(h, reference**2), power_db(v, reference**2))
        result.sphere_power_db[source] = power_db(sphere_mean_power(power[:, :, k], az, el), reference**2)
        if source in drivers:
            result.sphere_db[source] = power_db(power[:, :, k], reference**2)
    return result
