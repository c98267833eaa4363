"""calib.solve: regularized filter design (CTC, beamformer, virtualization, FIR).

Pure numpy/scipy, frequency first: plants [F, E, S], filters [F, S, K].
"""

from calib.solve.beamformer import BeamDesign, band_taper, design_beamformer
from calib.solve.ctc import CtcDesign, cg_target_curve, design_ctc
from calib.solve.fir import align_delays, arrival_delay_s, bulk_delay_samples, synthesize_fir
from calib.solve.regularized import TikhonovSolver, reference_gain, regularized_solve
from calib.solve.virtual import virtual_targets, woodworth_itd_s

__all__ = [
    "BeamDesign",
    "CtcDesign",
    "TikhonovSolver",
    "align_delays",
    "arrival_delay_s",
    "band_taper",
    "bulk_delay_samples",
    "cg_target_curve",
    "design_beamformer",
    "design_ctc",
    "reference_gain",
    "regularized_solve",
    "synthesize_fir",
    "virtual_targets",
    "woodworth_itd_s",
]
