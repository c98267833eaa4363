"""The replay rig: a re-measurement through a file's IRs reproduces them; clear errors on mismatches."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal

from calib.capture.plan import plan_characterize
from calib.capture.runner import run_measurement
from calib.errors import FileFormatError, ProcedureError, RigError
from calib.geometry import HeadPosition
from calib.procedure import parse_procedure
from calib.procedure.layout import head_position
from calib.rig.factory import open_rig
from calib.rig.replay import ReplayLab, describe_grid, load_replay_measurement
from calib.sim.lab import EarReceiver, MicReceiver
from calib.store.measurement import StepQuality, create_measurement, mark_complete, read_measurement, write_step

ROOT = Path(__file__).resolve().parents[2]
SERIAL = "SN-REPLAY-1"
ERROR_MAX_DB = -40.0  # normalized in-band error of a replayed IR vs the file's
BAND_SOS = np.concatenate([scipy.signal.butter(4, 150.0, "highpass", fs=48000, output="sos"),
                           scipy.signal.butter(4, 16000.0, "lowpass", fs=48000, output="sos")])


def variant(**subs: str) -> str:
    """aurora5 with azimuths 0, 90, -90 and two head positions (one holdout); then ``subs`` replaced.

    The background noise is 15 dB SPL instead of 25: replay fidelity is bounded
    by the noise of both measurements (at 25 dB SPL the weakest rear driver's
    SNR is about 41 dB, so its error would sit at about -41 dB, too close to
    the -40 dB criterion to say anything about the replay itself).
    """
    text = (ROOT / "procedures" / "aurora5.toml").read_text()
    text = re.sub(r"step_deg = 5\.0[^\n]*", "azimuths_deg = [0.0, 90.0, -90.0]", text)
    start, end = text.index("[[positions]]"), text.index("[sweep]")
    positions = (
        '[[positions]]\nname = "centre"\nxyz_m = [1.0, 0.0, 0.0]\n\n'
        '[[positions]]\nname = "holdout_far"\nxyz_m = [1.08, 0.0, 0.0]\ndesign = false\n\n'
    )
    text = text[:start] + positions + text[end:]
    text = text.replace("background_spl_db = 25.0", "background_spl_db = 15.0")
    for old, new in subs.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def measure(text: str, rig_spec: str, path: Path, serial: str = SERIAL) -> Path:
    proc = parse_procedure(text, source="variant.toml")
    with open_rig(rig_spec, proc, serial) as rig:
        return run_measurement(plan_characterize(proc), rig, path, serial=serial, procedure_text=text,
                               procedure_sha256=proc.sha256, progress=False)


def in_band_error_db(reference: np.ndarray, test: np.ndarray, band_hz: tuple[float, float]) -> np.ndarray:
    """10 log10(sum |T - R|^2 / sum |R|^2) over the rfft bins inside ``band_hz`` (last axis: samples)."""
    freqs = np.fft.rfftfreq(reference.shape[-1], 1.0 / 48000)
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    ref = np.fft.rfft(reference)[..., band]
    tst = np.fft.rfft(test, n=reference.shape[-1])[..., band]
    return 10.0 * np.log10(np.sum(np.abs(tst - ref) ** 2, -1) / np.sum(np.abs(ref) ** 2, -1))


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete characterize measurement of the variant on the virtual lab."""
    return measure(variant(), "sim", tmp_path_factory.mktemp("sim") / "characterize.h5")


def _quality(n_recv: int, n_src: int) -> StepQuality:
    return StepQuality(np.full((n_recv, n_src), 60.0), np.zeros((n_recv, n_src)), np.full(n_recv, -20.0),
                       np.zeros(n_src, int))


def hand_made_file(
    path: Path,
    text: str,
    *,
    complete: bool = True,
    stage: str = "characterize",
    extra_attrs: dict | None = None,
    n: int = 4096,
    seed: int = 3,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A measurement file holding random decaying FIRs (not from this code's physics).

    Returns (path, directivity IRs [A, Rm, S, N], binaural IRs [P, 2, S, N]).
    """
    proc = parse_procedure(text)
    az = proc.turntable.grid_deg()
    positions = [head_position(p) for p in proc.positions]
    n_s, n_r = len(proc.drivers), len(proc.mics)
    path = create_measurement(
        path, serial="SN-PLANT", stage=stage, sample_rate=proc.audio.sample_rate, rig="elsewhere",
        simulated=False, procedure_text=text, procedure_sha256=proc.sha256, sources=proc.driver_names,
        azimuth_deg=az, receivers=proc.mic_names, positions=positions, ir_length=n, extra_attrs=extra_attrs,
    )
    rng = np.random.default_rng(seed)

    def firs(shape: tuple[int, ...]) -> np.ndarray:
        # A delay of N/40..N/10 samples (propagation), then white noise decaying by 60 dB in 1500 samples,
        # band-limited like a driver (4th-order high-pass 150 Hz, low-pass 16 kHz): a measured IR holds
        # nothing outside the sweep band, and the deconvolution would remove it (the long ringing of that
        # removal, cut at N samples, leaks into the band: -16 dB at 50..200 Hz for a white plant).
        t = np.arange(n)
        delay = rng.integers(n // 40, n // 10 + 1, shape)[..., None]
        envelope = np.where(t >= delay, 10.0 ** (-3.0 * (t - delay) / 1500.0), 0.0)
        fir = scipy.signal.sosfilt(BAND_SOS, envelope * rng.standard_normal((*shape, n)), axis=-1)
        assert np.all(np.abs(fir).max(axis=-1) > 1e-4)  # no silent plant
        return (0.02 * fir).astype(np.float32)

    dir_ir = firs((len(az), n_r, n_s))
    bin_ir = firs((len(positions), 2, n_s))
    for i in range(len(az)):
        write_step(path, "directivity", i, dir_ir[i], _quality(n_r, n_s))
    if complete:  # else the binaural steps stay missing, as after an interrupted run
        for i in range(len(positions)):
            write_step(path, "binaural", i, bin_ir[i], _quality(2, n_s))
        mark_complete(path)
    return path, dir_ir.astype(float), bin_ir.astype(float)


# ---------------------------------------------------------------- re-measurement


def test_replay_reproduces_the_sim_measurement(sim_file: Path, tmp_path: Path) -> None:
    replayed = measure(variant(), f"replay:{sim_file}", tmp_path / "replayed.h5")
    a, b = read_measurement(sim_file), read_measurement(replayed)
    assert b.rig == f"replay:{sim_file}" and b.simulated and b.complete
    band = parse_procedure(variant()).sweep.band_hz
    err_dir = in_band_error_db(a.directivity_ir, b.directivity_ir, band)
    err_bin = in_band_error_db(a.binaural_ir, b.binaural_ir, band)
    assert err_dir.shape == (3, 2, 5) and err_bin.shape == (2, 2, 5)  # every azimuth/mic/ear x driver
    assert err_dir.max() < ERROR_MAX_DB, err_dir.round(1)
    assert err_bin.max() < ERROR_MAX_DB, err_bin.round(1)
    # Linear drivers: the replayed THD is below the simulated unit's (which has h2, h3 > 0).
    assert np.nanmax(b.quality["directivity"]["thd_percent"]) < np.nanmax(a.quality["directivity"]["thd_percent"])


def test_replay_recovers_a_hand_made_plant(tmp_path: Path) -> None:
    text = variant()
    path, dir_ir, bin_ir = hand_made_file(tmp_path / "plant.h5", text)
    replayed = read_measurement(measure(text, f"replay:{path}", tmp_path / "replayed.h5", serial="SN-PLANT"))
    band = parse_procedure(text).sweep.band_hz
    err_dir = in_band_error_db(dir_ir, replayed.directivity_ir, band)
    err_bin = in_band_error_db(bin_ir, replayed.binaural_ir, band)
    assert err_dir.max() < ERROR_MAX_DB, err_dir.round(1)
    assert err_bin.max() < ERROR_MAX_DB, err_bin.round(1)


def test_rig_identity_and_linear_drivers(sim_file: Path) -> None:
    proc = parse_procedure(variant())
    with open_rig(f"replay:{sim_file}", proc, "SN-OTHER") as rig:
        assert rig.name == f"replay:{sim_file}" and rig.simulated
        assert rig.info["replay_serial"] == SERIAL and rig.info["unit"] == "SN-OTHER"
        lab = rig.audio.lab
        assert lab.driver_names == tuple(proc.driver_names) and lab.n_ir == proc.sweep.ir_length
        assert all(d.h2 == 0.0 and d.h3 == 0.0 for d in lab.device.drivers)
        assert rig.audio.noise.input_fs_per_pa == 0.05 and rig.audio.latency.max_samples == 2048
        # The replay records the air of the replayed file (the sim run's [sim] speed_of_sound).
        assert rig.speed_of_sound_m_s == 343.0
        assert rig.air == f"replayed from {sim_file.name}: simulated: [sim] speed_of_sound"


# ---------------------------------------------------------------- the lab itself


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    return hand_made_file(tmp_path_factory.mktemp("plant") / "plant.h5", variant(), n=256)


def test_lab_serves_file_irs_by_angle_and_name(plant: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, dir_ir, bin_ir = plant
    lab = ReplayLab(load_replay_measurement(path), input_fs_per_pa=0.05)
    arc_30 = MicReceiver("arc_30", (1.0, 0.0, 1.0))  # lab azimuth 0
    arc_0_left = MicReceiver("arc_0", (0.0, 2.0, 0.0))  # lab azimuth +90
    # File azimuths [0, 90, -90]: turning the device by -90 puts the mic at +90; 270 == -90.
    assert_array_equal(lab.true_irs([arc_30], -90.0)[0], dir_ir[1, 1] / 0.05)
    assert_array_equal(lab.true_irs([arc_30], 270.0)[0], dir_ir[1, 1] / 0.05)
    assert_array_equal(lab.true_irs([arc_30], 90.0)[0], dir_ir[2, 1] / 0.05)
    assert_array_equal(lab.true_irs([arc_0_left], 0.0)[0], dir_ir[1, 0] / 0.05)  # phi - alpha = 90
    assert_array_equal(lab.true_irs([arc_0_left], 180.0)[0], dir_ir[2, 0] / 0.05)  # 90 - 180 = -90
    head = HeadPosition("holdout_far", (1.08 + 0.0009, 0.0, 0.0), 180.05)  # inside 1 mm / 0.1 deg
    irs = lab.true_irs([EarReceiver(head, 1), EarReceiver(head, 0)], 360.0)
    assert irs.shape == (2, 5, 256)
    assert_array_equal(irs, bin_ir[1, ::-1] / 0.05)


def test_lab_units_pascal_files_served_as_is(tmp_path: Path) -> None:
    path, dir_ir, _ = hand_made_file(tmp_path / "pa.h5", variant(), n=64, extra_attrs={"ir_unit_directivity": "Pa/FS"})
    lab = ReplayLab(load_replay_measurement(path), input_fs_per_pa=0.05)
    assert_allclose(lab.true_irs([MicReceiver("arc_0", (2.0, 0.0, 0.0))], 0.0)[0], dir_ir[0, 0], rtol=0, atol=0)
    ear = EarReceiver(HeadPosition("centre", (1.0, 0.0, 0.0), 180.0), 0)
    assert_allclose(lab.true_irs([ear])[0] * 0.05, load_replay_measurement(path).binaural_ir[0, 0], rtol=1e-15)
    bad, _, _ = hand_made_file(tmp_path / "bad.h5", variant(), n=64, extra_attrs={"ir_unit": "V/FS"})
    with pytest.raises(FileFormatError, match=r"ir_unit_directivity: expected one of FS/FS, Pa/FS, got 'V/FS'"):
        ReplayLab(load_replay_measurement(bad), input_fs_per_pa=0.05)


@pytest.mark.parametrize(
    ("receiver", "turntable_deg", "match"),
    [
        (MicReceiver("arc_0", (2.0, 0.0, 0.0)), -7.5, r"has no azimuth 7\.5 deg \(grid 0, 90, -90\)"),
        (MicReceiver("arc_0", (2.0, 0.0, 0.0)), 1e-4, r"has no azimuth -0\.0001 deg"),
        (MicReceiver("arc_45", (2.0, 0.0, 0.0)), 0.0, r"has no microphone 'arc_45' \(microphones: arc_0, arc_30\)"),
        (EarReceiver(HeadPosition("centre", (1.0, 0.0, 0.0), 180.0), 0), 30.0,
         r"binaural IRs at turntable 0 deg only, got 30 deg"),
        (EarReceiver(HeadPosition("centre", (1.0, 0.0012, 0.0), 180.0), 0), 0.0,
         r"position 'centre' at \[1, 0, 0\] m yaw 180 deg, asked for \[1, 0\.0012, 0\] m yaw 180 deg"),
        (EarReceiver(HeadPosition("centre", (1.0, 0.0, 0.0), 180.2), 0), 0.0, r"asked for .* yaw 180\.2 deg"),
        (EarReceiver(HeadPosition("far", (1.0, 0.0, 0.0), 180.0), 0), 0.0,
         r"has no position 'far' \(positions: centre, holdout_far\)"),
        (EarReceiver(None, 1), 0.0, r"ear receiver 'head/right' has no head position"),
    ],
)
def test_lab_rejects_what_the_file_does_not_hold(plant, receiver, turntable_deg: float, match: str) -> None:
    lab = ReplayLab(load_replay_measurement(plant[0]), input_fs_per_pa=0.05)
    with pytest.raises(RigError, match=match):
        lab.true_irs([receiver], turntable_deg)


def test_describe_grid() -> None:
    full = (np.arange(0.0, 360.0, 5.0) + 180.0) % 360.0 - 180.0  # as the procedure stores it
    assert describe_grid(full) == "0..355 step 5"
    assert describe_grid(np.array([-30.0, 0.0, 30.0])) == "-30, 0, 30"
    assert describe_grid(np.array([0.0, 90.0, -90.0, 180.0])) == "0..270 step 90"


# ---------------------------------------------------------------- opening: grid checks and file checks


@pytest.mark.parametrize(
    ("subs", "match"),
    [
        ({"azimuths_deg = [0.0, 90.0, -90.0]": "azimuths_deg = [0.0, 7.5]"},
         r"has no azimuth 7\.5 deg \(grid 0, 90, -90\)$"),
        ({'name = "holdout_far"': 'name = "holdout_near"'},
         r"has no position 'holdout_near' \(positions: centre, holdout_far\)$"),
        ({"xyz_m = [1.08, 0.0, 0.0]": "xyz_m = [1.085, 0.0, 0.0]"},
         r"has position 'holdout_far' at \[1\.08, 0, 0\] m yaw 180 deg, asked for \[1\.085, 0, 0\]"),
        ({"woofer": "sub"},
         r"drivers \[mid_left, mid_right, tweeter, up_mid, woofer\] differ from the procedure's "
         r"\[mid_left, mid_right, tweeter, up_mid, sub\]$"),
        ({"arc_30": "arc_45"}, r"has no microphone 'arc_45' \(microphones: arc_0, arc_30\)$"),
        ({"sample_rate = 48000": "sample_rate = 44100"}, r"has sample_rate 48000 Hz, the procedure's is 44100 Hz$"),
    ],
)
def test_grid_mismatch_is_one_clear_error(plant, subs: dict[str, str], match: str) -> None:
    proc = parse_procedure(variant(**subs))
    with pytest.raises(RigError, match=f"^replay file {re.escape(str(plant[0]))} {match}"):
        open_rig(f"replay:{plant[0]}", proc, SERIAL)


def test_a_subset_of_the_file_is_replayable(plant) -> None:
    """Fewer azimuths (90 only; procedures no longer wrap -270), one mic and one position: all in the file."""
    text = variant(**{"azimuths_deg = [0.0, 90.0, -90.0]": "azimuths_deg = [90.0]"})
    start, end = text.index('[[positions]]\nname = "holdout_far"'), text.index("[sweep]")
    proc = parse_procedure(text[:start] + text[end:])
    with open_rig(f"replay:{plant[0]}", proc, SERIAL) as rig:
        assert rig.audio.lab.azimuth_index(proc.turntable.grid_deg()[0]) == 1
        assert (rig.speed_of_sound_m_s, rig.air) == (343.0, "replayed from plant.h5: not recorded (calib default)")


def test_replay_takes_the_speed_of_sound_the_file_recorded(plant, tmp_path: Path) -> None:
    path = tmp_path / "warm.h5"
    shutil.copy(plant[0], path)
    with h5py.File(path, "r+") as f:
        f.attrs["speed_of_sound_m_s"] = 346.1
        f.attrs["speed_of_sound_source"] = "station [air]: 25 degC"
    with open_rig(f"replay:{path}", parse_procedure(variant()), SERIAL) as rig:
        assert (rig.speed_of_sound_m_s, rig.air) == (346.1, "replayed from warm.h5: station [air]: 25 degC")


def _not_hdf5(tmp: Path) -> Path:
    (tmp / "notes.h5").write_text("not a measurement")
    return tmp / "notes.h5"


def _calibration_like(tmp: Path) -> Path:
    with h5py.File(tmp / "cal.h5", "w") as f:
        f.attrs.update({"format": "calib-calibration", "version": 1})
    return tmp / "cal.h5"


def _incomplete(tmp: Path) -> Path:
    return hand_made_file(tmp / "part.h5", variant(), complete=False, n=64)[0]


def _verify_stage(tmp: Path) -> Path:
    return hand_made_file(tmp / "verify.h5", variant(), stage="verify", n=64)[0]


def _nan_but_complete(tmp: Path) -> Path:
    path = hand_made_file(tmp / "nan.h5", variant(), n=64)[0]
    with h5py.File(path, "r+") as f:
        f["binaural/ir"][1, 0, 2, 10] = np.nan
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda tmp: tmp / "missing.h5", r"missing\.h5: no such file"),
        (_not_hdf5, r"notes\.h5: not a readable HDF5 file"),
        (_calibration_like, r"cal\.h5: format: expected 'calib-measurement', got 'calib-calibration'"),
        (_incomplete, r"part\.h5: incomplete measurement \(2 steps missing\)"),
        (_verify_stage, r"verify\.h5: stage: expected 'characterize' \(driver IRs\) for a replay, got 'verify'"),
        (_nan_but_complete, r"nan\.h5: /binaural/ir: expected finite samples"),
    ],
)
def test_not_a_replayable_measurement(tmp_path: Path, make, match: str) -> None:
    path = make(tmp_path)
    with pytest.raises(FileFormatError, match=match):
        open_rig(f"replay:{path}", parse_procedure(variant()), SERIAL)


def test_replay_needs_the_sim_section_for_its_noise_model(plant) -> None:
    text = variant()
    proc = parse_procedure(text[: text.index("[sim]")])
    with pytest.raises(ProcedureError, match=r"sim: the virtual lab needs a \[sim\] section"):
        open_rig(f"replay:{plant[0]}", proc, SERIAL)
