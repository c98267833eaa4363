"""A measurement's impulse responses as WAV files and FRD text, with a manifest.

What REW, ARTA and VituixCAD open: one file per driver and receiver and
step —

- directivity: ``<driver>_<mic>_az<±azimuth>.<ext>`` (every arc microphone at
  every turntable azimuth);
- binaural: ``<driver>_<position>_<ear>-ear.<ext>`` (every dummy-head position).

``wav``: the IR as a mono 32-bit float WAV at the measurement's sample rate,
its time origin the output instant (the loopback's; calib removes the
interface latency), in the IR's unit (FS/FS, or Pa/FS with a calibrated
microphone: see the manifest). ``frd``: the IR's DFT over its whole length,
one line per bin above 0 Hz: frequency (Hz), magnitude (dB, the reference
of :func:`calib.export.levels.level_label`: SPL at 0 dBFS for Pa/FS) and
phase (degrees, wrapped to (-180, 180], same time origin), the text format
REW and VituixCAD import; comment lines start with ``*``.

The room gate (:mod:`calib.stages.gating`: every IR windowed before its
first reflection) is applied with ``gated=True``, and recorded in the
manifest either way, so a user can window the raw IRs alike.

``manifest.csv``: one row per file — file, group, driver, receiver
(microphone or ear), azimuth, position, sample rate, samples, unit, magnitude
reference, gate, SHA-256 — and the measurement's serial, stage and SHA-256.
Nothing is overwritten.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from calib.export.levels import ir_unit, level_db, level_label
from calib.render.export import refuse_existing, safe_name, write_new
from calib.stages.gating import Gate, measurement_gates
from calib.store.calibration import file_sha256
from calib.store.measurement import Measurement, read_measurement

FORMATS = ("wav", "frd")
MANIFEST = "manifest.csv"
FRD_FLOOR_DB = -300.0
"""Magnitude written for an exactly zero bin (text readers need a finite number)."""
EARS = ("left", "right")


@dataclass(frozen=True)
class ExportedIR:
    """One IR to export and what the manifest says about it."""

    name: str
    group: str
    driver: str
    receiver: str
    azimuth_deg: float | None
    position: str
    ir: np.ndarray
    gate: Gate
    step: int

    def window(self, sample_rate: int) -> np.ndarray:
        """Return the gate's window for this IR's step (ones where ungated)."""
        windows = self.gate.windows(self.ir.size, sample_rate)
        return windows[min(self.step, len(windows) - 1)]


def measured_irs(meas: Measurement, gates) -> Iterator[ExportedIR]:
    """Every measured IR of ``meas`` (steps not measured are left out), directivity first."""
    for a in np.flatnonzero(meas.directivity_done):
        az = float(meas.azimuth_deg[a])
        for r, mic in enumerate(meas.receivers):
            for s, driver in enumerate(meas.sources):
                name = f"{safe_name(driver)}_{safe_name(mic)}_az{az:+06.1f}"
                yield ExportedIR(name, "directivity", driver, mic, az, "", np.asarray(meas.directivity_ir[a, r, s]),
                                 gates.of("directivity", r), int(a))
    for p in np.flatnonzero(meas.binaural_done):
        position = meas.positions[p].name
        for e, ear in enumerate(EARS):
            for s, driver in enumerate(meas.sources):
                name = f"{safe_name(driver)}_{safe_name(position)}_{ear}-ear"
                yield ExportedIR(name, "binaural", driver, f"{ear} ear", None, position,
                                 np.asarray(meas.binaural_ir[p, e, s]), gates.of("binaural"), int(p))


def frd_text(ir: np.ndarray, sample_rate: int, unit: str, header: list[str]) -> str:
    """Return the FRD text of one IR: ``*`` comment lines, then ``frequency magnitude phase`` per bin above 0 Hz."""
    spectrum = np.fft.rfft(np.asarray(ir, dtype=float))[1:]
    freqs = np.fft.rfftfreq(ir.size, 1.0 / sample_rate)[1:]
    mag = np.maximum(level_db(np.abs(spectrum) ** 2, unit), FRD_FLOOR_DB)
    phase = np.degrees(np.angle(spectrum))
    phase = np.where(phase <= -180.0, phase + 360.0, phase)  # (-180, 180]
    out = io.StringIO()
    for line in header:
        out.write(f"* {line}\n")
    out.write(f"* Freq(Hz)  Magnitude(dB: {level_label(unit)})  Phase(deg)\n")
    np.savetxt(out, np.column_stack([freqs, mag, phase]), fmt="%.9g", delimiter=" ")
    return out.getvalue()


def wav_bytes(ir: np.ndarray, sample_rate: int) -> bytes:
    """One IR as a mono 32-bit float WAV."""
    out = io.BytesIO()
    soundfile.write(out, np.asarray(ir, dtype=np.float32), sample_rate, subtype="FLOAT", format="WAV")
    return out.getvalue()


def _gate_columns(gate: Gate, step: int, applied: bool) -> dict[str, object]:
    ends = np.atleast_1d(np.asarray(gate.end_s, dtype=float))
    end = float(ends[min(step, ends.size - 1)])
    if not gate.gated or not np.isfinite(end):
        return {"gate": "none", "gate_end_ms": "", "gate_fade_ms": "", "gate_lowest_hz": ""}
    return {"gate": f"{gate.basis}, {'applied' if applied else 'not applied'}", "gate_end_ms": f"{end * 1e3:.4f}",
            "gate_fade_ms": f"{gate.fade_s * 1e3:g}", "gate_lowest_hz": f"{gate.lowest_hz:.1f}"}


def export_measurement(path: str | Path, out_dir: str | Path, fmt: str, *, gated: bool = False) -> list[Path]:
    """Write every measured IR of the measurement file ``path`` to ``out_dir`` as ``fmt`` and a manifest.

    Parameters
    ----------
    path
        A calib measurement file (characterize or verify).
    out_dir
        Target folder (created); nothing in it is overwritten.
    fmt
        ``"wav"`` (32-bit float IRs) or ``"frd"`` (frequency, magnitude dB, phase deg).
    gated
        Apply the room gate of :func:`calib.stages.gating.measurement_gates` (the fit's).

    Returns
    -------
    list of Path
        The IR files (directivity, then binaural) and ``manifest.csv``.
    """
    from calib.procedure.load import parse_procedure

    if fmt not in FORMATS:
        raise ValueError(f"fmt: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    path, out_dir = Path(path), Path(out_dir)
    meas = read_measurement(path)
    proc = parse_procedure(meas.procedure_text, source=f"{path}:/procedure")
    gates = measurement_gates(meas, proc)
    irs = list(measured_irs(meas, gates))
    targets = [out_dir / f"{item.name}.{fmt}" for item in irs]
    manifest = out_dir / MANIFEST
    refuse_existing([*targets, manifest])
    out_dir.mkdir(parents=True, exist_ok=True)
    sha = file_sha256(path)
    rows = []
    for item, target in zip(irs, targets, strict=True):
        unit = ir_unit(meas, item.group)
        ir = item.ir * item.window(meas.sample_rate) if gated else item.ir
        where = f"azimuth {item.azimuth_deg:g} deg" if item.group == "directivity" else f"position {item.position}"
        if fmt == "wav":
            write_new(target, wav_bytes(ir, meas.sample_rate))
        else:
            header = [f"calib {meas.stage} measurement of unit {meas.serial}: {path.name} (sha256 {sha[:16]}...)",
                      f"driver {item.driver}, receiver {item.receiver}, {where}",
                      f"IR unit {unit}; time origin: the output instant; {'gated' if gated else 'not gated'}"]
            write_new(target, frd_text(ir, meas.sample_rate, unit, header).encode())
        rows.append({
            "file": target.name, "group": item.group, "driver": item.driver, "receiver": item.receiver,
            "azimuth_deg": "" if item.azimuth_deg is None else f"{item.azimuth_deg:g}", "position": item.position,
            "sample_rate": meas.sample_rate, "samples": item.ir.size, "unit": unit,
            "magnitude_reference": level_label(unit) if fmt == "frd" else "",
            **_gate_columns(item.gate, item.step, gated),
            "serial": meas.serial, "stage": meas.stage, "measurement": path.name, "measurement_sha256": sha,
            "sha256": file_sha256(target),
        })
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["file"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_new(manifest, text.getvalue().encode())
    return [*targets, manifest]
