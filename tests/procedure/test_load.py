"""Procedure validation: the shipped products load; bad files give one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from calib.cli.main import main
from calib.errors import ProcedureError
from calib.procedure import load_procedure, parse_procedure

ROOT = Path(__file__).resolve().parents[2]
AURORA = ROOT / "procedures" / "aurora5.toml"
DUO = ROOT / "procedures" / "duo2.toml"


def test_shipped_products_load():
    aurora = load_procedure(AURORA)
    assert aurora.driver_names == ["mid_left", "mid_right", "tweeter", "up_mid", "woofer"]
    grid = aurora.turntable.grid_deg()
    assert len(grid) == 72
    np.testing.assert_allclose(np.sort(grid), np.arange(-180, 180, 5.0), atol=1e-9)
    assert len(aurora.design_positions()) == 5 and len(aurora.holdout_positions()) == 4
    # The 5-driver CTC target: at least 15 dB from 500 Hz to 6 kHz.
    np.testing.assert_allclose(aurora.targets.cancellation.min_db(np.array([500, 2000, 6000])), 15.0)
    assert np.isnan(aurora.targets.cancellation.min_db(np.array([400.0, 7000.0]))).all()
    duo = load_procedure(DUO)
    y = [d.position_m[1] for d in duo.drivers]
    np.testing.assert_allclose(abs(y[0] - y[1]), 0.15, atol=1e-12)  # drivers 15 cm apart
    assert aurora.sha256 != duo.sha256 and len(aurora.sha256) == 64
    assert aurora.source_text == AURORA.read_text()


def _mutate(old: str, new: str, text: str | None = None) -> str:
    text = AURORA.read_text() if text is None else text
    assert old in text, old
    return text.replace(old, new, 1)


def _set_line(key: str, line: str) -> str:
    """Replace the first ``key = ...`` line (whatever its value) by ``line``."""
    text, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", line, AURORA.read_text(), count=1)
    assert n == 1, key
    return text


def _drop_section(name: str) -> str:
    text = AURORA.read_text()
    return re.sub(rf"^\[{re.escape(name)}\]\n(?:(?!\[).*\n)*", "", text, count=1, flags=re.M)


BAD = [
    ("missing section", _drop_section("sweep"), r"sweep: required field is missing"),
    ("wrong type", _set_line("duration_s", 'duration_s = "fast"'),
     r'sweep\.duration_s: expected a number, got "fast"'),
    ("negative duration", _set_line("duration_s", "duration_s = -1.0"),
     r"sweep\.duration_s: expected a number > 0(\.0)?, got -1\.0"),
    ("channel map names unknown driver", _mutate("woofer = 5 }", "wofer = 5 }"),
     r'channels\.outputs\.wofer: expected a driver name \(one of mid_left, .*woofer\), got "wofer"'),
    ("output channel used twice", _mutate("tweeter = 3,", "tweeter = 2,"),
     r"channels\.outputs\.tweeter: expected an unused output channel, got 2 \(already channels\.outputs\.mid_right\)"),
    ("input channel used twice", _mutate("ears = { left = 3, right = 4 }", "ears = { left = 3, right = 1 }"),
     r"channels\.ears\.right: expected an unused input channel, got 1 \(already channels\.mics\.arc_0\)"),
    ("empty azimuth grid", _mutate("step_deg = 5.0 ", "azimuths_deg = [] "),
     r"turntable: azimuths_deg: expected at least one azimuth, got an empty list"),
    ("unsupported sample rate", _mutate("sample_rate = 48000", "sample_rate = 47000"),
     r"audio\.sample_rate: expected one of 44100, 48000, 88200, 96000 Hz, got 47000"),
    ("position without coordinates", _mutate('name = "far_3cm"\nxyz_m = [1.03, 0.0, 0.0]', 'name = "far_3cm"'),
     r"positions\[4\]\.xyz_m: required field is missing"),
    ("target band beyond Nyquist", _mutate("[6000.0, 15.0]]", "[30000.0, 15.0]]"),
     r"targets\.cancellation\.curve_hz_db: expected frequencies up to Nyquist \(24000 Hz at 48000 Hz\), got 30000"),
    ("unknown key (typo)", _set_line("level_dbfs", "level_dbsf = -6.0"),
     r"sweep\.level_dbsf: unknown key; expected one of: band_hz, duration_s, level_dbfs, "),
    ("unknown schedule", _mutate('schedule = "mesm"', 'schedule = "parallel"'),
     r"sweep\.schedule: expected one of 'sequential' or 'mesm', got \"parallel\""),
    ("no loopback", _mutate("loopback = { output = 8, input = 8 }\n", ""),
     r"channels\.loopback: expected a loopback .* \(or allow_no_loopback = true"),
    ("sim section for unknown driver", _mutate("[sim.drivers.woofer]", "[sim.drivers.subwoofer]"),
     r'sim\.drivers\.subwoofer: expected a driver name'),
    ("geometry left in [sim.drivers]",
     _mutate("radius_m = 0.05\n", "radius_m = 0.05\nposition_m = [0.06, 0.0, -0.06]\n"),
     r"sim\.drivers\.woofer\.position_m: unknown key"),
    ("driver without a position", _mutate('position_m = [0.06, 0.0, -0.06]\n', ""),
     r"drivers\[4\]\.position_m: "),
    ("driver axis elevation out of range", _mutate("axis_deg = [0.0, 90.0]", "axis_deg = [0.0, 95.0]"),
     r"drivers\[3\]\.axis_deg\[1\]: "),
    ("driver outside the arc", _mutate("position_m = [0.06, 0.0, -0.06]", "position_m = [2.5, 0.0, -0.06]"),
     r"drivers\[4\]\.position_m: expected a driver closer to the turntable axis than the arc \(2 m\), got 2\.501 m"),
    ("descending target curve", _mutate("[[500.0, 15.0], [6000.0, 15.0]]", "[[6000.0, 15.0], [500.0, 15.0]]"),
     r"targets\.cancellation\.curve_hz_db: expected frequencies in ascending order, got \[6000\.0, 500\.0\]"),
    ("invalid TOML", _mutate("[audio]", "[audio"), r"invalid TOML"),
    ("duplicate position", _mutate('name = "far_3cm"', 'name = "near_3cm"'),
     r'positions\[4\]\.name: expected a unique name, got "near_3cm" twice'),
    ("head inside the device", _mutate("xyz_m = [1.0, 0.0, 0.0]", "xyz_m = [0.1, 0.0, 0.0]"),
     r"positions\[0\]\.xyz_m: expected a head at least 0\.3 m from the device, got 0\.100 m"),
    ("reversed null sector", _set_line("null_sector_deg", "null_sector_deg = [100.0, 80.0]"),
     r"targets\.beam\.null_sector_deg: expected \[from, to\] with from < to \(degrees\), got \[100\.0, 80\.0\]"),
    ("design sector in the main lobe", _set_line("beam_null_sector_deg", "beam_null_sector_deg = [40.0, 105.0]"),
     r"fit\.beam_null_sector_deg: expected a sector beyond the main lobe \(from > 45 deg\), got \[40, 105\]"),
]


def test_a_grid_without_the_beam_sector_is_refused_by_check_and_fit(tmp_path, capsys):
    """Valid for measuring (capture tests use such grids); ``calib check`` and the fit refuse it."""
    from calib.errors import FitError
    from calib.stages.fit import fit_measurement

    text = _set_line("beam_null_sector_deg", "beam_null_sector_deg = [86.0, 89.0]")
    proc = parse_procedure(text, source="grid.toml")
    path = tmp_path / "grid.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(
        r"grid\.toml: fit\.beam_null_sector_deg: no turntable azimuth within \[86, 89\] deg; add azimuths or widen "
        r"the sector$", err[0])

    class Meas:  # the fit asks the grid before it reads any IR
        stage, complete, path, procedure_text = "characterize", True, tmp_path / "m.h5", text

    with pytest.raises(FitError, match=r"m\.h5: fit\.beam_null_sector_deg: no turntable azimuth within \[86, 89\]"):
        fit_measurement(Meas())
    assert proc.targets.beam is not None


@pytest.mark.parametrize("text,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_procedure_raises_one_line(text, pattern):
    with pytest.raises(ProcedureError, match=r"^bad\.toml: " + pattern) as info:
        parse_procedure(text, source="bad.toml")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,pattern", [b[1:] for b in BAD[:11]], ids=[b[0] for b in BAD[:11]])
def test_cli_check_bad_procedure_exit_2_no_traceback(tmp_path, capsys, text, pattern):
    path = tmp_path / "x.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert re.match(r"^calib: error: " + re.escape(str(path)) + ": " + pattern, err)


def test_cli_check_good_procedure(capsys):
    assert main(["check", str(AURORA)]) == 0
    out = capsys.readouterr().out
    assert "Aurora 5 smart speaker" in out and "72 from -180 to 175 deg" in out
    assert "mid_left->out 1" in out and out.rstrip().endswith("OK")


def test_missing_file_error():
    with pytest.raises(ProcedureError, match=r"^nope\.toml: no such procedure file$"):
        load_procedure("nope.toml")


def test_procedures_stored_before_the_geometry_moved_to_drivers_still_parse():
    """Older measurement files store procedures with position_m/axis_deg under [sim.drivers.<name>]."""
    current = load_procedure(AURORA)
    geometry: dict[str, list[str]] = {}
    kept, name = [], None
    for line in AURORA.read_text().splitlines():
        if line.startswith("["):
            name = None
        if line.startswith("name = ") and kept and kept[-1] == "[[drivers]]":
            name = line.split('"')[1]
        if name is not None and line.startswith(("position_m", "axis_deg")):
            geometry.setdefault(name, []).append(line)
            continue
        kept.append(line)
    text = "\n".join(kept) + "\n"
    for driver, lines in geometry.items():
        text = text.replace(f"[sim.drivers.{driver}]\n", f"[sim.drivers.{driver}]\n" + "\n".join(lines) + "\n")
    assert len(geometry) == len(current.drivers) and "position_m" not in text.split("[sim]")[0]
    old = parse_procedure(text, source="old.h5:/procedure")
    assert [d.position_m for d in old.drivers] == [d.position_m for d in current.drivers]
    assert [d.axis_deg for d in old.drivers] == [d.axis_deg for d in current.drivers]
