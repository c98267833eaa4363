"""Excitation schedules: sequential sweeps or MESM, and their processing.

One *step* (one azimuth or one head position) plays every source and
returns loopback-referenced linear IRs, THD, SNR, peak level and latency.
Schedules:

- ``sequential``: one synchronized sweep per source, one capture each.
- ``mesm``: all sources in one capture, source k's sweep delayed by its
  offset (Majdak et al. 2007; offsets from :func:`calib.signals.mesm.mesm_offsets`):
  ``[sweep] mesm_clear = "all"`` keeps every harmonic IR clear (THD at every
  step), ``"linear"`` only the linear IRs (shorter; the harmonic slots may
  mix drivers, so a step's THD is NaN and ``[sweep] thd_sweep_s`` measures it
  with one short sweep per driver at :attr:`MeasurementPlan.thd_step`). Every
  MESM step reports the bound of :func:`calib.signals.mesm.contamination_bound_db`.

The loopback output plays the reference sweep (source 0's, undelayed) at the
same scale as the drivers, so the IR does not depend on the level and the
latency and interface response cancel in the division.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from calib.capture.plan import MeasurementPlan
from calib.metrics.bands import Bands, third_octave_bands
from calib.rig.base import AudioInterface
from calib.signals.deconvolve import deconvolve
from calib.signals.harmonics import separate, thd_bands_percent
from calib.signals.mesm import contamination_bound_db, excitation_block, mesm_excitation, mesm_offsets, mesm_split
from calib.signals.quality import (
    estimate_latency_samples,
    is_clipped,
    noise_band_power,
    noise_window,
    peak_dbfs,
    snr_db,
)
from calib.signals.sweep import Sweep, extended_range, synchronized_sweep

LATENCY_MARGIN_S = 0.1  # recorded beyond the response, for the interface's unknown latency
DROPOUT_MIN_RUN = 32  # exact zeros in a row inside a sweep: the interface lost samples


@dataclass
class StepCapture:
    """Result of one step: IRs and quality, receivers first.

    Attributes
    ----------
    ir : ndarray, shape (R, S, N)
        Linear impulse responses, time origin at the output instant.
    snr_db, thd_percent : ndarray, shape (R, S)
    peak_dbfs : ndarray, shape (R,)
        Peak of each receiver's recording.
    latency_samples : ndarray, shape (S,)
        Interface latency of the capture that measured each source (-1 without loopback).
    clipped, dropout : bool
        Any input clipped; samples lost inside a sweep.
    contamination_db : ndarray, shape (R, S)
        Bound of the other sources' harmonic and linear tails in each linear IR, dB re its energy
        (:func:`calib.signals.mesm.contamination_bound_db`; -inf: one source per capture).
    playback_s : float
        Physical length of the captures played, seconds (station time).
    thd_band_percent : ndarray, shape (R, S, B)
        THD against the excitation frequency in the bands of :func:`quality_bands` (NaN where not measurable).
    noise_band_db : ndarray, shape (R, S, B)
        Background noise per band of the capture that measured each source, dBFS (re a full-scale sine).
    """

    ir: np.ndarray
    snr_db: np.ndarray
    thd_percent: np.ndarray
    peak_dbfs: np.ndarray
    latency_samples: np.ndarray
    clipped: bool
    dropout: bool
    contamination_db: np.ndarray | None = None
    playback_s: float = 0.0
    thd_band_percent: np.ndarray | None = None
    noise_band_db: np.ndarray | None = None


@lru_cache(maxsize=8)
def plan_sweep(
    f_lo: float, f_hi: float, duration_s: float, sample_rate: int, fade_in_s: float, fade_out_s: float
) -> Sweep:
    """Return the unit-amplitude synchronized sweep for a band (range extended past it)."""
    f1, f2 = extended_range(f_lo, f_hi, sample_rate)
    return synchronized_sweep(f1, f2, duration_s, sample_rate, 0.0, fade_in_s, fade_out_s)


@lru_cache(maxsize=8)
def _bands(f_lo: float, f_hi: float) -> Bands:
    return third_octave_bands(f_lo, f_hi)


def quality_bands(plan: MeasurementPlan) -> Bands:
    """1/3-octave bands of a step's THD and noise spectra: those whose nominal centre lies in the sweep band."""
    return _bands(*plan.band_hz)


def sweep_for(plan: MeasurementPlan) -> Sweep:
    """Return the sweep every source of ``plan`` plays."""
    return plan_sweep(*plan.band_hz, plan.duration_s, plan.sample_rate, plan.fade_in_s, plan.fade_out_s)


def source_offsets(plan: MeasurementPlan, sweep: Sweep) -> np.ndarray:
    """Start offsets (samples) of the sources within one MESM capture."""
    n_sources = len(plan.sources)
    return _offsets(sweep.rate_s, plan.ir_length, plan.n_harmonics, n_sources, plan.sample_rate, plan.mesm_clear)


@lru_cache(maxsize=32)
def _offsets(rate_s: float, ir_length: int, n_harmonics: int, n_sources: int, fs: int, clear: str) -> np.ndarray:
    """:func:`mesm_offsets` once per setting (the least-span search is a small tree search)."""
    return mesm_offsets(rate_s, ir_length / fs, n_harmonics, n_sources, fs, clear=clear)


def thd_sweep_for(plan: MeasurementPlan) -> Sweep | None:
    """Return the dedicated THD sweep of ``plan`` (None: THD comes from the steps)."""
    if plan.thd_sweep_s is None:
        return None
    return plan_sweep(*plan.band_hz, plan.thd_sweep_s, plan.sample_rate, plan.fade_in_s, plan.fade_out_s)


def capture_seconds(plan: MeasurementPlan, with_thd: bool = False) -> float:
    """Physical playback time of one step (all sources), seconds; ``with_thd``: plus the dedicated THD sweeps."""
    sweep = sweep_for(plan)
    tail = plan.feeds.shape[-1] + plan.ir_length + LATENCY_MARGIN_S * plan.sample_rate
    if plan.schedule == "mesm":
        seconds = (sweep.n_samples + int(source_offsets(plan, sweep)[-1]) + tail) / plan.sample_rate
    else:
        seconds = len(plan.sources) * (sweep.n_samples + tail) / plan.sample_rate
    thd_sweep = thd_sweep_for(plan)
    if with_thd and thd_sweep is not None:
        seconds += len(plan.sources) * (thd_sweep.n_samples + tail) / plan.sample_rate
    return seconds


def capture_step(
    plan: MeasurementPlan, audio: AudioInterface, inputs: list[int], level_dbfs: float, thd_sweep: bool = False
) -> StepCapture:
    """Play every source of ``plan`` once and return the step's IRs and quality.

    Parameters
    ----------
    inputs : list of int
        0-based input channels to keep (microphones or ears).
    level_dbfs : float
        Peak level of the loudest output channel.
    thd_sweep : bool
        Also play the plan's dedicated THD sweeps (one per source, sequential)
        and report their THD instead of the step's.
    """
    sweep = sweep_for(plan)
    if plan.schedule == "mesm":
        offsets = source_offsets(plan, sweep)
        parts = [_capture(plan, audio, inputs, level_dbfs, sweep, np.arange(len(plan.sources)), offsets)]
    else:
        parts = _sequential(plan, audio, inputs, level_dbfs, sweep)
    step = _join(parts)
    short = thd_sweep_for(plan)
    if thd_sweep and short is not None:
        thd_parts = _sequential(plan, audio, inputs, level_dbfs, short)
        joined = _join(thd_parts)
        step.thd_percent = joined.thd_percent
        step.thd_band_percent = joined.thd_band_percent
        step.playback_s += joined.playback_s
        step.clipped |= joined.clipped
        step.dropout |= joined.dropout
    return step


def _sequential(plan: MeasurementPlan, audio: AudioInterface, inputs: list[int], level_dbfs: float,
                sweep: Sweep) -> list[StepCapture]:
    zero = np.zeros(1, dtype=np.int64)
    return [_capture(plan, audio, inputs, level_dbfs, sweep, np.array([k]), zero) for k in range(len(plan.sources))]


def _join(parts: list[StepCapture]) -> StepCapture:
    """One step from the captures of its sources (in source order)."""
    return StepCapture(
        ir=np.concatenate([p.ir for p in parts], axis=1),
        snr_db=np.concatenate([p.snr_db for p in parts], axis=1),
        thd_percent=np.concatenate([p.thd_percent for p in parts], axis=1),
        peak_dbfs=np.max([p.peak_dbfs for p in parts], axis=0),
        latency_samples=np.concatenate([p.latency_samples for p in parts]),
        clipped=any(p.clipped for p in parts),
        dropout=any(p.dropout for p in parts),
        contamination_db=np.concatenate([p.contamination_db for p in parts], axis=1),
        playback_s=sum(p.playback_s for p in parts),
        thd_band_percent=np.concatenate([p.thd_band_percent for p in parts], axis=1),
        noise_band_db=np.concatenate([p.noise_band_db for p in parts], axis=1),
    )


def _capture(
    plan: MeasurementPlan,
    audio: AudioInterface,
    inputs: list[int],
    level_dbfs: float,
    sweep: Sweep,
    sources: np.ndarray,
    offsets: np.ndarray,
) -> StepCapture:
    """One playrec of ``sources`` (sweep k starting at ``offsets[k]``) and its processing."""
    fs = plan.sample_rate
    n_sweep = sweep.n_samples
    feeds = plan.feeds[sources]  # [k, n_out, T]
    n_total = n_sweep + int(offsets[-1]) + feeds.shape[-1] - 1 + plan.ir_length + int(LATENCY_MARGIN_S * fs)
    excitation = mesm_excitation(sweep, len(sources), offsets, n_total - n_sweep - int(offsets[-1]))
    block = excitation_block(excitation, feeds)
    reference = excitation[0]
    if plan.loopback is not None:
        block[plan.loopback[0]] += reference
    scale = 10.0 ** (level_dbfs / 20.0) / max(float(np.max(np.abs(block))), 1e-12)
    block *= scale

    rec = audio.playrec(block)
    if plan.loopback is not None:
        ref = rec[plan.loopback[1]]
        latency = int(estimate_latency_samples(ref, reference * scale))
        watched = rec[[plan.loopback[1]]]
    else:  # no loopback: the IR origin is the start of the recording (latency stays in)
        ref = reference * scale
        latency = -1
        watched = rec[inputs]
    recorded = rec[inputs]
    n_fft = scipy.fft.next_fast_len(n_total, real=True)
    # Divide in the band of interest (its regularization skirt lies in the sweep's
    # extension), not over the sweep range: a skirt at the sweep's own edges rings.
    lo, hi = plan.band_hz
    ir_full = deconvolve(recorded, ref, lo, hi, fs, n_fft)
    n_harm = plan.n_harmonics
    if len(sources) > 1:
        parts = mesm_split(ir_full, offsets, plan.ir_length, sweep, n_harm)
        linear, harmonics = parts.linear, parts.harmonics  # [R, S, N], [R, S, H, L]
        starts = offsets
        contamination = contamination_bound_db(linear, harmonics)
    else:
        parts = separate(ir_full, sweep, plan.ir_length, n_harm)
        linear, harmonics = parts.linear[:, None], parts.harmonics[:, None]
        starts = np.zeros(1, dtype=np.int64)
        contamination = np.full(linear.shape[:2], -np.inf)
    window = noise_window(n_fft, int(offsets[-1]) + plan.ir_length + feeds.shape[-1], sweep.rate_s, fs, n_harm)
    snr = snr_db(ir_full, plan.ir_length, window, signal_start=starts)
    # Harmonic n of input f sits at n f, measurable only up to the band's top: the step's THD over
    # [lo, hi / n_harm] (every order counted) and THD(f) per band, from one pair of FFTs.
    bands = quality_bands(plan)
    n_bands = len(bands)
    if len(sources) > 1 and plan.mesm_clear == "linear":
        # the harmonic slots may hold several drivers' harmonics
        thd_all = np.full(np.shape(snr) + (1 + n_bands,), np.nan)
    elif n_harm > 1:
        thd_all = thd_bands_percent(linear, harmonics, np.r_[lo, bands.lower_hz], np.r_[hi / n_harm, bands.upper_hz],
                                    fs, f_max_hz=hi)
    else:
        thd_all = np.zeros(np.shape(snr) + (1 + n_bands,))
    thd, thd_bands = thd_all[..., 0], thd_all[..., 1:]
    # Background noise per band at each receiver, from the same noise window; one capture: same for its sources.
    ref_power = np.abs(scipy.fft.rfft(ref, n_fft)) ** 2
    # The inverse is regularized outside [lo, hi]: the edge bands' parts beyond it are left out and their
    # power scaled to the full band width (the noise spectrum taken as flat over one band).
    inner_lo, inner_hi = np.maximum(bands.lower_hz, lo), np.minimum(bands.upper_hz, hi)
    noise_ms = noise_band_power(ir_full, window, ref_power, recorded.shape[-1], inner_lo, inner_hi, fs)
    noise_ms *= (bands.upper_hz - bands.lower_hz) / (inner_hi - inner_lo)
    with np.errstate(divide="ignore"):
        noise_dbfs = 10.0 * np.log10(2.0 * noise_ms)  # re a full-scale sine's mean square, 1/2
    # Lost samples: zeros in the loopback's sweep (the reference: source 0's, even in MESM), or
    # zeros between non-zero samples of an input (the response tail included).
    dropout = _has_dropout(recorded[:, max(latency, 0) :], interior=True)
    if plan.loopback is not None:
        dropout |= _has_dropout(watched[:, latency : latency + n_sweep])
    return StepCapture(
        ir=linear,
        snr_db=np.asarray(snr, float).reshape(len(inputs), len(sources)),
        thd_percent=np.asarray(thd, float).reshape(len(inputs), len(sources)),
        peak_dbfs=peak_dbfs(recorded),
        latency_samples=np.full(len(sources), latency, dtype=np.int64),
        clipped=bool(np.any(is_clipped(rec[inputs])) or np.any(is_clipped(watched))),
        dropout=dropout,
        contamination_db=contamination,
        playback_s=block.shape[-1] / fs,
        thd_band_percent=np.asarray(thd_bands, float).reshape(len(inputs), len(sources), n_bands),
        noise_band_db=np.broadcast_to(noise_dbfs[:, None, :], (len(inputs), len(sources), n_bands)).copy(),
    )


def _has_dropout(x: np.ndarray, min_run: int = DROPOUT_MIN_RUN, interior: bool = False) -> bool:
    """Return True if any row holds ``min_run`` exact zeros in a row (lost samples, not silence: noise is never 0).

    ``interior``: count only runs with non-zero samples on both sides. A noise-free (digital)
    input is silent before the sound arrives and after it has decayed; that is no loss.
    """
    zero = x == 0.0
    if interior:
        zero &= ~np.logical_and.accumulate(zero, axis=1) & ~np.logical_and.accumulate(zero[:, ::-1], axis=1)[:, ::-1]
    zero = np.concatenate([np.zeros((x.shape[0], 1), bool), zero, np.zeros((x.shape[0], 1), bool)], axis=1)
    edges = np.diff(zero.astype(np.int8), axis=1)
    for row in range(x.shape[0]):
        starts = np.flatnonzero(edges[row] == 1)
        stops = np.flatnonzero(edges[row] == -1)
        if starts.size and np.max(stops - starts) >= min_run:
            return True
    return False


def turntable_travel_deg(azimuths_deg: np.ndarray) -> float:
    """Degrees the turntable travels over the directivity steps, from home (0) and back.

    The engine visits the azimuths in measurement order, turning the device to
    minus each, without wrapping (cables): a grid of [-180, 180) in the order
    0, 5, ..., 175, -180, ..., -5 travels 175 + 355 + 180 = 710 degrees.
    """
    path = np.concatenate([[0.0], -np.asarray(azimuths_deg, dtype=float), [0.0]])
    return float(np.sum(np.abs(np.diff(path))))


def estimate_plan_time_s(plan: MeasurementPlan) -> float:
    """Station time of one stage, seconds: turntable moves with settling, every step's capture, the THD sweeps.

    The moves follow the engine: from home (0) through minus each azimuth in
    order, back home for the head positions (if any); every move that turns
    settles ``settle_s``. Dummy-head placement is not included (it depends
    on the positioner).
    """
    path = np.concatenate([[0.0], -np.asarray(plan.azimuths_deg, float), [0.0] if plan.positions else []])
    moves = np.abs(np.diff(path))
    turntable = float(np.sum(moves)) / plan.turntable_speed_deg_s + int(np.count_nonzero(moves)) * plan.settle_s
    captures = len(plan.steps) * capture_seconds(plan) + (capture_seconds(plan, True) - capture_seconds(plan))
    return turntable + captures


def verify_plan_estimate(proc) -> MeasurementPlan:
    """Return the free-field verification's plan for time estimates: inputs L, R, C through ``fit.taps`` taps.

    At the azimuths the checks read and every verification position; with a
    listening area, its hidden heads too (:func:`calib.procedure.area.hidden_positions`).
    """
    from calib.capture.plan import plan_for
    from calib.procedure.area import hidden_positions
    from calib.procedure.layout import channel_counts, check_azimuths, head_position

    n_out, _ = channel_counts(proc)
    positions = [head_position(p) for p in [*proc.verify_positions(), *hidden_positions(proc)]]
    return plan_for(proc, "verify", ["L", "R", "C"], np.zeros((3, n_out, proc.fit.taps)), positions,
                    proc.sweep.ir_length + proc.fit.taps, check_azimuths(proc))


def estimate_unit_time_s(proc) -> float:
    """Physical station time per unit for characterize + verify, seconds (:func:`estimate_plan_time_s`).

    The verification is estimated as the free-field one (:func:`verify_plan_estimate`).
    """
    from calib.capture.plan import plan_characterize

    return estimate_plan_time_s(plan_characterize(proc)) + estimate_plan_time_s(verify_plan_estimate(proc))
