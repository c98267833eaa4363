r"""Shoebox room by the image-source method (Allen & Berkley 1979).

Pure numpy. The room spans ``[0, Lx] x [0, Ly] x [0, Lz]`` in room
coordinates; every wall has the same real, frequency-independent pressure
reflection coefficient ``beta``.

Allen & Berkley, "Image method for efficiently simulating small-room
acoustics", JASA 65(4), 1979, eq. (8)-(10): with parities ``p = (u, v, w)`` in
{0, 1}^3 and integers ``(n, l, m)``, the image of a source at ``(x, y, z)`` is

.. math:: \mathbf{x}_{p,r} = \big((1-2u)x + 2nL_x,\ (1-2v)y + 2lL_y,\ (1-2w)z + 2mL_z\big)

and its pressure is scaled by ``beta^(|n-u| + |n| + |l-v| + |l| + |m-w| + |m|)``,
the exponent being the number of wall hits (the reflection order). A
directional source is imaged with its axis mirrored by the same sign flips
``(1-2u, 1-2v, 1-2w)``, so an image radiates towards the receiver what the
real source radiated towards the wall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ImageSources:
    """The image sources of one or more sources.

    Attributes
    ----------
    positions_m : ndarray, shape (..., I, 3)
        Image positions, room coordinates (index 0 along I is the source itself).
    signs : ndarray, shape (I, 3)
        Per-axis mirror factors (+1 or -1) to apply to a source axis.
    order : ndarray of int, shape (I,)
        Number of wall reflections.
    gain : ndarray, shape (I,)
        ``beta ** order``.
    """

    positions_m: np.ndarray
    signs: np.ndarray
    order: np.ndarray
    gain: np.ndarray

    def mirror_axes(self, axis: np.ndarray) -> np.ndarray:
        """Mirror source axes ``[..., 3]`` into image axes ``[..., I, 3]``."""
        return np.asarray(axis, dtype=float)[..., None, :] * self.signs


def image_lattice(max_order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parities, lattice indices and orders of every image up to ``max_order``.

    Returns
    -------
    parity : ndarray of int, shape (I, 3)
    lattice : ndarray of int, shape (I, 3)
    order : ndarray of int, shape (I,)
        Sorted by order (the direct path first).
    """
    if max_order < 0:
        raise ValueError(f"max_order must be >= 0, got {max_order!r}")
    n = np.arange(-max_order, max_order + 1)
    # Every (u, n) pair per axis with its hit count |n - u| + |n|.
    u_ax, n_ax = (a.ravel() for a in np.meshgrid([0, 1], n, indexing="ij"))
    hits_ax = np.abs(n_ax - u_ax) + np.abs(n_ax)
    keep_ax = hits_ax <= max_order
    u_ax, n_ax, hits_ax = u_ax[keep_ax], n_ax[keep_ax], hits_ax[keep_ax]
    idx = np.stack(np.meshgrid(*(np.arange(u_ax.size),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    order = hits_ax[idx].sum(axis=1)
    keep = order <= max_order
    idx, order = idx[keep], order[keep]
    sort = np.argsort(order, kind="stable")
    idx, order = idx[sort], order[sort]
    return u_ax[idx], n_ax[idx], order


def image_sources(
    source_xyz_m: np.ndarray,
    dimensions_m: npt.ArrayLike,
    max_order: int,
    reflection_coefficient: float,
) -> ImageSources:
    """Image sources of point sources in a shoebox room (Allen & Berkley 1979).

    Parameters
    ----------
    source_xyz_m : array_like, shape (..., 3)
        Source positions in room coordinates (inside the room).
    dimensions_m : array_like, shape (3,)
    max_order : int
        Keep images with at most this many reflections.
    reflection_coefficient : float
        ``beta`` of every wall.

    Returns
    -------
    ImageSources
    """
    src = np.asarray(source_xyz_m, dtype=float)
    dims = np.asarray(dimensions_m, dtype=float)
    if src.shape[-1:] != (3,) or dims.shape != (3,):
        raise ValueError(f"source_xyz_m must be [..., 3] and dimensions_m [3], got {src.shape} and {dims.shape}")
    if np.any(src <= 0) or np.any(src >= dims):
        raise ValueError(f"sources must lie inside the room {tuple(dims)}, got {src.tolist()!r}")
    parity, lattice, order = image_lattice(int(max_order))
    signs = (1 - 2 * parity).astype(float)
    positions = signs * src[..., None, :] + 2.0 * lattice * dims
    gain = float(reflection_coefficient) ** order.astype(float)
    return ImageSources(positions_m=positions, signs=signs, order=order, gain=gain)


__all__ = ["ImageSources", "image_lattice", "image_sources"]


def reflection_paths_m(
    source_xyz_m: np.ndarray,
    receiver_xyz_m: np.ndarray,
    dimensions_m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Direct and first-reflection path lengths in a shoebox room.

    The first reflection is always a first-order one: mirroring a path's
    image once more across another wall moves it away from every receiver on
    the room's side of that wall. So the six first-order images suffice.

    Parameters
    ----------
    source_xyz_m : array_like [S, 3]
        Sources, room coordinates.
    receiver_xyz_m : array_like [R, 3]
        Receivers, room coordinates.
    dimensions_m : array_like [3]

    Returns
    -------
    direct_m, reflection_m : ndarray [R, S]
    """
    src = np.asarray(source_xyz_m, dtype=float).reshape(-1, 3)
    rec = np.asarray(receiver_xyz_m, dtype=float).reshape(-1, 3)
    dims = np.asarray(dimensions_m, dtype=float)
    if np.any(rec <= 0) or np.any(rec >= dims):
        raise ValueError(f"receivers must lie inside the room {tuple(dims)}, got {rec.tolist()!r}")
    img = image_sources(src, dims, 1, 1.0)  # [S, 7, 3], index 0 is the source itself
    dist = np.linalg.norm(img.positions_m[None] - rec[:, None, None, :], axis=-1)  # [R, S, 7]
    return dist[..., 0], dist[..., 1:].min(axis=-1)


__all__ += ["reflection_paths_m"]
