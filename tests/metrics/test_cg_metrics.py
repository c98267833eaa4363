"""Tests of calib.metrics.ctc (cancellation gain) on analytic 2x2 plants."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.metrics.bands import third_octave_bands
from calib.metrics.ctc import cancellation_gain_db, cancellation_gain_from_ears_db

FREQS = np.fft.rfftfreq(2048, 1 / 48000)


def _symmetric_plant(crosstalk):
    """[F, P=1, 2, 2]: ipsilateral 1, contralateral `crosstalk` (per bin)."""
    plant = np.ones((FREQS.size, 1, 2, 2), complex)
    plant[:, 0, 0, 1] = plant[:, 0, 1, 0] = crosstalk
    return plant


def test_identity_filters_give_plant_separation():
    x = 0.1 * np.exp(-1j * FREQS / 1000)
    cg = cancellation_gain_db(_symmetric_plant(x), np.tile(np.eye(2), (FREQS.size, 1, 1)))
    assert cg.shape == (2, 1, FREQS.size)
    assert_allclose(cg, 20.0, atol=1e-9)  # -20 log10 |0.1|


def test_exact_inverse_cancels_and_mismatch_is_mirrored():
    # H = C^-1 (per bin) -> no crosstalk at all; an asymmetric ear response shows in L and R separately
    plant = _symmetric_plant(0.3 + 0.2j)
    H = np.linalg.inv(plant[:, 0])
    ears = np.einsum("fes,fsk->fek", plant[:, 0], H)[:, None]
    ears[:, 0, 1, 0] = 0.01  # input L leaks 0.01 into the right ear: 40 dB
    ears[:, 0, 0, 1] = 0.1  # input R leaks 0.1 into the left ear: 20 dB
    assert_allclose(cancellation_gain_from_ears_db(ears)[:, 0], [[40.0] * FREQS.size, [20.0] * FREQS.size], atol=1e-9)


def test_band_cg_is_ratio_of_band_powers():
    x = np.linspace(0.01, 0.5, FREQS.size)
    ipsi = np.linspace(1.0, 2.0, FREQS.size)
    ears = np.zeros((FREQS.size, 2, 2, 2), complex)
    ears[:, :, 0, 0] = ears[:, :, 1, 1] = ipsi[:, None]
    ears[:, :, 1, 0] = ears[:, :, 0, 1] = x[:, None]
    bands = third_octave_bands(200, 5000)
    got = cancellation_gain_from_ears_db(ears, FREQS, bands)
    assert got.shape == (2, 2, len(bands))
    for i in range(len(bands)):
        inside = (FREQS >= bands.lower_hz[i]) & (FREQS < bands.upper_hz[i])
        want = 10 * np.log10(np.mean(ipsi[inside] ** 2) / np.mean(x[inside] ** 2))
        assert_allclose(got[..., i], want, rtol=1e-12)
        assert want != pytest.approx(np.mean(-20 * np.log10(x[inside] / ipsi[inside])), abs=1e-3)  # not a dB mean


def test_value_errors():
    with pytest.raises(ValueError, match=r"ears must have shape \[F, P, 2 ears, 2 inputs \(L, R\)\]"):
        cancellation_gain_from_ears_db(np.ones((4, 1, 2, 3)))
    with pytest.raises(ValueError, match=r"plant_ears must have shape \[F, P, 2, S\]"):
        cancellation_gain_db(np.ones((4, 1, 3, 2)), np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match=r"H must have shape \[F, S, 2\] = \(4, 3, 2\)"):
        cancellation_gain_db(np.ones((4, 1, 2, 3)), np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="freqs_hz is required with bands"):
        cancellation_gain_from_ears_db(np.ones((4, 1, 2, 2)), bands=third_octave_bands(100, 200))
