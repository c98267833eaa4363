"""Product metrics from ear responses and beam patterns (docs/metrics.md).

The same function serves the prediction (characterize IRs times the
filters) and the verification (the re-measurement through the filters), so
the two are computed identically and can be compared band by band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.metrics.bands import third_octave_bands
from calib.metrics.beam import azimuth_index, directivity_index_db, main_lobe_db, null_depth_db, sector_level_db
from calib.metrics.ctc import cancellation_gain_from_ears_db
from calib.metrics.effort import band_effort_db, max_effort_db, white_noise_gain_db
from calib.procedure.spec import Procedure
from calib.signals.convolve import next_pow2


@dataclass(frozen=True)
class CtcMetrics:
    """Cancellation gain of the CTC, per input, position and 1/3-octave band.

    Attributes
    ----------
    bands_hz : ndarray [B]
        Nominal band centres.
    positions : tuple of str
        The P head positions, in the measurement's order.
    cancellation_db : ndarray [2, P, B]
        Inputs L (0) and R (1); NaN in bands the ears' gate cannot resolve.
    """

    bands_hz: np.ndarray
    positions: tuple[str, ...]
    cancellation_db: np.ndarray


@dataclass(frozen=True)
class EffortMetrics:
    """How hard the filters drive the drivers: the worst bin in the sweep band, and per CTC band (dB)."""

    max_db: float
    band_db: np.ndarray


@dataclass(frozen=True)
class BeamMetrics:
    """The centre beam per 1/3-octave band of the beam band (NaN where the arc's gate cannot resolve).

    Attributes
    ----------
    bands_hz : ndarray [Bb]
    null_depth_db : ndarray [2, Bb]
        At +null and -null, positive = deep.
    main_lobe_db : ndarray [Bb]
    di_db : ndarray [Bb]
        Directivity index over the horizontal circle.
    sector_rejection_db : ndarray [2, Bb] or None
        Worst azimuth of the null sector per side, positive = rejected (with a sector target).
    wng_db : ndarray [Bb] or None
        White-noise gain (the prediction only: it needs the per-driver plant).
    """

    bands_hz: np.ndarray
    null_depth_db: np.ndarray
    main_lobe_db: np.ndarray
    di_db: np.ndarray
    sector_rejection_db: np.ndarray | None = None
    wng_db: np.ndarray | None = None


@dataclass(frozen=True)
class Metrics:
    """All metrics of one unit, predicted or verified (:func:`product_metrics`)."""

    ctc: CtcMetrics
    effort: EffortMetrics
    beam: BeamMetrics | None = None

    def datasets(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, object]]]:
        """Return the calibration file's ``/predicted`` datasets (``ctc/cancellation_db`` ...) and their attributes.

        The position names are an attribute of ``ctc/cancellation_db``, not a
        dataset (docs/file-formats.md, 'Calibration file').
        """
        values: dict[str, object] = {
            "ctc/bands_hz": self.ctc.bands_hz,
            "ctc/cancellation_db": self.ctc.cancellation_db,
            "effort/max_db": self.effort.max_db,
            "effort/band_db": self.effort.band_db,
        }
        if self.beam is not None:
            values |= {"beam/bands_hz": self.beam.bands_hz, "beam/null_depth_db": self.beam.null_depth_db,
                       "beam/main_lobe_db": self.beam.main_lobe_db, "beam/di_db": self.beam.di_db}
            if self.beam.sector_rejection_db is not None:
                values["beam/sector_rejection_db"] = self.beam.sector_rejection_db
            if self.beam.wng_db is not None:
                values["beam/wng_db"] = self.beam.wng_db
        attrs: dict[str, dict[str, object]] = {"ctc/cancellation_db": {"positions": ",".join(self.ctc.positions)}}
        return {k: np.asarray(v, float) for k, v in values.items()}, attrs


def rfft_grid(n_fft: int, sample_rate: int) -> np.ndarray:
    """Bin frequencies of an ``n_fft`` rfft."""
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)


def fir_response(fir: np.ndarray, sample_rate: int, n_fft: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bin frequencies and responses ``[F, S, K]`` of an FIR matrix ``[K, S, T]`` (default grid: 4 T, a power of 2)."""
    taps = fir.shape[-1]
    n = n_fft or next_pow2(4 * taps)
    H = np.fft.rfft(np.asarray(fir, dtype=float), n, axis=-1)  # [K, S, F]
    return rfft_grid(n, sample_rate), np.transpose(H, (2, 1, 0))


def horizontal_mic_index(proc: Procedure) -> int:
    """Return the arc microphone closest to the horizontal plane (beam metrics use it)."""
    return int(np.argmin([abs(m.elevation_deg) for m in proc.mics]))


def product_metrics(
    proc: Procedure,
    freqs_hz: np.ndarray,
    ears_lr: np.ndarray,
    position_names: list[str],
    beam_pattern: np.ndarray | None,
    azimuths_deg: np.ndarray,
    fir: np.ndarray,
    sample_rate: int,
    lowest_hz: tuple[float, float] = (0.0, 0.0),
    beam_plant_arc: np.ndarray | None = None,
) -> Metrics:
    """All metrics of one unit.

    Parameters
    ----------
    ears_lr : ndarray, complex [F, P, 2, 2]
        Ear pressure (ear 0 left, 1 right) for inputs L (0) and R (1).
    position_names : list of str
        Names of the P positions.
    beam_pattern : ndarray, complex [F, A] or None
        Horizontal pattern of input C (None: the product has no beam target).
    fir : ndarray [K, S, T]
        The calibration's FIR matrix (effort, on its own fixed grid so the
        predicted and verified figures are the same number).
    sample_rate : int
    lowest_hz : (float, float)
        The lowest frequency the ears' and the beam microphone's gates
        support (:mod:`calib.stages.gating`): bands reaching below are NaN
        (not judged).
    beam_plant_arc : ndarray, complex [F, A, S], optional
        The driver responses on the horizontal arc the pattern was formed
        from (the prediction has them; a verification only has the pattern):
        with them, the beam's white-noise gain is reported too.

    Returns
    -------
    Metrics
        CTC cancellation gain and filter effort; with a beam pattern, the
        beam's null depth, main lobe and DI, the sector rejection with a
        null sector, and the white-noise gain with ``beam_plant_arc``.
    """
    target = proc.targets.cancellation
    bands = third_octave_bands(*target.band_hz())
    f_eff, filters = fir_response(fir, sample_rate)
    cancellation = cancellation_gain_from_ears_db(ears_lr, freqs_hz, bands)
    cancellation[..., bands.lower_hz < lowest_hz[0]] = np.nan
    ctc = CtcMetrics(bands.nominal_hz.astype(float), tuple(str(p) for p in position_names), cancellation)
    effort = EffortMetrics(float(max_effort_db(filters, f_eff, proc.sweep.band_hz)),
                           band_effort_db(filters, f_eff, bands))
    beam = proc.targets.beam
    if beam is None or beam_pattern is None:
        return Metrics(ctc, effort)
    bb = third_octave_bands(*beam.band_hz)
    unresolved = bb.lower_hz < lowest_hz[1]  # bands the arc's gate cannot resolve are not judged

    def judged(values: np.ndarray) -> np.ndarray:
        return np.where(unresolved, np.nan, values)

    nulls = (beam.null_deg, -beam.null_deg)
    sector = wng = None
    if beam.null_sector_deg is not None:
        sector = judged(-sector_level_db(beam_pattern, azimuths_deg, beam.null_sector_deg, freqs_hz, bb))
    if beam_plant_arc is not None:
        # WNG of the filters realised on this grid: |B(0)|^2 / (|w|^2 mean_s |c_0s|^2), band-averaged.
        on_axis = np.asarray(beam_plant_arc)[:, azimuth_index(azimuths_deg, 0.0)]
        f_c = fir_response(fir, sample_rate, 2 * (freqs_hz.size - 1))[1][..., 2]
        wng = judged(white_noise_gain_db(on_axis, f_c, freqs_hz, bb))
    return Metrics(ctc, effort, BeamMetrics(
        bands_hz=bb.nominal_hz.astype(float),
        null_depth_db=judged(-null_depth_db(beam_pattern, azimuths_deg, nulls, freqs_hz, bb)),
        main_lobe_db=judged(main_lobe_db(beam_pattern, azimuths_deg, beam.main_lobe_deg, freqs_hz, bb)),
        di_db=judged(directivity_index_db(beam_pattern, azimuths_deg, freqs_hz, bb)),
        sector_rejection_db=sector,
        wng_db=wng,
    ))
