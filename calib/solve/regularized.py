r"""Regularized least-squares filter design, vectorized over frequency bins.

Per frequency bin ``f`` the filters for ``K`` inputs solve (Kirkeby & Nelson
1999, eq. 8; Kirkeby et al. 1998)

.. math::

    H(f) = \left(C^H W C + \beta(f) I\right)^{-1} C^H W D(f)

with ``C`` the plant [E receivers x S drivers], ``W = diag(w)`` non-negative
receiver weights, ``D`` the target responses [E x K] and ``beta >= 0``. ``H``
minimises ``||W^{1/2}(C H - D)||^2 + beta ||H||^2``.

Numerical route: instead of forming the normal matrix (which squares the
condition number) the weighted plant is factorised once per bin,
``W^{1/2} C = U diag(s) V^H`` (batched SVD), and

.. math::

    H = V \,\mathrm{diag}\!\left(\frac{s}{s^2 + \beta}\right) U^H W^{1/2} D .

This is exact for every ``beta > 0``; for ``beta = 0`` it is the
pseudo-inverse (least-squares solution when ``S <= E``, minimum-norm solution
when ``S > E``), singular values below ``max(E, S) * eps * s_max`` being
treated as zero like :func:`numpy.linalg.lstsq`. The factorisation is reused
across many ``beta`` (see :class:`TikhonovSolver`), which makes per-bin
bisection on ``beta`` cheap.

Normalization convention (used by :mod:`calib.solve.ctc` and
:mod:`calib.solve.beamformer`): plants carry physical magnitudes (Pa per full
scale, driver roll-off). Filters must not equalise the drivers, so targets are
``D = g(f) * exp(-j 2 pi f tau_m) * shape`` with ``g`` a reference gain
(:func:`reference_gain`, an RMS of plant magnitudes). Then ``|H| = 1`` is one
driver at unity gain and ``beta`` is given relative to ``g(f)^2``.

References
----------
O. Kirkeby, P. A. Nelson, H. Hamada, F. Orduna-Bustamante, "Fast
deconvolution of multichannel systems using regularization", IEEE Trans.
Speech Audio Process. 6(2), 1998.
O. Kirkeby, P. A. Nelson, "Digital filter design for inversion problems in
sound reproduction", J. Audio Eng. Soc. 47(7/8), 1999.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TikhonovSolver", "reference_gain", "regularized_solve"]


def _check_plant(plant: np.ndarray) -> np.ndarray:
    plant = np.asarray(plant)
    if plant.ndim != 3:
        raise ValueError(f"plant must have shape [F, E, S], got shape {plant.shape}")
    if not np.all(np.isfinite(plant)):
        raise ValueError("plant contains NaN or infinite values; valid: finite complex numbers")
    return plant.astype(complex, copy=False)


def _check_weights(weights: np.ndarray | None, n_freqs: int, n_recv: int) -> np.ndarray:
    """Return receiver weights broadcast to [F, E]."""
    if weights is None:
        return np.ones((n_freqs, n_recv))
    w = np.asarray(weights, dtype=float)
    if w.shape not in ((n_recv,), (n_freqs, n_recv)):
        raise ValueError(
            f"weights must have shape [E]=({n_recv},) or [F, E]=({n_freqs}, {n_recv}), got {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and >= 0, got min {np.nanmin(w)!r}")
    return np.broadcast_to(w, (n_freqs, n_recv))


def check_beta(beta: np.ndarray | float, n_freqs: int) -> np.ndarray:
    """Return ``beta`` as a float array [F]; raise ``ValueError`` if invalid."""
    b = np.asarray(beta, dtype=float)
    if b.ndim == 0:
        b = np.full(n_freqs, float(b))
    if b.shape != (n_freqs,):
        raise ValueError(f"beta must be a float or have shape [F]=({n_freqs},), got {b.shape}")
    if not np.all(np.isfinite(b)) or np.any(b < 0):
        raise ValueError(f"beta must be finite and >= 0, got min {np.nanmin(b)!r}")
    return b


@dataclass(frozen=True)
class TikhonovSolver:
    """Per-bin SVD of a weighted plant, reusable for many targets and ``beta``.

    Attributes
    ----------
    u : ndarray, complex [F, E, r]
    s : ndarray, float [F, r]
        Singular values of ``W^{1/2} C`` (``r = min(E, S)``), those below the
        rank tolerance set to zero.
    vh : ndarray, complex [F, r, S]
    sqrt_w : ndarray, float [F, E]
        Square roots of the receiver weights.
    """

    u: np.ndarray
    s: np.ndarray
    vh: np.ndarray
    sqrt_w: np.ndarray

    @classmethod
    def from_plant(cls, plant: np.ndarray, weights: np.ndarray | None = None) -> TikhonovSolver:
        """Factorise ``W^{1/2} C`` for every bin.

        Parameters
        ----------
        plant : array_like, complex [F, E, S]
        weights : array_like, float [E] or [F, E], optional
            Non-negative receiver weights (default all 1).
        """
        plant = _check_plant(plant)
        n_freqs, n_recv, _ = plant.shape
        sqrt_w = np.sqrt(_check_weights(weights, n_freqs, n_recv))
        u, s, vh = np.linalg.svd(sqrt_w[..., None] * plant, full_matrices=False)
        tol = max(plant.shape[1:]) * np.finfo(float).eps * s[..., :1]
        s = np.where(s > tol, s, 0.0)
        return cls(u=u, s=s, vh=vh, sqrt_w=sqrt_w)

    def take(self, index: np.ndarray) -> TikhonovSolver:
        """Return the solver restricted to some bins (``index`` into axis F)."""
        return TikhonovSolver(u=self.u[index], s=self.s[index], vh=self.vh[index], sqrt_w=self.sqrt_w[index])

    def project(self, target: np.ndarray) -> np.ndarray:
        """Coordinates of the weighted target, ``U^H W^{1/2} D`` [F, r, K]."""
        target = np.asarray(target)
        n_freqs, n_recv = self.sqrt_w.shape
        if target.ndim != 3 or target.shape[:2] != (n_freqs, n_recv):
            raise ValueError(
                f"target must have shape [F, E, K] with F, E = ({n_freqs}, {n_recv}), got {target.shape}"
            )
        return np.conj(np.swapaxes(self.u, -1, -2)) @ (self.sqrt_w[..., None] * target)

    def solve_projected(self, coords: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Return filters [..., F, S, K] from :meth:`project` output and ``beta`` [..., F].

        Leading axes of ``beta`` evaluate several regularizations at once.
        """
        beta = np.asarray(beta, dtype=float)[..., None]
        denom = self.s**2 + beta
        factor = np.divide(self.s, denom, out=np.zeros(denom.shape), where=denom > 0)
        return np.conj(np.swapaxes(self.vh, -1, -2)) @ (factor[..., None] * coords)

    def solve(self, target: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
        """Return filters H [F, S, K] for targets [F, E, K] and ``beta`` (float or [F])."""
        return self.solve_projected(self.project(target), check_beta(beta, self.s.shape[0]))


def regularized_solve(
    plant: np.ndarray,
    target: np.ndarray,
    beta: np.ndarray | float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Regularized (Tikhonov) least-squares filters for every frequency bin.

    ``H = (C^H W C + beta I)^{-1} C^H W D`` (Kirkeby & Nelson 1999), computed
    by a batched SVD of ``W^{1/2} C`` (see the module docstring).

    Parameters
    ----------
    plant : array_like, complex [F, E, S]
        Transfer functions from S drivers to E receivers.
    target : array_like, complex [F, E, K]
        Desired receiver responses for K inputs.
    beta : float or array_like [F]
        Absolute regularization, ``>= 0`` (same units as ``|C|^2``).
    weights : array_like [E] or [F, E], optional
        Receiver weights ``>= 0`` (default 1).

    Returns
    -------
    ndarray, complex [F, S, K]
    """
    return TikhonovSolver.from_plant(plant, weights).solve(target, beta)


def reference_gain(plant: np.ndarray, floor_rel: float = 1e-12) -> np.ndarray:
    """Return reference gain ``g(f)``: RMS magnitude over all receivers and drivers.

    ``g(f) = sqrt(mean_{e,s} |C_{e,s}(f)|^2)`` for a plant [F, E, S] (pass
    only the elements that define the reference: the ears at the design
    positions for CTC, the on-axis microphone for the beam). Values below
    ``floor_rel * max(g)`` are raised to it so that ``beta * g^2`` and
    ratios stay finite where the plant vanishes (DC of a high-passed driver).

    Returns
    -------
    ndarray, float [F]
    """
    plant = np.asarray(plant)
    if plant.ndim < 2:
        raise ValueError(f"plant must have shape [F, ...], got shape {plant.shape}")
    g = np.sqrt(np.mean(np.abs(plant.reshape(plant.shape[0], -1)) ** 2, axis=-1))
    peak = np.max(g) if g.size else 0.0
    return np.maximum(g, floor_rel * peak) if peak > 0 else g
