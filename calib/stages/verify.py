"""``calib verify``: play sweeps through the unit's filters, re-measure, judge.

Two methods (``[gate] verify``):

- ``filters`` (free field): sources are the filter inputs L, R and C, each
  rendered on the host through its row of the FIR matrix (the virtualizer is
  a fixed product-level pre-filter and is not part of what is verified);
- ``drivers`` (in a room, the ``auto`` choice when the room is known): every
  driver is re-measured alone at the verification positions and every
  azimuth, gated like the characterize IRs, and filtered in software. A
  response through the filters cannot be gated: the filters spread the
  direct sound over their length (tens of ms), far past the first reflection.

Only what the checks read is re-measured: every verification position
(design and holdout) and the azimuths :func:`calib.procedure.layout.check_azimuths` derives from
the beam target (the front, the point nulls, the null sector and the main
lobe; the whole grid only when the directivity index is judged). A
calibration with a listening area's bank is also verified at hidden heads
between the area's grid points, each through its cell's filters
(:mod:`calib.stages.area_verify`).

The re-measurement is a measurement file of stage ``verify``;
:func:`calib.stages.unit_report.build_unit_report` computes its metrics exactly like
the fit's predictions and judges them against the procedure's targets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from calib.capture.absolute import station_calibrations
from calib.capture.plan import MeasurementPlan, plan_for
from calib.capture.runner import latest_incomplete, new_measurement_path, run_measurement
from calib.errors import CalibError, FileFormatError
from calib.procedure.layout import channel_counts, check_azimuths, head_position
from calib.procedure.load import parse_procedure
from calib.procedure.spec import Procedure, RoomGeometry
from calib.rig.factory import open_rig
from calib.serial import check_serial
from calib.signals.convolve import next_pow2
from calib.stages.area_verify import hidden_attrs, hidden_heads, hidden_of
from calib.stages.custody import custody_attrs, find_by_sha256
from calib.stages.gating import annotate_reflections, room_for_rig
from calib.stages.product_metrics import Metrics, horizontal_mic_index, product_metrics, rfft_grid
from calib.store.calibration import Calibration, read_calibration
from calib.store.measurement import Measurement


def verify_method(proc: Procedure, room: RoomGeometry | None) -> str:
    """Return ``"filters"`` or ``"drivers"`` (module docstring): ``[gate] verify``, where ``auto`` follows the room."""
    if proc.gate.verify != "auto":
        return proc.gate.verify
    return "drivers" if room is not None and proc.gate.mode == "auto" else "filters"


def plan_verify(proc: Procedure, cal: Calibration, method: str = "filters") -> MeasurementPlan:
    """Plan the verification: the checks' azimuths and every verification position.

    Inputs L, R, C through the FIRs, or each driver alone.
    A calibration with a bank adds the hidden heads (last); with ``filters``
    each plays its cell's L and R filters and the beam's C.
    """
    n_out, _ = channel_counts(proc)
    hidden, cells = hidden_heads(proc, cal)
    positions = [head_position(p) for p in proc.verify_positions()] + hidden
    azimuths = check_azimuths(proc)
    if method == "drivers":
        feeds = np.zeros((len(cal.drivers), n_out, 1))
        for j, channel in enumerate(cal.output_channels):
            feeds[j, channel - 1, 0] = 1.0
        return plan_for(proc, "verify", list(cal.drivers), feeds, positions, proc.sweep.ir_length, azimuths)
    plan = plan_for(proc, "verify", list(cal.inputs), filter_feeds(proc, cal.fir, cal.output_channels), positions,
                    proc.sweep.ir_length + cal.fir.shape[-1], azimuths)
    if not hidden:
        return plan
    assert cal.area is not None  # hidden heads come from the bank
    own = [filter_feeds(proc, np.concatenate([cal.area.fir[c], cal.fir[2:]]), cal.output_channels) for c in cells]
    return replace(plan, position_feeds=(None,) * (len(positions) - len(hidden)) + tuple(own))


def filter_feeds(proc: Procedure, fir: np.ndarray, output_channels: list[int]) -> np.ndarray:
    """Return feeds ``[K, n_outputs, T]`` of the filter inputs.

    Each input through its FIR row to the drivers' outputs.
    """
    n_out, _ = channel_counts(proc)
    k, _, taps = fir.shape
    feeds = np.zeros((k, n_out, taps))
    for j, channel in enumerate(output_channels):
        feeds[:, channel - 1] = fir[:, j]
    return feeds


def verified_metrics(proc: Procedure, meas: Measurement, cal: Calibration) -> Metrics:
    """Metrics of a verify measurement (inputs L, R, C as sources; or the drivers, gated and filtered)."""
    hidden, _ = hidden_of(meas)
    if hidden.size:  # judged on their own (calib.stages.area_verify.verified_hidden)
        meas = without_positions(meas, hidden)
    if meas.stage == "verify" and list(meas.sources) == list(cal.drivers):
        from calib.stages.fit import predicted_metrics

        return predicted_metrics(proc, meas, cal)
    if meas.stage != "verify" or list(meas.sources) != list(cal.inputs):
        raise FileFormatError(
            f"{meas.path}: sources: expected a verify measurement of inputs {cal.inputs} or drivers {cal.drivers}, "
            f"got {meas.stage} of {meas.sources}"
        )
    n_fft = next_pow2(meas.ir_length * 2)
    freqs = rfft_grid(n_fft, meas.sample_rate)
    ears = np.moveaxis(np.fft.rfft(meas.binaural_ir[:, :, :2], n_fft, axis=-1), -1, 0)  # [F, P, 2, 2]
    mic = horizontal_mic_index(proc)
    pattern = np.fft.rfft(meas.directivity_ir[:, mic, 2], n_fft, axis=-1).T  # [F, A]
    return product_metrics(
        proc, freqs, ears, [p.name for p in meas.positions], pattern, meas.azimuth_deg, cal.fir, meas.sample_rate
    )


def without_positions(meas: Measurement, index: np.ndarray) -> Measurement:
    """Return a copy of ``meas`` without the head positions ``index`` (IRs read into memory)."""
    n = len(meas.positions)
    keep = np.setdiff1d(np.arange(n), index)

    def per_step(group: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
        # The binaural group's per-step arrays (quality, reflection arrivals) follow the positions.
        return {g: {k: (np.asarray(v)[keep] if g == "binaural" and np.ndim(v) and len(v) == n else v)
                    for k, v in arrays.items()} for g, arrays in group.items()}

    return replace(meas, positions=[meas.positions[i] for i in keep],
                   binaural_ir=np.asarray(meas.binaural_ir)[keep],
                   binaural_done=np.asarray(meas.binaural_done)[keep],
                   quality=per_step(meas.quality), reflections=per_step(meas.reflections))


def characterize_of(calibration_path: Path, sha256: str, unit_folder: Path) -> Path:
    """Return the characterize measurement a calibration was fitted from (beside it, or in the unit's folder)."""
    for folder in dict.fromkeys((calibration_path.parent, unit_folder)):
        found = find_by_sha256(folder, "characterize-*.h5", sha256)
        if found is not None:
            return found
    raise FileFormatError(
        f"{calibration_path}: measurement_sha256: expected a characterize file with {sha256[:16]}... beside it "
        f"or in {unit_folder}, found none (the chain of custody needs it)"
    )


def verify_calibration(
    calibration_path: str | Path,
    rig_spec: str = "sim",
    out_dir: str | Path = "measurements",
    resume: bool = False,
    unit_serial: str | None = None,
    faults=None,
    progress: bool | None = None,
    station=None,
) -> Path:
    """Re-measure a unit through a calibration's filters (its own unit, or ``unit_serial`` to test cross-unit use).

    Returns
    -------
    Path
        The complete verify measurement; judge it with
        :func:`calib.stages.unit_report.build_unit_report`.
    """
    cal = read_calibration(calibration_path)
    check_serial(cal.serial, f"{calibration_path}: serial")
    proc = parse_procedure(cal.procedure_text, source=f"{calibration_path}:/procedure")
    if station is not None:
        from calib.procedure.station_file import apply_station

        proc = apply_station(proc, station)
    serial = check_serial(unit_serial, "--serial") if unit_serial is not None else cal.serial
    room = room_for_rig(proc, rig_spec.split(":", 1)[0], station)
    plan = plan_verify(proc, cal, verify_method(proc, room))
    characterize = characterize_of(Path(calibration_path), cal.measurement_sha256, Path(out_dir) / cal.serial)
    if resume:
        path = latest_incomplete(out_dir, serial, "verify")
        if path is None:
            raise CalibError(f"--resume: no incomplete verify measurement of {serial} in {Path(out_dir) / serial}")
    else:
        path = new_measurement_path(out_dir, serial, "verify")
    cals, extra = station_calibrations(proc, station)
    extra.update(hidden_attrs(*hidden_heads(proc, cal)))
    extra.update(custody_attrs(serial=serial, procedure_sha256=proc.sha256, calibration=Path(calibration_path),
                               calibration_serial=cal.serial, characterize=characterize, root=Path(out_dir)))
    with open_rig(rig_spec, proc, serial, faults, station=station) as rig:
        rig.audio.start_run("verify")  # simulated: not the characterize run's noise and latency again
        run_measurement(
            plan, rig, path, serial=serial, procedure_text=proc.source_text, procedure_sha256=proc.sha256,
            resume=resume, progress=progress, extra_attrs=extra, input_cals=cals,
            finalize=lambda p: annotate_reflections(p, proc, room),
        )
    return path
