"""The measurement engine: steps over azimuths and head positions, writes as it goes.

The engine talks to a :class:`~calib.rig.base.Rig` only, so the same code
runs on the virtual lab, a replayed file or a PortAudio interface. Every
step is written and flushed before the next one starts; ``resume`` continues
a file from its first missing step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from calib.capture.absolute import IR_UNIT_PASCAL, apply_input_calibration, ir_unit, noise_spl_db
from calib.capture.plan import MeasurementPlan
from calib.capture.schedule import StepCapture, capture_step, quality_bands
from calib.errors import CaptureGlitchError, FileFormatError, MeasurementError
from calib.procedure.air import DEFAULT_SPEED_OF_SOUND_M_S, SPEED_OF_SOUND_ATTR, SPEED_OF_SOUND_SOURCE_ATTR
from calib.rig.base import Rig
from calib.store.measurement import (
    FORMAT,
    StepQuality,
    create_measurement,
    mark_complete,
    open_checked,
    utc_stamp,
    write_step,
)

log = logging.getLogger(__name__)

LOCKED_FILE_TIMEOUT_S = 30.0
"""How long a write waits for another program (an HDF5 viewer, ``calib inspect``) to release the file."""


def new_measurement_path(out_dir: str | Path, serial: str, stage: str) -> Path:
    """``<out_dir>/<serial>/<stage>-<utc>.h5``; never an existing file."""
    folder = Path(out_dir) / serial
    path = folder / f"{stage}-{utc_stamp()}.h5"
    n = 1
    while path.exists():  # two runs within one second
        path = folder / f"{stage}-{utc_stamp()}-{n}.h5"
        n += 1
    return path


def find_measurements(out_dir: str | Path, serial: str, stage: str) -> list[Path]:
    """Measurement files of ``serial`` and ``stage``, oldest first."""
    return sorted((Path(out_dir) / serial).glob(f"{stage}-*.h5"))


def latest_incomplete(out_dir: str | Path, serial: str, stage: str) -> Path | None:
    """Return the newest incomplete measurement of ``serial`` and ``stage``, if any."""
    for path in reversed(find_measurements(out_dir, serial, stage)):
        try:
            with h5py.File(path, "r") as f:
                if not bool(f.attrs.get("complete", False)):
                    return path
        except OSError:
            continue
    return None


def run_measurement(
    plan: MeasurementPlan,
    rig: Rig,
    path: str | Path,
    *,
    serial: str,
    procedure_text: str,
    procedure_sha256: str,
    resume: bool = False,
    progress: bool | None = None,
    extra_attrs: dict[str, object] | None = None,
    on_step: Callable[[str, int], None] | None = None,
    input_cals: dict | None = None,
    finalize: Callable[[Path], None] | None = None,
) -> Path:
    """Measure every missing step of ``plan`` into ``path``.

    Parameters
    ----------
    plan : MeasurementPlan
        Sources, grid, positions and sweep settings.
    rig : Rig
        Where sound goes.
    path : path
        The measurement file. Created unless ``resume``; then it must exist,
        match ``plan`` and ``serial``, and is continued from its first missing step.
    progress : bool or None
        Show a progress bar (None: only on a terminal).
    on_step : callable, optional
        Called with (group, index) after each step is written (tests use it
        to interrupt a run).
    input_cals : dict, optional
        :class:`~calib.capture.absolute.InputCalibration` per 0-based input
        (a station's microphone sensitivities and correction files). A group
        whose every input is calibrated is stored in pascal per full scale.
    finalize : callable, optional
        Called with the path once every step is on disk, before the file is
        marked complete (the stages annotate the reflections there).

    Returns
    -------
    Path
        The complete measurement file.

    Raises
    ------
    MeasurementError
        A step stayed bad after its retries; the steps before it are on disk.
    """
    path = Path(path)
    cals = input_cals or {}
    groups = {"directivity": plan.mic_inputs, "binaural": list(plan.ear_inputs)}
    units = {group: ir_unit(inputs, cals) for group, inputs in groups.items()}
    attrs = dict(extra_attrs or {})
    attrs.update(rig.attrs)
    c = DEFAULT_SPEED_OF_SOUND_M_S if rig.speed_of_sound_m_s is None else rig.speed_of_sound_m_s
    attrs.update({SPEED_OF_SOUND_ATTR: c, SPEED_OF_SOUND_SOURCE_ATTR: rig.air})
    attrs.update({f"ir_unit_{group}": unit for group, unit in units.items()})
    for index, cal in cals.items():
        attrs[f"sensitivity_fs_per_pa_input_{index + 1}"] = cal.sensitivity_fs_per_pa
    if resume:
        done = _check_resumable(path, plan, serial, procedure_sha256)
    else:
        create_measurement(
            path,
            serial=serial,
            stage=plan.stage,
            sample_rate=plan.sample_rate,
            rig=rig.name,
            simulated=rig.simulated,
            procedure_text=procedure_text,
            procedure_sha256=procedure_sha256,
            sources=plan.sources,
            azimuth_deg=plan.azimuths_deg,
            receivers=plan.mic_names,
            positions=plan.positions,
            ir_length=plan.ir_length,
            extra_attrs=attrs,
            band_centre_hz=quality_bands(plan).centre_hz,
            noise_unit={group: "dB SPL" if unit == IR_UNIT_PASCAL else "dBFS" for group, unit in units.items()},
        )
        done = {"directivity": np.zeros(len(plan.azimuths_deg), bool), "binaural": np.zeros(len(plan.positions), bool)}
    steps = plan.steps
    n_done = sum(int(d.sum()) for d in done.values())
    clock = StationClock(rig)
    worst_contamination = np.full(len(plan.sources), -np.inf)
    bar = tqdm(
        total=len(steps), initial=n_done, unit="step", desc=f"{plan.stage} {serial}",
        disable=(None if progress is None else not progress), dynamic_ncols=True, leave=True,
    )
    try:
        for group, index in steps:
            if done[group][index]:
                continue
            with clock.turning():
                _place(rig, plan, group, index)
            inputs = groups[group]
            capture, quality = _capture_with_retries(plan.for_step(group, index), rig, inputs,
                                                     plan.step_label(group, index),
                                                     thd_sweep=(group, index) == plan.thd_step, clock=clock)
            assert capture.contamination_db is not None  # _capture always sets it (-inf for one source)
            worst_contamination = np.maximum(worst_contamination, np.max(capture.contamination_db, axis=0))
            if units[group] == "Pa/FS":
                capture.ir = apply_input_calibration(capture.ir, inputs, cals, plan.sample_rate)
                if quality.noise_band_db is not None:
                    quality.noise_band_db = noise_spl_db(quality.noise_band_db, inputs, cals,
                                                         quality_bands(plan).centre_hz)
            _when_unlocked(path, write_step, path, group, index, capture.ir, quality)
            bar.set_postfix_str(f"{plan.step_label(group, index)}, SNR {np.nanmax(capture.snr_db):.0f} dB")
            bar.update(1)
            if on_step is not None:
                on_step(group, index)
    finally:
        bar.close()
    _when_unlocked(path, _record_station_time, path, clock, worst_contamination)
    if finalize is not None:
        _when_unlocked(path, finalize, path)
    _when_unlocked(path, mark_complete, path)
    return path


class StationClock:
    """Station time a run used: turntable moves (with settling) and playback, seconds.

    A simulated turntable counts its own time (``elapsed_s``: travel at its
    speed plus its settle time); any other is timed by the wall clock. Playback
    is the physical length of every capture played, retries included.
    """

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.turntable_s = 0.0
        self.playback_s = 0.0
        self.simulated = hasattr(rig.turntable, "elapsed_s")

    @contextmanager
    def turning(self) -> Iterator[None]:
        """Account the time of the moves made inside the block."""
        start_sim = getattr(self.rig.turntable, "elapsed_s", 0.0)
        start = time.monotonic()
        try:
            yield
        finally:
            if self.simulated:
                self.turntable_s += float(getattr(self.rig.turntable, "elapsed_s", 0.0)) - start_sim
            else:
                self.turntable_s += time.monotonic() - start

    @property
    def total_s(self) -> float:
        """Return the station time spent so far, turntable and playback, in seconds."""
        return self.turntable_s + self.playback_s


def _record_station_time(path: Path, clock: StationClock, contamination_db: np.ndarray) -> None:
    """Add this session's station time (a resumed file sums its sessions) and the MESM contamination bound."""
    with h5py.File(path, "r+") as f:
        for key, value in (("station_time_s", clock.total_s), ("station_time_turntable_s", clock.turntable_s),
                           ("station_time_playback_s", clock.playback_s)):
            f.attrs[key] = float(f.attrs.get(key, 0.0)) + value
        f.attrs["station_time_clock"] = (
            "simulated" if clock.simulated else "wall clock (turntable), physical (playback)"
        )
        old = np.asarray(f.attrs.get("mesm_contamination_bound_db", contamination_db), float)
        f.attrs["mesm_contamination_bound_db"] = np.maximum(old, contamination_db)


def _when_unlocked(path: Path, write: Callable[..., None], *args: object) -> None:
    """Run ``write(*args)``, waiting while another process holds the file open (HDF5 file lock).

    A reader takes a shared lock; the writer's exclusive one then fails at once
    (nothing is written). Waiting beats a crash in the middle of a unit.
    """
    deadline = time.monotonic() + LOCKED_FILE_TIMEOUT_S
    while True:
        try:
            write(*args)
            return
        except OSError as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise MeasurementError(
                    f"{path}: another program kept the file open for {LOCKED_FILE_TIMEOUT_S:g} s (HDF5 viewer?); "
                    "close it and continue with --resume"
                ) from None
            time.sleep(0.05)


def _place(rig: Rig, plan: MeasurementPlan, group: str, index: int) -> None:
    if group == "directivity":
        # The arc microphone stands still; turning the device by -az puts it at +az.
        rig.turntable.move_to(-float(plan.azimuths_deg[index]), timeout_s=plan.turntable_timeout_s)
    else:
        rig.turntable.move_to(0.0, timeout_s=plan.turntable_timeout_s)
        rig.positioner.place(plan.positions[index])


def _capture_with_retries(
    plan: MeasurementPlan, rig: Rig, inputs: list[int], label: str, thd_sweep: bool = False,
    clock: StationClock | None = None,
) -> tuple[StepCapture, StepQuality]:
    """Capture one step; back off the level on clipping, retry on xruns, dropouts, low SNR.

    The quality records the retries and whether the step clipped before the
    level was backed off (a clipped capture itself is never kept).
    """
    level = plan.level_dbfs
    reasons: list[str] = []
    for attempt in range(plan.retries + 1):
        try:
            capture = capture_step(plan, rig.audio, inputs, level, thd_sweep=thd_sweep)
        except CaptureGlitchError as exc:
            reasons.append(str(exc))
            continue
        if clock is not None:
            clock.playback_s += capture.playback_s
        if capture.clipped:
            reasons.append(f"clipped at {level:g} dBFS")
            level -= plan.backoff_db
            continue
        if capture.dropout:
            reasons.append("dropout in the capture")
            continue
        # Per receiver, the best-heard source must clear the limit: a receiver that hears
        # nothing clearly is a broken capture; one quiet driver at the rear is physics.
        worst = float(np.nanmin(np.nanmax(capture.snr_db, axis=1)))
        if worst < plan.min_snr_db:
            reasons.append(f"SNR {worst:.1f} dB < {plan.min_snr_db:g} dB")
            continue
        if attempt:
            log.info("%s: good after %d retries (%s)", label, attempt, "; ".join(reasons))
        return capture, StepQuality(
            snr_db=capture.snr_db,
            thd_percent=capture.thd_percent,
            peak_dbfs=capture.peak_dbfs,
            latency_samples=capture.latency_samples,
            retries=attempt,
            clipped=level < plan.level_dbfs,
            thd_band_percent=capture.thd_band_percent,
            noise_band_db=capture.noise_band_db,
        )
    raise MeasurementError(
        f"{plan.stage} {label}: still bad after {plan.retries} retries ({'; '.join(reasons)}); "
        "the steps before it are saved, fix the cause and continue with --resume"
    )


def _check_resumable(path: Path, plan: MeasurementPlan, serial: str, procedure_sha256: str) -> dict[str, np.ndarray]:
    with open_checked(path, FORMAT) as f:
        attrs = f.attrs
        wrong: list[tuple[str, object, object]] = [
            (key, attrs.get(key), want)
            for key, want in (("serial", serial), ("stage", plan.stage), ("procedure_sha256", procedure_sha256))
            if str(attrs.get(key)) != want
        ]
        if list(f["sources"].asstr()[()]) != plan.sources:
            wrong.append(("sources", list(f["sources"].asstr()[()]), plan.sources))
        if f["directivity/ir"].shape[-1] != plan.ir_length:
            wrong.append(("ir length", f["directivity/ir"].shape[-1], plan.ir_length))
        if wrong:
            key, got, want = wrong[0]
            raise FileFormatError(f"{path}: cannot resume: {key} is {got!r}, this run needs {want!r}")
        if bool(attrs.get("complete", False)):
            raise FileFormatError(f"{path}: cannot resume: the measurement is already complete")
        return {"directivity": f["directivity/done"][()], "binaural": f["binaural/done"][()]}
