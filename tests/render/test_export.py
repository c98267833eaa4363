"""Exports: files read back equal the filters; the CamillaDSP pipeline computes the render."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import yaml
from scipy.io import wavfile

from calib import __version__
from calib.render.export import export_camilladsp, export_raw, export_wav
from calib.render.in_memory import effective_fir, render_inputs
from calib.store.calibration import write_calibration


def _check_manifest(path, cal, taps: int, files: list) -> dict:
    manifest = json.loads(path.read_text())
    assert manifest["serial"] == cal.serial and manifest["sample_rate"] == cal.sample_rate
    assert manifest["taps"] == taps
    assert manifest["measurement_sha256"] == cal.measurement_sha256
    assert manifest["procedure_sha256"] == cal.procedure_sha256
    assert manifest["software"] == f"calib {__version__}"
    assert sorted(manifest["files"]) == sorted(p.name for p in files)
    for p in files:
        assert manifest["files"][p.name] == hashlib.sha256(p.read_bytes()).hexdigest()
    return manifest


def test_raw_files_equal_the_fir(cal, tmp_path):
    written = export_raw(cal, tmp_path / "raw")
    *filters, manifest = written
    assert [p.name for p in filters[:3]] == ["L_to_drv0.raw", "L_to_drv1.raw", "L_to_drv2.raw"]
    assert len(filters) == 9 and manifest.name == "manifest.json"
    for (k, s), p in zip(np.ndindex(3, 3), filters, strict=True):
        np.testing.assert_array_equal(np.fromfile(p, dtype="<f4"), cal.fir[k, s])  # unit virtualizer
    m = _check_manifest(manifest, cal, 64, filters)
    assert m["calibration_sha256"] is None and m["output_channels"] == [1, 2, 3]


def test_raw_fold_virtualizer_and_hash_calibration_file(make_cal, tmp_path):
    cal = make_cal(n_drivers=2, virtualizer_taps=8, delay_samples=3)
    path = write_calibration(tmp_path / "cal.h5", cal)
    *filters, manifest = export_raw(cal, tmp_path / "raw")
    eff = effective_fir(cal)
    assert eff.shape == (3, 2, 64 + 8 - 1)
    for (k, s), p in zip(np.ndindex(3, 2), filters, strict=True):
        np.testing.assert_allclose(np.fromfile(p, dtype="<f4"), eff[k, s], rtol=1e-6, atol=1e-7)
    m = _check_manifest(manifest, cal, 71, filters)
    assert m["calibration_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_wav_reads_back_input_major(cal, tmp_path):
    wav, manifest = export_wav(cal, tmp_path / "out" / "unit.wav")
    assert manifest.name == "unit.manifest.json"
    rate, data = wavfile.read(wav)
    assert rate == 48000 and data.dtype == np.float32 and data.shape == (64, 9)
    for k, s in np.ndindex(3, 3):
        np.testing.assert_array_equal(data[:, k * 3 + s], cal.fir[k, s])
    m = _check_manifest(manifest, cal, 64, [wav])
    assert m["wav_channels"][:4] == ["L_to_drv0", "L_to_drv1", "L_to_drv2", "R_to_drv0"]


def _run_camilla_pipeline(config: dict, folder, x: np.ndarray) -> np.ndarray:
    """Interpret the mixers / Conv filters of a CamillaDSP config on x [channels, N]."""
    y = x
    for step in config["pipeline"]:
        if step["type"] == "Mixer":
            mixer = config["mixers"][step["name"]]
            assert mixer["channels"]["in"] == y.shape[0]
            out = np.zeros((mixer["channels"]["out"], y.shape[1]))
            for m in mixer["mapping"]:
                for src in m["sources"]:
                    sign = -1.0 if src["inverted"] else 1.0
                    out[m["dest"]] += sign * 10 ** (src["gain"] / 20) * y[src["channel"]]
            y = out
        else:
            for name in step["names"]:
                params = config["filters"][name]["parameters"]
                h = np.fromfile(folder / params["filename"], dtype="<f4")
                for ch in step["channels"]:
                    y[ch] = np.convolve(y[ch], h)[: y.shape[1]]
    return y


@pytest.mark.parametrize(("version", "fmt"), [(4, "F32_LE"), (3, "FLOAT32LE")])
def test_camilladsp_config_references_every_file_and_renders(make_cal, tmp_path, version, fmt):
    cal = make_cal(n_drivers=2, virtualizer_taps=4, delay_samples=1)
    written = export_camilladsp(cal, tmp_path / "cdsp", version=version)
    *filters, config_path, manifest = written
    config = yaml.safe_load(config_path.read_text())
    dev = config["devices"]
    assert dev["samplerate"] == 48000 and dev["chunksize"] == 1024
    assert dev["capture"] == {"type": "Stdin", "channels": 3, "format": fmt}
    assert dev["playback"] == {"type": "Stdout", "channels": 2, "format": fmt}
    referenced = sorted(f["parameters"]["filename"] for f in config["filters"].values())
    assert referenced == sorted(p.name for p in filters)
    assert all(f["type"] == "Conv" and f["parameters"]["format"] == fmt for f in config["filters"].values())
    used = [n for step in config["pipeline"] if step["type"] == "Filter" for n in step["names"]]
    assert sorted(used) == sorted(config["filters"])
    _check_manifest(manifest, cal, 64 + 4 - 1, [*filters, config_path])
    # The pipeline computes the render from (L', R', C) (float32 filters: rtol 1e-5).
    x = np.random.default_rng(4).standard_normal((3, 3000))
    x_padded = np.pad(x, ((0, 0), (0, 66)))
    y = _run_camilla_pipeline(config, tmp_path / "cdsp", x_padded)
    ref = render_inputs(cal, x, fir=effective_fir(cal))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_exports_never_overwrite(cal, tmp_path):
    written = export_raw(cal, tmp_path / "raw")
    before = {p: p.read_bytes() for p in written}
    with pytest.raises(FileExistsError):
        export_raw(cal, tmp_path / "raw")
    with pytest.raises(FileExistsError):
        export_camilladsp(cal, tmp_path / "raw")  # its raw files are there already
    assert {p: p.read_bytes() for p in written} == before
    assert not (tmp_path / "raw" / "camilladsp.yml").exists()
    wav, _ = export_wav(cal, tmp_path / "u.wav")
    with pytest.raises(FileExistsError):
        export_wav(cal, wav)


def test_camilladsp_bad_version(cal, tmp_path):
    with pytest.raises(ValueError, match=r"version: expected one of 3, 4, got 2"):
        export_camilladsp(cal, tmp_path, version=2)
