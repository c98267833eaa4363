"""The virtual lab as a rig: the procedure's device, receivers, noise, latency, room and faults.

:func:`open_sim_rig` builds the simulated station of one unit (its drivers
varied by its serial); :func:`assemble_sim_rig` wraps any lab, virtual or
replayed (:mod:`calib.rig.replay`), in the procedure's channel map.
"""

from __future__ import annotations

import numpy as np

from calib.errors import ProcedureError
from calib.procedure.spec import Procedure, SimFaults
from calib.rig.base import Rig
from calib.signals.level import spl_to_pa
from calib.sim.lab import MicReceiver, Receiver
from calib.sim.params import DeviceModel, DriverModel, Faults, LatencyModel, NoiseModel, RoomModel, UnitVariation
from calib.sim.variation import serial_seed, unit_from_serial


def mic_receivers(proc: Procedure) -> list[MicReceiver]:
    """Arc microphones in the lab frame: at azimuth 0, at their elevation, ``arc.distance_m`` away."""
    d = proc.arc.distance_m
    out = []
    for mic in proc.mics:
        el = np.deg2rad(mic.elevation_deg)
        out.append(MicReceiver(mic.name, (d * np.cos(el), 0.0, d * np.sin(el))))
    return out


def nominal_device(proc: Procedure) -> DeviceModel:
    """Return the product as designed, in driver order: geometry of ``[[drivers]]``, physics of ``[sim.drivers]``."""
    sim = _sim_section(proc)
    drivers = []
    for geometry in proc.drivers:
        name = geometry.name
        d = sim.drivers[name]
        # dB SPL (rms) of a full-scale sine at 1 m -> peak pressure per unit full scale.
        sensitivity_pa = float(spl_to_pa(d.sensitivity_db_spl) * np.sqrt(2.0))
        drivers.append(
            DriverModel(
                name=name,
                position_m=geometry.position_m,
                axis=geometry.axis_vector(),
                radius_m=d.radius_m,
                sensitivity_pa=sensitivity_pa,
                fc_hz=d.fc_hz,
                q=d.q,
                lowpass_hz=d.lowpass_hz,
                rear_attenuation_db=d.rear_attenuation_db,
                h2=d.h2,
                h3=d.h3,
            )
        )
    return DeviceModel(tuple(drivers))


def unit_device(proc: Procedure, serial: str) -> DeviceModel:
    """Return the unit with serial ``serial``: the nominal device varied reproducibly."""
    v = _sim_section(proc).variation
    variation = UnitVariation(v.sensitivity_db, v.fc_pct, v.q_pct, v.position_mm)
    return unit_from_serial(nominal_device(proc), variation, serial)


def sim_models(proc: Procedure, faults: SimFaults | None) -> tuple[NoiseModel, LatencyModel, Faults, RoomModel | None]:
    """Noise, latency, fault and room models from ``[sim]``."""
    sim = _sim_section(proc)
    f = sim.faults.merged(faults) if faults is not None else sim.faults  # --sim-fault adds to [sim.faults]
    room = None
    if sim.room is not None:
        r = sim.room
        room = RoomModel(r.dimensions_m, r.device_position_m, r.reflection_coefficient, r.max_order)
    return (
        NoiseModel(sim.noise.background_spl_db, sim.noise.self_noise_dbfs, sim.noise.input_fs_per_pa),
        LatencyModel(sim.latency.min_samples, sim.latency.max_samples, sim.latency.clock_drift_ppm),
        Faults(
            dead_drivers=tuple(f.dead_drivers),
            reversed_drivers=tuple(f.reversed_drivers),
            dropout_calls=tuple(f.dropout_calls),
            clip_gain_db=f.clip_gain_db,
            stall_at_deg=f.stall_at_deg,
        ),
        room,
    )


def channel_maps(
    proc: Procedure, n_outputs: int, n_inputs: int
) -> tuple[list[str | None], list[Receiver | str | None]]:
    """Per output channel the driver name, per input channel the receiver (0-based lists)."""
    from calib.rig.sim import LOOPBACK, PLACED_EARS

    ch = proc.channels
    outputs: list[str | None] = [None] * n_outputs
    for name, channel in ch.outputs.items():
        outputs[channel - 1] = name
    inputs: list[Receiver | str | None] = [None] * n_inputs
    for mic in mic_receivers(proc):
        inputs[ch.mics[mic.name] - 1] = mic
    inputs[ch.ears.left - 1] = PLACED_EARS[0]
    inputs[ch.ears.right - 1] = PLACED_EARS[1]
    if ch.loopback is not None:
        inputs[ch.loopback.input - 1] = LOOPBACK
    return outputs, inputs


def open_sim_rig(proc: Procedure, serial: str, faults: SimFaults | None = None) -> Rig:
    """Return the virtual lab with unit ``serial`` of the procedure's product."""
    from calib.sim.lab import VirtualLab

    sim = _sim_section(proc)
    noise, latency, fault_model, room = sim_models(proc, faults)
    lab = VirtualLab(
        unit_device(proc, serial), proc.audio.sample_rate, n_ir=sim.true_ir_length,
        speed_of_sound=sim.speed_of_sound, room=room,
    )
    return assemble_sim_rig("sim", lab, proc, serial, noise, latency, fault_model)


def assemble_sim_rig(name: str, lab, proc: Procedure, serial: str, noise, latency, fault_model) -> Rig:
    """Return a simulated station around any ``lab`` (virtual or replayed) with the procedure's channel map.

    ``lab`` needs ``sample_rate``, ``n_ir``, ``driver_names``, ``device.drivers``
    and ``true_irs(receivers, turntable_deg)``; noise, latency and faults are
    the simulator's models, the random streams seeded by the serial.
    """
    from calib.procedure.layout import channel_counts
    from calib.rig.sim import LabState, SimAudioInterface, SimPositioner, SimTurntable

    n_out, n_in = channel_counts(proc)
    outputs, inputs = channel_maps(proc, n_out, n_in)
    ch = proc.channels
    loopback = (ch.loopback.output - 1, ch.loopback.input - 1) if ch.loopback else None
    state = LabState()
    audio = SimAudioInterface(
        lab, state, proc.audio.sample_rate, outputs, loopback, inputs, noise, latency, fault_model,
        seed=serial_seed(serial),
    )
    return Rig(
        name=name,
        audio=audio,
        turntable=SimTurntable(state, fault_model, proc.turntable.speed_deg_s, proc.turntable.settle_s),
        positioner=SimPositioner(state),
        simulated=True,
        info={"unit": serial, "product": proc.product.id},
        speed_of_sound_m_s=_sim_section(proc).speed_of_sound,
        air="simulated: [sim] speed_of_sound",
    )


def _sim_section(proc: Procedure):
    if proc.sim is None:
        raise ProcedureError(
            f"{proc.source_path or '<procedure>'}: sim: the virtual lab needs a [sim] section "
            "(driver physics, noise, latency); this procedure has none: measure it with --rig portaudio"
        )
    return proc.sim
