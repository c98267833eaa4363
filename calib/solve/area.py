r"""Listening areas: ear transfer functions between measured head positions, and the cell grid.

A product that tracks its listener needs driver-to-ear transfer functions
everywhere in a listening area, but a station measures the dummy head on a
coarse grid only. Between grid points the transfer functions are
interpolated after the part that moves fastest with position is taken out:

1. **Geometric delay.** From every driver ``s`` to every ear ``e`` of a head
   at ``(x, y, z, yaw)`` the sound travels ``L_es``: the straight line when
   the ear sees the driver, else the tangent to the head sphere plus the arc
   round it (the creeping-wave path of a rigid sphere, Woodworth's model):

   .. math::

       L = \sqrt{R^2 + a^2 - 2 a R \cos\theta} \quad (\cos\theta \ge a / R), \qquad
       L = \sqrt{R^2 - a^2} + a\,(\theta - \arccos(a / R)) \quad \text{otherwise},

   ``R`` the driver-to-centre distance, ``a`` the head radius, ``theta`` the
   angle at the centre between the driver and the ear.
2. **Residual.** ``H_es(f) e^{+j 2 pi f L_es / c}``: what is left (driver
   response, directivity, ``1/R``, the head's diffraction) varies slowly with
   position and is interpolated linearly along each grid axis (depth ``x``,
   lateral ``y``, yaw; trilinear; an axis with one value is constant), either
   as complex numbers or as log-magnitude and unwrapped phase.
3. **Target delay.** The residual is multiplied by ``e^{-j 2 pi f L / c}`` of
   the target position.

The cell grid (:func:`cell_phase_error_rad`): a CTC filter set designed for
a cell's centre cancels at the contralateral ear because the drivers'
contributions there add up to nothing; moving the head (shift ``delta``,
yaw ``psi``) changes the path-length difference between two drivers
``s, s'`` at an ear by ``Delta(L_es - L_es')``, a phase error

.. math::

    \Delta\varphi = \frac{2 \pi f_{max}}{c} \max_{e, s, s'} \left|\Delta (L_{es} - L_{es'})\right|

at the highest frequency of the target curve. A crosstalk null whose two
halves are off by ``Delta phi`` leaves ``|1 - e^{j Delta phi}| = 2 sin(Delta phi / 2)``
of one half: the cancellation is ``-20 log10(2 sin(Delta phi / 2))`` dB, so
a head displaced by ``delta`` from a position the filters were designed
for keeps the target ``G`` dB at ``f_max`` if
``Delta phi <= 2 arcsin(10^{-G/20} / 2)`` (:func:`allowed_phase_error_rad`;
0.178 rad for 15 dB). A cell's filters are designed over its centre and its
corners (robust over all of them), so no point of the cell is farther than
half its half-size, per axis, from a design position: the cell is narrow
enough when a displacement of ``+-half_size / 2`` from its centre keeps
``Delta phi`` within the limit (:func:`cell_phase_error_rad` with
``offset = half_size / 2``). For drivers spanning ``d`` laterally at
distance ``D`` a lateral shift ``delta`` gives
``Delta phi ~ 2 pi f delta d / (c D)``: at 6 kHz, ``d = 13 cm``, ``D = 1 m``,
``delta <= 12.5 mm``, cells up to 5 cm wide; off axis a depth shift turns
the drivers' span as seen from the head and counts as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product as cartesian

import numpy as np

__all__ = [
    "HeadGrid",
    "allowed_phase_error_rad",
    "cell_design_points",
    "cell_index",
    "cell_phase_error_rad",
    "ear_path_length_m",
    "ear_positions_m",
    "interpolate_ear_tfs",
]

#: Defaults of the dummy head (the sim's and the usual average head: Duda & Martens' 8.75 cm).
HEAD_RADIUS_M = 0.0875
EAR_AZIMUTH_DEG = 100.0


@dataclass(frozen=True)
class HeadGrid:
    """A regular grid of head positions: depth ``x`` x lateral ``y`` x yaw, at height ``z``.

    Attributes
    ----------
    x_m, y_m : tuple of float
        Ascending head-centre coordinates (device frame, metres).
    yaw_deg : tuple of float
        Ascending head yaws (degrees, 180 = facing the device).
    z_m : float
        Head-centre height.
    """

    x_m: tuple[float, ...]
    y_m: tuple[float, ...]
    yaw_deg: tuple[float, ...]
    z_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x_m", "y_m", "yaw_deg"):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
                raise ValueError(
                    f"{name} must be a non-empty ascending list of finite numbers, got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, tuple(float(v) for v in values))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(len(x_m), len(y_m), len(yaw_deg))``."""
        return len(self.x_m), len(self.y_m), len(self.yaw_deg)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Head centres ``[G, 3]`` and yaws ``[G]`` in C order (x slowest, yaw fastest)."""
        x, y, yaw = np.meshgrid(self.x_m, self.y_m, self.yaw_deg, indexing="ij")
        xyz = np.stack([x.ravel(), y.ravel(), np.full(x.size, self.z_m)], axis=-1)
        return xyz, yaw.ravel()


def ear_positions_m(centre_m: np.ndarray, yaw_deg: np.ndarray, radius_m: float = HEAD_RADIUS_M,
                    ear_azimuth_deg: float = EAR_AZIMUTH_DEG) -> np.ndarray:
    """Ear positions ``[..., 2, 3]`` (0 = left, 1 = right) of heads at ``centre_m [..., 3]`` facing ``yaw_deg [...]``.

    The left ear is at azimuth ``yaw + ear_azimuth_deg`` from the centre, the
    right at ``yaw - ear_azimuth_deg``, in the horizontal plane (AES69 frame).
    """
    centre = np.asarray(centre_m, dtype=float)
    az = np.deg2rad(np.asarray(yaw_deg, dtype=float)[..., None] + np.array([ear_azimuth_deg, -ear_azimuth_deg]))
    offset = np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], axis=-1)  # [..., 2, 3]
    return centre[..., None, :] + radius_m * offset


def ear_path_length_m(sources_m: np.ndarray, centre_m: np.ndarray, yaw_deg: np.ndarray,
                      radius_m: float = HEAD_RADIUS_M, ear_azimuth_deg: float = EAR_AZIMUTH_DEG) -> np.ndarray:
    """Path length from every source to every ear, round the head where it is in the way.

    Parameters
    ----------
    sources_m : array_like [S, 3]
        Driver acoustic centres (device frame).
    centre_m : array_like [P, 3]
        Head centres.
    yaw_deg : array_like [P]
        Head yaws.
    radius_m, ear_azimuth_deg : float
        Head sphere radius and ear azimuth from the facing direction.

    Returns
    -------
    numpy.ndarray [P, 2, S]
        Metres (module docstring: straight line or tangent plus arc).
    """
    src = np.asarray(sources_m, dtype=float)
    centre = np.asarray(centre_m, dtype=float)
    yaw = np.asarray(yaw_deg, dtype=float)
    if src.ndim != 2 or src.shape[1] != 3 or centre.ndim != 2 or centre.shape[1] != 3 or yaw.shape != centre.shape[:1]:
        raise ValueError(f"need sources [S, 3], centres [P, 3] and yaws [P], got shapes {src.shape}, "
                         f"{centre.shape}, {yaw.shape}")
    to_src = src[None, :, :] - centre[:, None, :]  # [P, S, 3]
    dist = np.linalg.norm(to_src, axis=-1)  # [P, S]
    if np.any(dist <= radius_m):
        raise ValueError(f"a source lies inside the head sphere (radius {radius_m} m)")
    ears = (ear_positions_m(centre, yaw, radius_m, ear_azimuth_deg) - centre[:, None, :]) / radius_m  # [P, 2, 3]
    cos_t = np.clip(np.einsum("pek,psk->pes", ears, to_src) / dist[:, None, :], -1.0, 1.0)  # [P, 2, S]
    r = dist[:, None, :]
    straight = np.sqrt(np.maximum(r**2 + radius_m**2 - 2 * radius_m * r * cos_t, 0.0))
    creeping = np.sqrt(r**2 - radius_m**2) + radius_m * (np.arccos(cos_t) - np.arccos(radius_m / r))
    return np.where(cos_t >= radius_m / r, straight, creeping)


def _axis_weights(axis: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid index ``[P]`` and weight of the upper neighbour ``[P]`` (clamped at the ends)."""
    if axis.size == 1:
        return np.zeros(values.size, int), np.zeros(values.size)
    lo = np.clip(np.searchsorted(axis, values, side="right") - 1, 0, axis.size - 2)
    w = np.clip((values - axis[lo]) / (axis[lo + 1] - axis[lo]), 0.0, 1.0)
    return lo, w


def interpolate_ear_tfs(
    freqs_hz: np.ndarray,
    grid_tfs: np.ndarray,
    grid: HeadGrid,
    sources_m: np.ndarray,
    target_xyz_m: np.ndarray,
    target_yaw_deg: np.ndarray,
    speed_of_sound: float,
    *,
    method: str = "complex",
    radius_m: float = HEAD_RADIUS_M,
    ear_azimuth_deg: float = EAR_AZIMUTH_DEG,
) -> np.ndarray:
    """Driver-to-ear transfer functions at target heads from those measured on a grid.

    Parameters
    ----------
    freqs_hz : array_like [F]
    grid_tfs : array_like, complex [Nx, Ny, Nyaw, F, 2, S]
        Measured transfer functions on ``grid`` (ears 0 = left, 1 = right),
        time origin at the output.
    grid : HeadGrid
    sources_m : array_like [S, 3]
        Driver acoustic centres (the product geometry).
    target_xyz_m : array_like [P, 3]
        Head centres wanted; outside the grid the nearest edge value is held
        (with the target's own delay).
    target_yaw_deg : array_like [P]
    speed_of_sound : float
        m/s of the air the grid was measured in.
    method : {"complex", "polar"}
        Interpolate the delay-free residual as complex numbers, or as
        log-magnitude and phase (unwrapped along frequency).
    radius_m, ear_azimuth_deg : float
        The dummy head's sphere radius and ear azimuth.

    Returns
    -------
    numpy.ndarray, complex [F, P, 2, S]
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    tfs = np.asarray(grid_tfs)
    n_src = np.asarray(sources_m).shape[0]
    if tfs.shape != (*grid.shape, freqs.size, 2, n_src):
        raise ValueError(f"grid_tfs must have shape {(*grid.shape, freqs.size, 2, n_src)} "
                         f"[Nx, Ny, Nyaw, F, 2, S], got {tfs.shape}")
    if method not in ("complex", "polar"):
        raise ValueError(f"method must be 'complex' or 'polar', got {method!r}")
    if not speed_of_sound > 0:
        raise ValueError(f"speed_of_sound must be > 0, got {speed_of_sound!r}")
    target = np.atleast_2d(np.asarray(target_xyz_m, dtype=float))
    yaw = np.atleast_1d(np.asarray(target_yaw_deg, dtype=float))
    k = 2j * np.pi * freqs[:, None, None] / speed_of_sound  # [F, 1, 1]

    xyz, yaws = grid.points()
    lengths = ear_path_length_m(sources_m, xyz, yaws, radius_m, ear_azimuth_deg).reshape(*grid.shape, 2, n_src)
    weights = [_axis_weights(np.asarray(a), v) for a, v in
               ((grid.x_m, target[:, 0]), (grid.y_m, target[:, 1]), (grid.yaw_deg, yaw))]
    acc = np.zeros((target.shape[0], freqs.size, 2, n_src), complex if method == "complex" else float)
    phase = np.zeros_like(acc, dtype=float)
    for corner in cartesian((0, 1), repeat=3):
        idx = [lo + c for (lo, _), c in zip(weights, corner, strict=True)]
        w = np.prod([wt if c else 1.0 - wt for (_, wt), c in zip(weights, corner, strict=True)], axis=0)  # [P]
        if not np.any(w > 0):
            continue
        ix, iy, iw = (np.minimum(i, n - 1) for i, n in zip(idx, grid.shape, strict=True))
        residual = tfs[ix, iy, iw] * np.exp(k[None] * lengths[ix, iy, iw][:, None])  # [P, F, 2, S]
        if method == "complex":
            acc += w[:, None, None, None] * residual
        else:
            acc += w[:, None, None, None] * np.log(np.maximum(np.abs(residual), 1e-300))
            phase += w[:, None, None, None] * np.unwrap(np.angle(residual), axis=1)
    if method == "polar":
        acc = np.exp(acc + 1j * phase)
    own = ear_path_length_m(sources_m, target, yaw, radius_m, ear_azimuth_deg)  # [P, 2, S]
    return np.moveaxis(acc * np.exp(-k[None] * own[:, None]), 1, 0)


def allowed_phase_error_rad(cancellation_db: float) -> float:
    """Largest inter-driver phase error that keeps ``cancellation_db``: ``2 arcsin(10^(-G/20) / 2)``."""
    if not cancellation_db > 0:
        raise ValueError(f"cancellation_db must be > 0, got {cancellation_db!r}")
    return float(2.0 * np.arcsin(0.5 * 10 ** (-cancellation_db / 20.0)))


def cell_phase_error_rad(f_max_hz: float, sources_m: np.ndarray, centre_m: np.ndarray, yaw_deg: float,
                         offset: tuple[float, float, float], speed_of_sound: float,
                         radius_m: float = HEAD_RADIUS_M, ear_azimuth_deg: float = EAR_AZIMUTH_DEG) -> float:
    """Worst inter-driver phase error at ``f_max_hz`` of a head displaced by up to ``offset`` (module docstring).

    Parameters
    ----------
    f_max_hz : float
        Highest frequency of the cancellation target.
    sources_m : array_like [S, 3]
    centre_m : array_like [3]
        A design position (where the filters are exact).
    yaw_deg : float
        Its yaw.
    offset : (depth_m, lateral_m, yaw_deg)
        Largest displacement along x, y and yaw (the corners of the box ``+-offset`` are evaluated).
    speed_of_sound : float

    Returns
    -------
    float
        Radians: ``2 pi f_max / c * max |Delta(L_es - L_es')|`` over the box's corners, ears and driver pairs.
    """
    centre = np.asarray(centre_m, dtype=float)
    signs = np.array(list(cartesian((-1.0, 1.0), repeat=3)))  # [8, 3]
    corners = centre[None, :2] + signs[:, :2] * np.asarray(offset[:2], dtype=float)[None, :]
    corners = np.column_stack([corners, np.full(8, centre[2])])
    yaws = yaw_deg + signs[:, 2] * offset[2]
    heads = np.vstack([centre[None, :], corners])
    lengths = ear_path_length_m(sources_m, heads, np.r_[yaw_deg, yaws], radius_m, ear_azimuth_deg)  # [9, 2, S]
    diff = lengths[:, :, :, None] - lengths[:, :, None, :]  # [9, 2, S, S]
    return float(2 * np.pi * f_max_hz / speed_of_sound * np.max(np.abs(diff[1:] - diff[:1])))


def cell_design_points(centre_m: np.ndarray, yaw_deg: float,
                       half_size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Return a cell's design positions: its centre, then the corners along every axis with an extent.

    Returns head centres ``[K, 3]`` and yaws ``[K]``, ``K = 1 + 2^n`` for ``n``
    axes with a non-zero half size.
    """
    centre = np.asarray(centre_m, dtype=float)
    axes = [k for k in range(3) if half_size[k] > 0]
    xyz, yaws = [centre], [float(yaw_deg)]
    for signs in cartesian((-1.0, 1.0), repeat=len(axes)):
        step = np.zeros(3)
        for k, sign in zip(axes, signs, strict=True):
            step[k] = sign * half_size[k]
        xyz.append(centre + np.array([step[0], step[1], 0.0]))
        yaws.append(float(yaw_deg) + step[2])
    return np.array(xyz), np.array(yaws)


def cell_index(centres_m: np.ndarray, yaws_deg: np.ndarray, half_size: tuple[float, float, float],
               xyz_m: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """Return the cell each head is in: nearest centre in units of the half size (Chebyshev distance).

    Cells on a regular grid tile the area, so a head inside is in the cell
    whose normalized distance is at most 1; outside, the nearest edge cell
    is taken (the tracker may wander off the area). Axes with zero extent
    are ignored.

    Parameters
    ----------
    centres_m : [C, 3], yaws_deg : [C]
    half_size : (depth m, lateral m, yaw deg)
    xyz_m : [..., 3], yaw_deg : [...]

    Returns
    -------
    numpy.ndarray of int, shape ``[...]``
    """
    centres = np.asarray(centres_m, dtype=float)
    point = np.asarray(xyz_m, dtype=float)
    yaw = np.asarray(yaw_deg, dtype=float)
    scale = np.array([1.0 / h if h > 0 else 0.0 for h in half_size])
    delta = np.stack([point[..., None, 0] - centres[:, 0], point[..., None, 1] - centres[:, 1],
                      (yaw[..., None] - yaws_deg + 180.0) % 360.0 - 180.0], axis=-1)  # [..., C, 3]
    return np.argmin(np.max(np.abs(delta) * scale, axis=-1), axis=-1)
