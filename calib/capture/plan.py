"""What a measurement run does: sources, steps, channels, excitation settings.

A *source* is what one sweep excites: a single driver (stage
``characterize``) or one input L, R, C rendered through the unit's filters
(stage ``verify``). Each source is a set of FIR feeds, one per output
channel, so the schedule code never needs to know which stage it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from calib.geometry import HeadPosition
from calib.procedure.layout import channel_counts, head_position
from calib.procedure.spec import Procedure


@dataclass(frozen=True)
class MeasurementPlan:
    """Everything the engine needs to run one stage for one unit.

    Attributes
    ----------
    stage : str
        ``"characterize"`` or ``"verify"``.
    sources : list of str
        Source names, in the order of ``feeds``.
    feeds : ndarray, shape (S, n_outputs, T)
        FIR from source excitation to every output channel (0-based rows).
    azimuths_deg : ndarray, shape (A,)
        Microphone azimuths relative to the device front; the turntable is
        turned to minus each.
    mic_inputs : list of int
        0-based input channels of the arc microphones, in ``mic_names`` order.
    ear_inputs : tuple of int
        0-based input channels of the left and right ear.
    loopback : tuple of int or None
        (output, input), 0-based.
    ir_length : int
        Samples kept per impulse response (time origin at the output instant).
    mesm_clear, thd_sweep_s : str, float or None
        ``[sweep]``'s MESM clearance and dedicated THD sweep (:mod:`calib.capture.schedule`).
    turntable_speed_deg_s, settle_s : float
        ``[turntable]``'s speed and settle time (the station-time estimate).
    position_feeds : tuple
        Empty, or per head position the feeds played there instead of
        ``feeds`` (same shape), or None for ``feeds``: a listening area's
        hidden heads are verified through the filters of their cell.
    """

    stage: str
    sources: list[str]
    feeds: np.ndarray
    azimuths_deg: np.ndarray
    mic_names: list[str]
    mic_inputs: list[int]
    positions: list[HeadPosition]
    ear_inputs: tuple[int, int]
    loopback: tuple[int, int] | None
    n_outputs: int
    n_inputs: int
    sample_rate: int
    ir_length: int
    band_hz: tuple[float, float]
    duration_s: float
    level_dbfs: float
    fade_in_s: float
    fade_out_s: float
    schedule: str
    n_harmonics: int
    min_snr_db: float
    retries: int
    backoff_db: float
    turntable_timeout_s: float
    mesm_clear: str = "all"
    thd_sweep_s: float | None = None
    turntable_speed_deg_s: float = 30.0
    settle_s: float = 0.0
    position_feeds: tuple[np.ndarray | None, ...] = ()

    def for_step(self, group: str, index: int) -> MeasurementPlan:
        """Return the plan one step plays: this one, with the head position's own feeds where it has some."""
        own = self.position_feeds[index] if group == "binaural" and self.position_feeds else None
        return self if own is None else replace(self, feeds=own)

    @property
    def thd_step(self) -> tuple[str, int]:
        """The step that plays the dedicated THD sweeps: the azimuth nearest the front, else the first position."""
        if len(self.azimuths_deg):
            return ("directivity", int(np.argmin(np.abs(self.azimuths_deg))))
        return ("binaural", 0)

    @property
    def steps(self) -> list[tuple[str, int]]:
        """All steps in measurement order: directivity azimuths, then head positions."""
        return [("directivity", i) for i in range(len(self.azimuths_deg))] + [
            ("binaural", i) for i in range(len(self.positions))
        ]

    def step_label(self, group: str, index: int) -> str:
        """Return a short human label for progress and errors."""
        if group == "directivity":
            return f"azimuth {self.azimuths_deg[index]:+g} deg"
        return f"head at {self.positions[index].name}"


def plan_for(proc: Procedure, stage: str, sources: list[str], feeds: np.ndarray,
             positions: list[HeadPosition], ir_length: int, azimuths_deg: np.ndarray | None = None) -> MeasurementPlan:
    """Return a plan with the procedure's channels, grid (or ``azimuths_deg``) and sweep settings."""
    ch = proc.channels
    n_out, n_in = channel_counts(proc)
    sw = proc.sweep
    return MeasurementPlan(
        stage=stage,
        sources=sources,
        feeds=feeds,
        azimuths_deg=proc.turntable.grid_deg() if azimuths_deg is None else np.asarray(azimuths_deg, float),
        mic_names=proc.mic_names,
        mic_inputs=[ch.mics[m] - 1 for m in proc.mic_names],
        positions=positions,
        ear_inputs=(ch.ears.left - 1, ch.ears.right - 1),
        loopback=(ch.loopback.output - 1, ch.loopback.input - 1) if ch.loopback else None,
        n_outputs=n_out,
        n_inputs=n_in,
        sample_rate=proc.audio.sample_rate,
        ir_length=ir_length,
        band_hz=sw.band_hz,
        duration_s=sw.duration_s,
        level_dbfs=sw.level_dbfs,
        fade_in_s=sw.fade_in_s,
        fade_out_s=sw.fade_out_s,
        schedule=sw.schedule,
        n_harmonics=sw.n_harmonics,
        min_snr_db=sw.min_snr_db,
        retries=sw.retries,
        backoff_db=sw.backoff_db,
        turntable_timeout_s=proc.turntable.timeout_s,
        mesm_clear=sw.mesm_clear,
        thd_sweep_s=sw.thd_sweep_s,
        turntable_speed_deg_s=proc.turntable.speed_deg_s,
        settle_s=proc.turntable.settle_s,
    )


def plan_characterize(proc: Procedure) -> MeasurementPlan:
    """Return the characterize steps: every driver alone at every position.

    Every driver alone, at every azimuth and every head position it characterizes (``characterize = true``;
    a listening area's grid included).
    """
    n_out, _ = channel_counts(proc)
    feeds = np.zeros((len(proc.drivers), n_out, 1))
    for s, name in enumerate(proc.driver_names):
        feeds[s, proc.channels.outputs[name] - 1, 0] = 1.0
    positions = [head_position(p) for p in proc.measured_positions() if p.characterize]  # with an area's grid
    return plan_for(proc, "characterize", proc.driver_names, feeds, positions, proc.sweep.ir_length)
