"""calib.metrics: CTC, beam, effort and response metrics in third-octave bands.

Pure numpy, frequency last for band-averaged outputs ([..., B]).
"""

from calib.metrics.bands import Bands, band_power_average, third_octave_bands
from calib.metrics.beam import arc_weights, directivity_index_db, main_lobe_db, null_depth_db
from calib.metrics.ctc import cancellation_gain_db, cancellation_gain_from_ears_db
from calib.metrics.effort import band_effort_db, effort_db, max_effort_db, white_noise_gain_db
from calib.metrics.response import response_deviation_db

__all__ = [
    "Bands",
    "arc_weights",
    "band_effort_db",
    "band_power_average",
    "cancellation_gain_db",
    "cancellation_gain_from_ears_db",
    "directivity_index_db",
    "effort_db",
    "main_lobe_db",
    "max_effort_db",
    "null_depth_db",
    "response_deviation_db",
    "third_octave_bands",
    "white_noise_gain_db",
]
