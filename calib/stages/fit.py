"""``calib fit``: a characterize measurement in, a per-unit calibration file out.

Reads the plant from the measurement (ears at the design positions, the
horizontal arc microphone), designs CTC filters for L and R
(:func:`calib.solve.ctc.design_ctc`) and the centre beam
(:func:`calib.solve.beamformer.design_beamformer`), synthesizes causal FIRs,
and stores the metrics predicted from the characterize IRs.

Delay alignment: every design targets ``tau_m + d / c`` from the output
instant, ``d`` being the distance of its receivers (head centres, or the
arc). Each filter path therefore has the same bulk delay ``tau_m`` and the
CTC and beam paths arrive together at the listener.

Rooms: every IR is gated before the first reflection
(:mod:`calib.stages.gating`), so the filters describe the device, not the
room. Below the lowest frequency a gate supports nothing is designed: the
CTC and beam design bands start there (with a warning when the procedure
asked for less), and a target band that starts below it is an error.

Listening areas: a procedure with ``[listening_area]`` also gets the tracked
CTC bank, one filter set per cell (:mod:`calib.stages.tracked`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calib.errors import FitError
from calib.procedure.air import recorded_speed_of_sound
from calib.procedure.consistency import beam_grid_problem
from calib.procedure.load import parse_procedure
from calib.procedure.spec import Procedure
from calib.signals.convolve import next_pow2
from calib.solve.beamformer import design_beamformer
from calib.solve.ctc import design_ctc
from calib.solve.fir import synthesize_fir
from calib.solve.virtual import virtual_targets
from calib.stages.gating import Gates, gated_binaural, measurement_gates, supported_band_error
from calib.stages.product_metrics import Metrics, fir_response, horizontal_mic_index, product_metrics, rfft_grid
from calib.stages.tracked import fit_bank, grid_ear_tfs
from calib.stages.verdict import Check, evaluate
from calib.store.calibration import Calibration, file_sha256, write_calibration
from calib.store.measurement import Measurement, read_measurement, utc_stamp

VIRTUALIZER_TAPS = 256
VIRTUALIZER_DELAY = 32  # samples: room for the contralateral low-pass to be causal


@dataclass
class FitResult:
    """A fitted calibration and what it predicts."""

    calibration: Calibration
    metrics: Metrics
    checks: list[Check]
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    gates: Gates | None = None

    @property
    def calibration_path(self) -> Path:
        """The calibration file :func:`fit_file` wrote (a :class:`FitError` for a fit that was not written)."""
        if self.path is None:
            raise FitError("the fit was not written to a calibration file "
                           "(fit_file writes it; fit_measurement does not)")
        return self.path


def procedure_of(meas: Measurement) -> Procedure:
    """Return the procedure stored in a measurement file."""
    return parse_procedure(meas.procedure_text, source=f"{meas.path}:/procedure")


def design_target_db(proc: Procedure, freqs_hz: np.ndarray, lowest_hz: float = 0.0) -> np.ndarray:
    """Return the CTC design target: the product curve plus the margin, tapered to 0 dB at the design band edges.

    Inside the target curve's band, widened to the outer edges of its end
    third-octave bands (the checks average whole bands): curve + ``fit.ctc_margin_db``.
    Between that and ``fit.ctc_band_hz``: a raised cosine in log frequency
    down to 0 dB (the solver relaxes smoothly, keeping the filters short).
    Outside: NaN. ``lowest_hz`` (what the gate supports) raises the design band's lower edge.
    """
    target = proc.targets.cancellation
    lo, hi = proc.fit.ctc_band_hz
    lo = max(lo, lowest_hz)
    c_lo, c_hi = target.band_hz()
    c_lo, c_hi = c_lo * 2 ** (-1 / 6), c_hi * 2 ** (1 / 6)
    f = np.asarray(freqs_hz, dtype=float)
    inside = target.min_db(np.clip(f, *target.band_hz())) + proc.fit.ctc_margin_db
    edge_lo = target.curve_hz_db[0][1] + proc.fit.ctc_margin_db
    edge_hi = target.curve_hz_db[-1][1] + proc.fit.ctc_margin_db
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.clip(np.log(f / lo) / np.log(c_lo / lo), 0, 1) if c_lo > lo else np.zeros_like(f)
        above = np.clip(np.log(hi / np.maximum(f, 1e-12)) / np.log(hi / c_hi), 0, 1) if hi > c_hi else np.zeros_like(f)
    out = np.where(f < c_lo, edge_lo * 0.5 * (1 - np.cos(np.pi * below)), inside)
    out = np.where(f > c_hi, edge_hi * 0.5 * (1 - np.cos(np.pi * above)), out)
    return np.where((f >= min(lo, c_lo)) & (f <= max(hi, c_hi)), out, np.nan)


def fit_measurement(meas: Measurement) -> FitResult:
    """Design the unit's filters from a complete characterize measurement."""
    if meas.stage != "characterize":
        raise FitError(f"{meas.path}: stage: expected 'characterize', got {meas.stage!r}")
    if not meas.complete:
        raise FitError(f"{meas.path}: incomplete measurement (continue it with calib measure --resume)")
    proc = procedure_of(meas)
    beam_problem = beam_grid_problem(proc)
    if beam_problem is not None:
        raise FitError(f"{meas.path}: {beam_problem}")
    fs = meas.sample_rate
    taps = proc.fit.taps
    n_fft = next_pow2(max(meas.ir_length, taps) * 2)
    freqs = rfft_grid(n_fft, fs)
    c = recorded_speed_of_sound(meas.attrs)  # the air the unit was measured in
    tau_m = proc.fit.modeling_delay_ms * 1e-3
    gates = measurement_gates(meas, proc)
    problem = supported_band_error(proc, gates, str(meas.path))
    if problem is not None:
        raise FitError(problem)
    binaural_ir = gated_binaural(meas, gates)
    warnings = []

    # CTC over the design zone: plant [F, P, 2, S].
    design = [meas.position_index(p.name) for p in proc.design_positions()]
    ears = np.fft.rfft(binaural_ir, n_fft, axis=-1)  # [P, 2, S, F]
    plant_ears = np.moveaxis(ears, -1, 0)  # [F, P, 2, S]
    head_m = float(np.mean([np.linalg.norm(meas.positions[i].xyz_m) for i in design]))
    lowest = gates.binaural.lowest_hz
    if lowest > proc.fit.ctc_band_hz[0]:
        warnings.append(f"fit.ctc_band_hz: the CTC design starts at {lowest:.0f} Hz, not {proc.fit.ctc_band_hz[0]:g} "
                        f"Hz: the ears' gate ({gates.binaural.describe()}) supports nothing lower")
    ctc = design_ctc(plant_ears[:, design], freqs, design_target_db(proc, freqs, lowest), proc.fit.effort_cap_db,
                     tau_m + head_m / c)

    # Centre: beam from the horizontal arc microphone, or a phantom centre for 2 drivers.
    mic = horizontal_mic_index(proc)
    arc = arc_spectra(meas.directivity_ir, mic, n_fft, gates.directivity[mic].windows(meas.ir_length, fs))  # [F, A, S]
    if proc.targets.beam is not None:
        beam = proc.targets.beam
        band = proc.fit.beam_band_hz or beam.band_hz
        # In band only what the gate supports (the taper below relaxes towards delay-and-sum).
        beam_lo = gates.directivity[mic].lowest_hz
        if beam_lo > band[0]:
            warnings.append(f"fit.beam_band_hz: the beam design starts at {beam_lo:.0f} Hz, not {band[0]:g} Hz: "
                            f"the arc's gate ({gates.directivity[mic].describe()}) supports nothing lower")
            band = (beam_lo, band[1])
        elevated = [i for i in range(len(proc.mics)) if i != mic]
        plant_up = None
        if elevated and proc.fit.beam_elevation_weight > 0:  # the next ring above the horizontal one
            up = min(elevated, key=lambda i: abs(proc.mics[i].elevation_deg))
            plant_up = arc_spectra(meas.directivity_ir, up, n_fft, gates.directivity[up].windows(meas.ir_length, fs))
        h_centre = np.concatenate([  # by frequency chunks (bins are independent): memory bounded by a chunk
            design_beamformer(
                arc[f].astype(complex), meas.azimuth_deg, freqs[f], band, beam.design_sector_deg(proc.fit),
                beam.main_lobe_deg, wng_min_db=proc.fit.beam_wng_min_db,
                modeling_delay_s=tau_m + proc.arc.distance_m / c, effort_cap_db=proc.fit.effort_cap_db,
                main_lobe_min_db=beam.main_lobe_min_db + proc.fit.beam_main_lobe_margin_db,
                plant_elevated=None if plant_up is None else plant_up[f].astype(complex),
                elevation_weight=proc.fit.beam_elevation_weight,
            ).H
            for f in _chunks(freqs.size, FREQ_CHUNK)
        ])
    else:  # both ears get the centre equally: half of each CTC input
        h_centre = 0.5 * (ctc.H[..., :1] + ctc.H[..., 1:])
    H = np.concatenate([ctc.H, h_centre], axis=-1)  # [F, S, 3]
    if not np.all(np.isfinite(H)):
        raise FitError(f"{meas.path}: the solver returned non-finite filters (is a driver dead?)")
    fir = np.transpose(synthesize_fir(H, n_fft, taps, fs), (1, 0, 2))  # [3, S, T]

    cal = Calibration(
        serial=meas.serial,
        product_id=proc.product.id,
        sample_rate=fs,
        drivers=list(meas.sources),
        output_channels=[proc.channels.outputs[d] for d in meas.sources],
        fir=fir.astype(np.float32),
        virtualizer=virtualizer_fir(proc, fs),
        virtualizer_delay_samples=VIRTUALIZER_DELAY,
        modeling_delay_s=tau_m,
        procedure_text=meas.procedure_text,
        measurement_sha256=file_sha256(meas.path),
        procedure_sha256=meas.procedure_sha256,
    )
    if proc.listening_area is not None:  # the tracked bank: one CTC set per cell of the area
        target = design_target_db(proc, freqs, lowest)
        cal.area = fit_bank(proc, freqs, grid_ear_tfs(proc, meas, binaural_ir, n_fft), target, c, fs, n_fft).bank
    metrics = predicted_metrics(proc, meas, cal, gates)
    cal.predicted, cal.predicted_attrs = metrics.datasets()
    return FitResult(cal, metrics, evaluate(proc, metrics), warnings=warnings, gates=gates)


def predicted_metrics(proc: Procedure, meas: Measurement, cal: Calibration, gates: Gates | None = None) -> Metrics:
    """Metrics of the gated driver IRs of ``meas`` convolved with the synthesized FIRs (all positions).

    The prediction from the characterize measurement, and the verification
    of a ``verify`` measurement made driver by driver (in a room).
    """
    gates = gates or measurement_gates(meas, proc)
    binaural_ir = gated_binaural(meas, gates)
    n_fft = next_pow2(meas.ir_length + cal.fir.shape[-1])
    freqs = rfft_grid(n_fft, meas.sample_rate)
    _, H = fir_response(cal.fir, meas.sample_rate, n_fft)  # [F, S, K]
    ears = np.moveaxis(np.fft.rfft(binaural_ir, n_fft, axis=-1), -1, 0)  # [F, P, 2, S]
    ears_lr = np.einsum("fpes,fsk->fpek", ears, H[..., :2])
    mic = horizontal_mic_index(proc)
    arc = arc_spectra(meas.directivity_ir, mic, n_fft, gates.directivity[mic].windows(meas.ir_length, meas.sample_rate))
    pattern = np.einsum("fas,fs->fa", arc, H[..., 2])  # [F, A]
    return product_metrics(
        proc, freqs, ears_lr, [p.name for p in meas.positions], pattern, meas.azimuth_deg, cal.fir, meas.sample_rate,
        lowest_hz=(gates.binaural.lowest_hz, gates.directivity[mic].lowest_hz), beam_plant_arc=arc,
    )


#: Azimuths read and transformed at a time: the float64 spectra of one block, not of the
#: whole arc, are held on top of the result (bounded memory for large files).
AZIMUTH_BLOCK = 32
#: Frequency bins per beamformer solve: its float64 copies of the plant are per chunk.
FREQ_CHUNK = 1024


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _azimuth_blocks(directivity_ir) -> list[slice]:
    return _chunks(directivity_ir.shape[0], AZIMUTH_BLOCK)


def arc_spectra(directivity_ir, mic: int, n_fft: int,
                windows: np.ndarray | None = None) -> np.ndarray:
    """Rfft of one microphone's IRs over all azimuths, [F, A, S] complex64, a block of azimuths at a time.

    Only that microphone leaves the file when ``directivity_ir`` is a
    :class:`calib.store.measurement.LazyDataset`. Single precision suffices:
    the IRs are stored as float32, so their spectra carry float32 rounding anyway;
    it halves the largest array of the fit (360 azimuths x 5 drivers x 16385 bins: 236 MB).
    ``windows`` are the microphone's gates (:mod:`calib.stages.gating`).
    """
    n_az, _, n_src, _ = directivity_ir.shape
    out = np.empty((n_fft // 2 + 1, n_az, n_src), dtype=np.complex64)
    for a in _azimuth_blocks(directivity_ir):
        block = np.asarray(directivity_ir[a, mic], float)  # [a, S, N]
        if windows is not None:  # the microphone's gate per azimuth ([A, N], or [1, N] for all)
            block *= (windows[a] if len(windows) > 1 else windows)[:, None, :]
        out[:, a] = np.moveaxis(np.fft.rfft(block, n_fft, axis=-1), -1, 0)
    return out


def virtualizer_fir(proc: Procedure, sample_rate: int) -> np.ndarray:
    """Return the 2x2 stereo virtualizer ``[2, 2, Tv]``: ipsilateral delay, contralateral delayed low-pass.

    Built from :func:`calib.solve.virtual.virtual_targets` relative to the
    ipsilateral path (so the diagonal is a pure delay of ``VIRTUALIZER_DELAY``).
    """
    n_fft = 4 * VIRTUALIZER_TAPS
    freqs = rfft_grid(n_fft, sample_rate)
    ipsi, contra = virtual_targets(freqs, proc.fit.virtualization)
    delay = np.exp(-2j * np.pi * freqs * VIRTUALIZER_DELAY / sample_rate)
    cross = np.fft.irfft(contra / ipsi * delay, n_fft)[:VIRTUALIZER_TAPS]
    direct = np.zeros(VIRTUALIZER_TAPS)
    direct[VIRTUALIZER_DELAY] = 1.0
    out = np.zeros((2, 2, VIRTUALIZER_TAPS), np.float32)
    out[0, 0] = out[1, 1] = direct
    out[0, 1] = out[1, 0] = cross
    return out


def default_calibration_path(meas: Measurement) -> Path:
    """``<measurement folder>/calibration-<utc>.h5``."""
    return meas.path.parent / f"calibration-{utc_stamp()}.h5"


def fit_file(measurement_path: str | Path, out_path: str | Path | None = None) -> FitResult:
    """Fit a measurement file and write the calibration file (never overwriting one)."""
    meas = read_measurement(measurement_path, lazy=True)  # reads only what the fit uses, when it uses it
    result = fit_measurement(meas)
    path = Path(out_path) if out_path is not None else default_calibration_path(meas)
    if path.exists():
        raise FileExistsError(0, "exists", str(path))
    result.path = write_calibration(path, result.calibration)
    return result
