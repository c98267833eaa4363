"""Tests of the vectorized log-bisection against known per-bin thresholds."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calib.solve.bisect import bisect_log

THRESHOLD = np.array([1e-6, 3e-2, 1.0, 250.0])


def test_smallest_beta_above_threshold():
    beta, ok = bisect_log(lambda b: b >= THRESHOLD, 1e-10, 1e4, 4, true_above=True, n_iter=60)
    assert np.all(ok)
    assert np.all(beta >= THRESHOLD)  # returned on the satisfying side
    assert_allclose(beta, THRESHOLD, rtol=1e-9)


def test_largest_beta_below_threshold():
    beta, ok = bisect_log(lambda b: b <= THRESHOLD, 1e-10, 1e4, 4, true_above=False, n_iter=60)
    assert np.all(ok) and np.all(beta <= THRESHOLD)
    assert_allclose(beta, THRESHOLD, rtol=1e-9)


def test_bracket_ends():
    # satisfied everywhere -> the far (least regularized / most regularized) end; never -> flagged
    beta, ok = bisect_log(lambda b: np.ones(b.shape, bool), 1e-3, 1e3, 3, true_above=True)
    assert_allclose(beta, 1e-3) and np.all(ok)
    beta, ok = bisect_log(lambda b: np.ones(b.shape, bool), 1e-3, 1e3, 3, true_above=False)
    assert_allclose(beta, 1e3) and np.all(ok)
    beta, ok = bisect_log(lambda b: np.zeros(b.shape, bool), 1e-3, 1e3, 3, true_above=True)
    assert_allclose(beta, 1e3) and not np.any(ok)
    beta, ok = bisect_log(lambda b: np.zeros(b.shape, bool), 1e-3, 1e3, 3, true_above=False)
    assert_allclose(beta, 1e-3) and not np.any(ok)


@pytest.mark.parametrize(
    "lo, hi, n_iter, match",
    [(0.0, 1.0, 5, "0 < lo < hi"), (2.0, 1.0, 5, "0 < lo < hi"), (1.0, 2.0, 0, "n_iter must be >= 1")],
)
def test_value_errors(lo, hi, n_iter, match):
    with pytest.raises(ValueError, match=match):
        bisect_log(lambda b: b > 1, lo, hi, 2, true_above=True, n_iter=n_iter)
