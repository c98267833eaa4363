"""Exports of a calibration for other convolution engines.

Every export ships the *effective* FIR matrix of
:func:`calib.render.in_memory.effective_fir`: the virtualizer is folded into the
FIR, so the filters take the upmixed inputs (L', R', C) straight to the
drivers and nothing else is needed to reproduce :func:`calib.render.in_memory.render`
except the upmix itself. The length is T + Tv - 1 taps (T for a one-tap
virtualizer). Filter ``<input>_to_<driver>`` takes input ``L``, ``R`` or ``C``
(meaning L', R', C) to a driver.

- :func:`export_raw`: one headerless little-endian float32 file per filter.
- :func:`export_wav`: one multichannel 32-bit float WAV, channels input-major:
  channel ``k * S + s`` is input k (L', R', C) to driver s (``cal.drivers`` order).
- :func:`export_camilladsp`: the raw files plus a CamillaDSP configuration
  (``camilladsp.yml``, CamillaDSP 4 schema by default, 3 on request).

Each writes a ``manifest.json`` (for WAV: ``<stem>.manifest.json``) with the
unit, the sample rate, the taps, a SHA-256 per exported file and the
provenance hashes. Nothing is overwritten: existing targets raise
FileExistsError before anything is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml
from scipy.io import wavfile

from calib import __version__
from calib.render.in_memory import effective_fir
from calib.store.calibration import Calibration, file_sha256

MANIFEST = "manifest.json"
UPMIX_NOTE = (
    "Why the input is calib's 3-channel upmix and not plain stereo: the upmix (calib.render.upmix) is not "
    "linear time-invariant. Per STFT bin (40 ms Hann frames, 75 % overlap) it takes the centre as "
    "C = g (M - a S), with M, S the mid and side and the gains a, g computed from 100 ms running averages of "
    "|L|^2, |R|^2 and Re(L R*), i.e. from the signal itself; its power floor is a mean over the whole input. "
    "CamillaDSP's mixers have constant gains and its filters (Conv, Biquad, Delay, ...) are linear "
    "time-invariant, so no CamillaDSP pipeline computes it, and a fixed matrix (C = (L + R) / 2) would put "
    "hard-panned sources into the beam. What to run instead: for files, `calib render CALIBRATION in.wav "
    "out.wav` renders plain stereo to the driver feeds (the same upmix and filters; play the result as is); "
    "for CamillaDSP, run calib's upmix (calib.render.upmix.upmix, or calib.render.stream.StreamingUpmix in "
    "blocks) on the stereo and feed its L', R', C as the 3 capture channels of this configuration."
)
"""Why :func:`export_camilladsp` takes (L', R', C) and what to run for plain stereo (YAML comment, --help, docs)."""
CAMILLA_CONFIG = "camilladsp.yml"
#: Name of the float32 little-endian sample format, per CamillaDSP major version.
CAMILLA_F32 = {3: "FLOAT32LE", 4: "F32_LE"}


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_`` (a file stem)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def filter_names(cal: Calibration) -> list[list[str]]:
    """``names[k][s]``: the file stem of the filter from input k to driver s."""
    names = [[f"{safe_name(k)}_to_{safe_name(d)}" for d in cal.drivers] for k in cal.inputs]
    flat = [n for row in names for n in row]
    if len(set(flat)) != len(flat):
        raise ValueError(f"drivers: names collide once made file-safe: {cal.drivers}")
    return names


def refuse_existing(paths: list[Path]) -> None:
    """FileExistsError for the first of ``paths`` that exists (checked before anything is written)."""
    for p in paths:
        if p.exists():
            raise FileExistsError(17, "exists already", str(p))


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (an existing one raises FileExistsError)."""
    with open(path, "xb") as fh:  # "x": never overwrite
        fh.write(data)


def _manifest(cal: Calibration, kind: str, files: list[Path], taps: int, extra: Mapping[str, object]) -> dict:
    return {
        "format": "calib-export",
        "version": 1,
        "kind": kind,
        "serial": cal.serial,
        "product_id": cal.product_id,
        "sample_rate": cal.sample_rate,
        "taps": taps,
        "sample_format": "float32 little-endian",
        "inputs": list(cal.inputs),
        "inputs_meaning": "upmixed L', R', C (virtualizer folded into the filters)",
        "drivers": list(cal.drivers),
        "output_channels": list(cal.output_channels),
        "modeling_delay_s": cal.modeling_delay_s,
        "files": {p.name: file_sha256(p) for p in files},
        "calibration_sha256": file_sha256(cal.path) if cal.path and Path(cal.path).exists() else None,
        "measurement_sha256": cal.measurement_sha256,
        "procedure_sha256": cal.procedure_sha256,
        "calibration_software": cal.software,
        "software": f"calib {__version__}",
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }


def _write_manifest(path: Path, manifest: dict) -> None:
    write_new(path, (json.dumps(manifest, indent=2) + "\n").encode())


def _write_raw_files(cal: Calibration, out_dir: Path, reserved: list[Path]) -> tuple[list[Path], int]:
    fir = effective_fir(cal).astype("<f4")
    names = filter_names(cal)
    paths = [out_dir / f"{n}.raw" for row in names for n in row]
    refuse_existing(paths + reserved)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, h in zip(paths, fir.reshape(-1, fir.shape[-1]), strict=True):
        write_new(path, h.tobytes())
    return paths, int(fir.shape[-1])


def export_raw(cal: Calibration, out_dir: str | Path) -> list[Path]:
    """Write one raw float32 LE file per filter (``<input>_to_<driver>.raw``) and a manifest.

    Returns
    -------
    list of Path
        The filter files (input-major, drivers in order), then ``manifest.json``.
    """
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    paths, taps = _write_raw_files(cal, out_dir, [manifest])
    _write_manifest(manifest, _manifest(cal, "raw", paths, taps, {}))
    return [*paths, manifest]


def export_wav(cal: Calibration, path: str | Path) -> list[Path]:
    """Write all filters to one 32-bit float WAV (channel k * S + s) and a manifest.

    Returns
    -------
    list of Path
        The WAV file and ``<stem>.manifest.json`` next to it.
    """
    path = Path(path)
    manifest = path.with_name(f"{path.stem}.manifest.json")
    refuse_existing([path, manifest])
    fir = effective_fir(cal).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        wavfile.write(fh, cal.sample_rate, fir.reshape(-1, fir.shape[-1]).T)
    order = [f"{k}_to_{d}" for k in cal.inputs for d in cal.drivers]
    _write_manifest(manifest, _manifest(cal, "wav", [path], int(fir.shape[-1]), {"wav_channels": order}))
    return [path, manifest]


def camilladsp_config(
    cal: Calibration, names: list[list[str]], *, version: int = 4, chunksize: int | None = None
) -> dict:
    """Return the CamillaDSP configuration (as a dict) for the raw filter files ``<name>.raw``.

    Capture is a 3-channel interleaved float32 stream on stdin holding the
    upmixed L', R', C (CamillaDSP cannot run calib's upmix: :data:`UPMIX_NOTE`); playback
    is the S driver feeds, in ``cal.drivers`` order, on stdout. The pipeline
    splits the 3 inputs to 3 * S channels (channel k * S + s), convolves each
    with its filter and sums per driver.
    """
    if version not in CAMILLA_F32:
        raise ValueError(f"version: expected one of {', '.join(map(str, CAMILLA_F32))}, got {version!r}")
    fmt = CAMILLA_F32[version]
    n_k, n_s = len(cal.inputs), len(cal.drivers)
    if chunksize is None:  # about 21 ms: 1024 at 44.1/48 kHz, 2048 at 96 kHz (CamillaDSP's advice)
        chunksize = int(1024 * 2 ** np.round(np.log2(cal.sample_rate / 48000.0)))
    flat = [(k, s, names[k][s]) for k in range(n_k) for s in range(n_s)]
    source = {"gain": 0.0, "inverted": False}
    return {
        "title": f"calib {cal.product_id} {cal.serial}",
        "description": (
            f"Unit {cal.serial}: capture = 3 channels L', R', C (output of calib's upmix), "
            f"playback = {n_s} driver feeds in order {', '.join(cal.drivers)} "
            f"(interface outputs {', '.join(map(str, cal.output_channels))})."
        ),
        "devices": {
            "samplerate": cal.sample_rate,
            "chunksize": chunksize,
            "capture": {"type": "Stdin", "channels": n_k, "format": fmt},
            "playback": {"type": "Stdout", "channels": n_s, "format": fmt},
        },
        "filters": {
            name: {"type": "Conv", "parameters": {"type": "Raw", "filename": f"{name}.raw", "format": fmt}}
            for _, _, name in flat
        },
        "mixers": {
            "split": {
                "channels": {"in": n_k, "out": n_k * n_s},
                "mapping": [
                    {"dest": k * n_s + s, "sources": [{"channel": k, **source}]} for k, s, _ in flat
                ],
            },
            "sum": {
                "channels": {"in": n_k * n_s, "out": n_s},
                "mapping": [
                    {"dest": s, "sources": [{"channel": k * n_s + s, **source} for k in range(n_k)]}
                    for s in range(n_s)
                ],
            },
        },
        "pipeline": [
            {"type": "Mixer", "name": "split"},
            *({"type": "Filter", "channels": [k * n_s + s], "names": [name]} for k, s, name in flat),
            {"type": "Mixer", "name": "sum"},
        ],
    }


def export_camilladsp(
    cal: Calibration, out_dir: str | Path, *, version: int = 4, chunksize: int | None = None
) -> list[Path]:
    """Write the raw filters, ``camilladsp.yml`` and ``manifest.json`` to ``out_dir``.

    Parameters
    ----------
    cal
        The calibration.
    out_dir
        Target folder (created). Filter paths in the YAML are relative to it,
        which CamillaDSP resolves against the config file's folder.
    version
        CamillaDSP major version: 4 (sample format ``F32_LE``) or 3 (``FLOAT32LE``).
    chunksize
        CamillaDSP chunk size; default about 21 ms.

    Returns
    -------
    list of Path
        The filter files, the YAML config and the manifest.
    """
    out_dir = Path(out_dir)
    config_path, manifest = out_dir / CAMILLA_CONFIG, out_dir / MANIFEST
    config = camilladsp_config(cal, filter_names(cal), version=version, chunksize=chunksize)
    paths, taps = _write_raw_files(cal, out_dir, [config_path, manifest])
    import textwrap

    header = "# CamillaDSP configuration written by calib. Input: 3 channels L', R', C from calib's\n" \
             "# upmix; output: the driver feeds.\n#\n"
    header += "".join(f"# {line}\n" for line in textwrap.wrap(UPMIX_NOTE, 100))
    write_new(config_path, (header + yaml.safe_dump(config, sort_keys=False)).encode())
    extra = {"camilladsp_version": version}
    _write_manifest(manifest, _manifest(cal, "camilladsp", [*paths, config_path], taps, extra))
    return [*paths, config_path, manifest]
