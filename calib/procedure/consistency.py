"""Checks that span sections of a procedure (after per-field validation)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from calib.procedure.area import area_problems
from calib.procedure.spec import Procedure


def check_consistency(proc: Procedure) -> str | None:
    """Return the first cross-section problem as ``field.path: message``, or None."""
    for problem in _problems(proc):
        return problem
    return None


def _problems(proc: Procedure) -> Iterator[str]:
    drivers = proc.driver_names
    mics = proc.mic_names
    yield from _unique("drivers", drivers)
    yield from _unique("mics", mics)
    yield from _unique("positions", [p.name for p in proc.measured_positions()])
    ch = proc.channels
    yield from _same_names("channels.outputs", ch.outputs, drivers, "driver")
    yield from _same_names("channels.mics", ch.mics, mics, "microphone")

    outputs = [(f"channels.outputs.{n}", c) for n, c in ch.outputs.items()]
    inputs = [(f"channels.mics.{n}", c) for n, c in ch.mics.items()]
    inputs += [("channels.ears.left", ch.ears.left), ("channels.ears.right", ch.ears.right)]
    if ch.loopback is not None:
        outputs.append(("channels.loopback.output", ch.loopback.output))
        inputs.append(("channels.loopback.input", ch.loopback.input))
    elif not ch.allow_no_loopback:
        yield (
            "channels.loopback: expected a loopback {output = N, input = M} "
            "(or allow_no_loopback = true to measure without one)"
        )
    yield from _channels_once("output", outputs)
    yield from _channels_once("input", inputs)

    nyquist = proc.audio.sample_rate / 2
    bands: list[tuple[str, tuple[float, float]]] = [
        ("sweep.band_hz", proc.sweep.band_hz),
        ("fit.ctc_band_hz", proc.fit.ctc_band_hz),
        ("targets.cancellation.curve_hz_db", proc.targets.cancellation.band_hz()),
    ]
    if proc.fit.beam_band_hz is not None:
        bands.append(("fit.beam_band_hz", proc.fit.beam_band_hz))
    if proc.targets.beam is not None:
        bands.append(("targets.beam.band_hz", proc.targets.beam.band_hz))
        if proc.fit.beam_band_hz is None:
            yield "fit.beam_band_hz: required when [targets.beam] is given"
        yield from _beam_sectors(proc)

    for path, (lo, hi) in bands:
        if hi > nyquist:
            yield (
                f"{path}: expected frequencies up to Nyquist ({nyquist:g} Hz at "
                f"{proc.audio.sample_rate} Hz), got {hi:g}"
            )
        if lo >= hi and not path.endswith("curve_hz_db"):
            yield f"{path}: expected [low, high] with low < high, got [{lo:g}, {hi:g}]"

    if not proc.design_positions():
        yield "positions: expected at least one position with design = true"
    if not proc.verify_positions():
        yield "positions: expected at least one position with verify = true"
    for i, pos in enumerate(proc.positions):
        if pos.design and not pos.characterize:
            yield f"positions[{i}].characterize: expected true for a design position (the fit reads it), got false"
        distance = sum(v * v for v in pos.xyz_m) ** 0.5
        if distance < 0.3:
            yield f"positions[{i}].xyz_m: expected a head at least 0.3 m from the device, got {distance:.3f} m"

    for i, drv in enumerate(proc.drivers):  # the product sits inside the arc and in front of every head
        reach = sum(v * v for v in drv.position_m) ** 0.5
        if reach >= proc.arc.distance_m:
            yield (
                f"drivers[{i}].position_m: expected a driver closer to the turntable axis than the arc "
                f"({proc.arc.distance_m:g} m), got {reach:.3f} m"
            )

    yield from area_problems(proc)

    if proc.sim is not None:
        yield from _same_names("sim.drivers", proc.sim.drivers, drivers, "driver")
        faults = proc.sim.faults
        for field in ("dead_drivers", "reversed_drivers"):
            for i, name in enumerate(getattr(faults, field)):
                if name not in drivers:
                    yield f"sim.faults.{field}[{i}]: {_expected_one_of('driver', drivers, name)}"


def _expected_one_of(what: str, valid: Iterable[str], got: str) -> str:
    return f"expected a {what} name (one of {', '.join(valid)}), got {json.dumps(got)}"


def _beam_sectors(proc: Procedure) -> Iterator[str]:
    """Null sectors beyond the main lobe and sampled by the turntable grid on both sides."""
    beam = proc.targets.beam
    assert beam is not None
    sectors = [("targets.beam.null_sector_deg", beam.null_sector_deg)]
    sectors.append(("fit.beam_null_sector_deg", beam.design_sector_deg(proc.fit)))
    for path, sector in sectors:
        if sector is None:
            continue
        lo, hi = sector
        if lo <= beam.main_lobe_deg:
            yield (f"{path}: expected a sector beyond the main lobe (from > {beam.main_lobe_deg:g} deg), "
                   f"got [{lo:g}, {hi:g}]")


def beam_grid_problem(proc: Procedure) -> str | None:
    """Why the turntable grid cannot design or check the beam's sectors (None if it can).

    Not part of :func:`check_consistency`: a grid that only measures (a
    capture test, a quick look at one azimuth) is a valid procedure; ``calib
    check`` and ``calib fit`` ask this.
    """
    beam = proc.targets.beam
    if beam is None:
        return None
    grid = np.abs(proc.turntable.grid_deg())
    for path, sector in (("targets.beam.null_sector_deg", beam.null_sector_deg),
                         ("fit.beam_null_sector_deg", beam.design_sector_deg(proc.fit))):
        if sector is not None and not np.any((grid >= sector[0] - 1e-9) & (grid <= sector[1] + 1e-9)):
            return (f"{path}: no turntable azimuth within [{sector[0]:g}, {sector[1]:g}] deg; "
                    "add azimuths or widen the sector")
    return None


def _unique(path: str, names: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            yield f"{path}[{i}].name: expected a unique name, got {json.dumps(name)} twice"
        seen.add(name)


def _same_names(path: str, mapping: Mapping[str, object], valid: list[str], what: str) -> Iterator[str]:
    for name in mapping:
        if name not in valid:
            yield f"{path}.{name}: {_expected_one_of(what, valid, name)}"
    for name in valid:
        if name not in mapping:
            yield f"{path}: expected an entry for {what} {json.dumps(name)}, got none"


def _channels_once(kind: str, used: list[tuple[str, int]]) -> Iterator[str]:
    owner: dict[int, str] = {}
    for path, channel in used:
        if channel in owner:
            yield f"{path}: expected an unused {kind} channel, got {channel} (already {owner[channel]})"
        owner.setdefault(channel, path)
