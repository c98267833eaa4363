"""Measurement-engine fixtures: small variants of the Aurora 5 procedure on the virtual lab.

Truth: the simulator's own impulse responses (``lab.true_irs``, Pa per full
scale) times the input sensitivity ``input_fs_per_pa`` are the IRs a perfect
measurement returns (FS/FS). The IR error of a measurement is the energy of
the difference over the energy of the truth, both truncated to the
measurement's IR length, on the rfft grid restricted to the sweep band.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from calib.capture.plan import MeasurementPlan, plan_characterize
from calib.capture.runner import run_measurement
from calib.procedure import Procedure, parse_procedure
from calib.procedure.spec import SimFaults
from calib.rig.base import Rig
from calib.rig.virtual_lab import mic_receivers, open_sim_rig
from calib.sim.lab import EarReceiver
from calib.store.measurement import Measurement, read_measurement

ROOT = Path(__file__).resolve().parents[2]
AURORA = ROOT / "procedures" / "aurora5.toml"
SERIAL = "SN-CAP-1"


# ----------------------------------------------------------------------------- procedure text
def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def edit_toml(text: str, section: str, **values: object) -> str:
    """Set (or, for None, delete) keys of the table ``[section]`` in TOML ``text``."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"[{section}]")
    stop = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    body = lines[start + 1 : stop]
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        body = [line for line in body if not pattern.match(line)]
        if value is not None:
            body.insert(0, f"{key} = {_toml_value(value)}\n")
    return "".join(lines[: start + 1] + body + lines[stop:])


def keep_positions(text: str, names: tuple[str, ...]) -> str:
    """Drop every ``[[positions]]`` table whose name is not in ``names``."""
    blocks = re.split(r"(?m)^(?=\[)", text)
    def wanted(block: str) -> bool:
        return not block.startswith("[[positions]]") or re.search(r'name = "([^"]+)"', block).group(1) in names

    kept = [b for b in blocks if wanted(b)]
    return "".join(kept)


def aurora_text(
    schedule: str = "mesm",
    azimuths_deg: tuple[float, ...] = (0.0, 90.0),
    positions: tuple[str, ...] = ("centre", "left_1cm"),
    sweep: dict[str, object] | None = None,
    drivers: dict[str, object] | None = None,
    faults: dict[str, object] | None = None,
) -> str:
    """Aurora 5 with a small grid; ``drivers`` overrides every ``[sim.drivers.*]`` table alike.

    The sweep is pinned to 1 s at -6 dBFS (what these tests' numbers are stated for)
    unless ``sweep`` says otherwise.
    """
    text = AURORA.read_text()
    text = edit_toml(text, "turntable", step_deg=None, azimuths_deg=list(azimuths_deg))
    text = keep_positions(text, positions)
    text = edit_toml(text, "sweep", schedule=schedule, **{"duration_s": 1.0, "level_dbfs": -6.0, **(sweep or {})})
    if drivers:
        for name in re.findall(r"(?m)^\[sim\.drivers\.(\w+)\]", text):
            text = edit_toml(text, f"sim.drivers.{name}", **drivers)
    if faults:
        text += "\n[sim.faults]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in faults.items())
    return text


# ----------------------------------------------------------------------------- running
@dataclass
class Run:
    """One engine run on the virtual lab, with what the interface did on every call."""

    proc: Procedure
    plan: MeasurementPlan
    rig: Rig
    path: Path
    latencies: list[int] = field(default_factory=list)
    """Latency (samples) the simulator applied on each playrec call."""
    block_samples: list[int] = field(default_factory=list)
    """Length of each played block."""
    dropouts: list[tuple[int, int] | None] = field(default_factory=list)

    @property
    def m(self) -> Measurement:
        return read_measurement(self.path)


def spy_on(run: Run) -> None:
    """Record the simulator's latency, block length and dropout of every playrec call."""
    audio = run.rig.audio
    play = audio.playrec

    def playrec(signal: np.ndarray) -> np.ndarray:
        out = play(signal)
        run.latencies.append(int(audio.last_latency))
        run.block_samples.append(int(np.shape(signal)[-1]))
        run.dropouts.append(audio.last_dropout)
        return out

    audio.playrec = playrec  # type: ignore[method-assign]


def start_run(text: str, folder: Path, serial: str = SERIAL, faults: SimFaults | None = None) -> Run:
    """A procedure, its characterize plan and a spied sim rig; the file is ``folder/<serial>.h5``."""
    proc = parse_procedure(text)
    run = Run(proc, plan_characterize(proc), open_sim_rig(proc, serial, faults), folder / f"{serial}.h5")
    spy_on(run)
    return run


def measure(run: Run, **kwargs: object) -> Run:
    """Run the engine on ``run`` (keyword arguments go to :func:`run_measurement`)."""
    run_measurement(
        run.plan, run.rig, run.path, serial=run.rig.info["unit"], procedure_text=run.proc.source_text,
        procedure_sha256=run.proc.sha256, progress=False, **kwargs,
    )
    return run


def truth_fs(run: Run, group: str, index: int) -> np.ndarray:
    """The IRs a perfect measurement of step (group, index) returns: [R, S, N] in FS/FS."""
    lab = run.rig.audio.lab
    n = run.plan.ir_length
    gain = run.rig.audio.noise.input_fs_per_pa * 10.0 ** (run.rig.audio.faults.clip_gain_db / 20.0)
    if group == "directivity":
        irs = lab.true_irs(mic_receivers(run.proc), -float(run.plan.azimuths_deg[index]))
    else:
        head = run.plan.positions[index]
        irs = lab.true_irs([EarReceiver(head, 0), EarReceiver(head, 1)], 0.0)
    return irs[..., :n] * gain


def band_error_db(
    measured: np.ndarray, truth: np.ndarray, band_hz: tuple[float, float], sample_rate: int
) -> np.ndarray:
    """10 log10(sum |M - T|^2 / sum |T|^2) over the rfft bins in ``band_hz`` (last axis reduced)."""
    n = truth.shape[-1]
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    diff = np.fft.rfft(measured - truth, n=n, axis=-1)[..., band]
    ref = np.fft.rfft(truth, n=n, axis=-1)[..., band]
    return 10.0 * np.log10(np.sum(np.abs(diff) ** 2, axis=-1) / np.sum(np.abs(ref) ** 2, axis=-1))


def step_errors_db(run: Run) -> dict[str, np.ndarray]:
    """IR error of every step: ``{"directivity": [A, Rm, S], "binaural": [P, 2, S]}``."""
    m = run.m
    out = {}
    for group, irs in (("directivity", m.directivity_ir), ("binaural", m.binaural_ir)):
        out[group] = np.stack([
            band_error_db(irs[i], truth_fs(run, group, i), run.plan.band_hz, run.plan.sample_rate)
            for i in range(irs.shape[0])
        ])
    return out


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def cap() -> SimpleNamespace:
    """The helpers of this module, for the test files (conftest is not importable by name)."""
    return SimpleNamespace(
        SERIAL=SERIAL, aurora_text=aurora_text, edit_toml=edit_toml, start_run=start_run, measure=measure,
        spy_on=spy_on, truth_fs=truth_fs, band_error_db=band_error_db, step_errors_db=step_errors_db,
    )


@pytest.fixture
def new_run(tmp_path: Path) -> Callable[..., Run]:
    """``new_run(text, serial=..., faults=...)``: a fresh spied run writing into ``tmp_path``."""
    return lambda text, **kw: start_run(text, tmp_path, **kw)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Run]:
    """``baseline(schedule, **aurora_text kwargs)``: a measured run, cached for the session."""
    cache: dict[str, Run] = {}

    def get(schedule: str, **kw: object) -> Run:
        key = repr((schedule, sorted(kw.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp("baseline")
            cache[key] = measure(start_run(aurora_text(schedule, **kw), folder))
        return cache[key]

    return get
