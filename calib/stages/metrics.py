"""Product metrics from ear responses and beam patterns (DESIGN.md section 6).

The same function serves the prediction (characterize IRs times the
filters) and the verification (the re-measurement through the filters), so
the two are computed identically and can be compared band by band.
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import third_octave_bands
from calib.metrics.beam import azimuth_index, directivity_index_db, main_lobe_db, null_depth_db, sector_level_db
from calib.metrics.ctc import cancellation_gain_from_ears_db
from calib.metrics.effort import band_effort_db, max_effort_db, white_noise_gain_db
from calib.procedure.model import Procedure
from calib.signals.convolve import next_pow2

Metrics = dict[str, np.ndarray]


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
    dict
        ``ctc/bands_hz`` [B], ``ctc/positions`` [P], ``ctc/cancellation_db`` [2, P, B],
        ``effort/max_db`` [], ``effort/band_db`` [B], and, with a beam,
        ``beam/bands_hz`` [Bb], ``beam/null_depth_db`` [2, Bb] (positive = deep),
        ``beam/main_lobe_db`` [Bb], ``beam/di_db`` [Bb], with a null sector
        ``beam/sector_rejection_db`` [2, Bb] (worst azimuth per side, positive =
        rejected) and with ``beam_plant_arc`` ``beam/wng_db`` [Bb].
    """
    target = proc.targets.cancellation
    bands = third_octave_bands(*target.band_hz())
    f_eff, filters = fir_response(fir, sample_rate)
    cancellation = cancellation_gain_from_ears_db(ears_lr, freqs_hz, bands)
    cancellation[..., bands.lower_hz < lowest_hz[0]] = np.nan
    out: Metrics = {
        "ctc/bands_hz": bands.nominal_hz.astype(float),
        "ctc/positions": np.array(position_names, dtype=object),
        "ctc/cancellation_db": cancellation,
        "effort/max_db": np.array(max_effort_db(filters, f_eff, proc.sweep.band_hz)),
        "effort/band_db": band_effort_db(filters, f_eff, bands),
    }
    beam = proc.targets.beam
    if beam is not None and beam_pattern is not None:
        bb = third_octave_bands(*beam.band_hz)
        nulls = (beam.null_deg, -beam.null_deg)
        out["beam/bands_hz"] = bb.nominal_hz.astype(float)
        out["beam/null_depth_db"] = -null_depth_db(beam_pattern, azimuths_deg, nulls, freqs_hz, bb)
        out["beam/main_lobe_db"] = main_lobe_db(beam_pattern, azimuths_deg, beam.main_lobe_deg, freqs_hz, bb)
        out["beam/di_db"] = directivity_index_db(beam_pattern, azimuths_deg, freqs_hz, bb)
        if beam.null_sector_deg is not None:
            out["beam/sector_rejection_db"] = -sector_level_db(
                beam_pattern, azimuths_deg, beam.null_sector_deg, freqs_hz, bb
            )
        if beam_plant_arc is not None:
            # WNG of the filters realised on this grid: |B(0)|^2 / (|w|^2 mean_s |c_0s|^2), band-averaged.
            on_axis = np.asarray(beam_plant_arc)[:, azimuth_index(azimuths_deg, 0.0)]
            f_c = fir_response(fir, sample_rate, 2 * (freqs_hz.size - 1))[1][..., 2]
            out["beam/wng_db"] = white_noise_gain_db(on_axis, f_c, freqs_hz, bb)
        for key in ("beam/null_depth_db", "beam/main_lobe_db", "beam/di_db", "beam/sector_rejection_db",
                    "beam/wng_db"):
            if key in out:  # bands the arc's gate cannot resolve are not judged
                out[key] = np.where(bb.lower_hz < lowest_hz[1], np.nan, out[key])
    return out
