"""Rigid-sphere dummy head: the analytic series of Duda & Martens (1998).

A rigid sphere of radius ``a`` is centred at the origin; a point source sits at
distance ``r > a`` from the centre; the "ear" is a point on the surface at angle
``theta`` from the source direction. The transfer function is the surface
pressure divided by the free-field pressure the same source would produce at
the centre with the sphere absent.

Conventions (calib): time dependence ``e^{+j w t}``, free field
``e^{-jkR} / (4 pi R)``, so a pure delay ``tau`` is ``e^{-j 2 pi f tau}`` and
``h_m = h_m^{(2)} = j_m - j y_m`` is the outgoing spherical Hankel function.
With ``mu = k a`` and ``rho = r / a`` (Duda & Martens' series; their printed
form carries ``e^{-i mu rho}``, the opposite time convention: for real
frequencies ours is its complex conjugate)::

    H(rho, mu, theta) = -(rho / mu) e^{+j mu rho}
                        * sum_m (2m + 1) P_m(cos theta) h_m(mu rho) / h_m'(mu)

It is evaluated as Duda & Martens do, without Bessel function calls: writing
``h_m(x) = j^{m+1} (e^{-jx} / x) Q_m(1 / (jx))``, the polynomials ``Q_m`` obey
the upward recurrence ``Q_{m+1}(z) = (2m + 1) z Q_m(z) + Q_{m-1}(z)`` with
``Q_{-1} = Q_0 = 1``, ``h_m'(x) = h_{m-1}(x) - (m + 1) h_m(x) / x`` and so::

    H = e^{j mu} sum_m (2m + 1) P_m(cos theta) G_m / (m + 1 + j mu s_m)

with ``G_m = Q_m(z_r) / Q_m(z_a)``, ``s_m = Q_{m-1}(z_a) / Q_m(z_a)``,
``z_a = 1 / (j mu)``, ``z_r = z_a / rho``. Only the ratios are carried, so
nothing overflows where ``Q_m`` grows like ``(2m - 1)!! z^m`` (low
frequencies, many terms). The series stops, as theirs does, once two
consecutive terms are below ``tol`` relative to the running sum.

Limits: ``rho -> inf`` gives the plane-wave (Rayleigh) series
(``z_r = 0``, ``G_m = 1 / Q_m(z_a)``); ``f = 0`` gives the potential-flow
(Laplace, rigid-sphere Neumann) limit ``sum_m (2m + 1) / (m + 1) P_m rho^{-m}``,
which is exactly 1 only for a distant source: a near source is louder on the
near side even at DC (the range dependence Duda & Martens describe).

References
----------
R. O. Duda and W. L. Martens, "Range dependence of the response of a spherical
head model", J. Acoust. Soc. Am. 104(5), 3048-3058, 1998.
P. M. Morse and K. U. Ingard, Theoretical Acoustics, McGraw-Hill 1968, sec. 8.2
(scattering by a rigid sphere).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_HEAD_RADIUS_M",
    "ear_directions",
    "head_to_ear_transfer",
    "rigid_sphere_plane_wave_transfer",
    "rigid_sphere_transfer",
]

#: Radius of the default dummy head (Duda & Martens use 8.75 cm as the average head).
DEFAULT_HEAD_RADIUS_M = 0.0875


def rigid_sphere_transfer(
    freqs_hz: ArrayLike,
    source_distance_m: ArrayLike,
    incidence_deg: ArrayLike,
    radius_m: float = DEFAULT_HEAD_RADIUS_M,
    speed_of_sound: float = 343.0,
    tol: float = 1e-8,
    max_terms: int | None = None,
) -> NDArray[np.complex128]:
    """Surface pressure of a rigid sphere over free-field pressure at its centre.

    Parameters
    ----------
    freqs_hz : array_like
        Frequencies (>= 0) in Hz.
    source_distance_m : array_like
        Distance of the point source from the sphere centre, ``> radius_m``;
        ``numpy.inf`` gives the plane-wave limit.
    incidence_deg : array_like
        Angle between the source direction and the surface point (ear), in
        degrees: 0 is the ipsilateral pole, 180 the antipode (bright spot).
    radius_m : float
        Sphere radius in metres.
    speed_of_sound : float
        Speed of sound in m/s.
    tol : float
        Convergence threshold: summation stops when two consecutive terms are
        both ``<= tol * |sum|`` for every element (Duda & Martens' test).
    max_terms : int, optional
        Number of series terms at most. When given, the series is truncated
        there even if ``tol`` is not met (``tol=0`` forces exactly
        ``max_terms`` terms). When omitted, a bound from ``k a`` and ``r / a``
        is used and non-convergence raises.

    Returns
    -------
    numpy.ndarray of complex128
        ``H`` with the numpy broadcast shape of the three array arguments
        (e.g. ``freqs_hz[None, :]`` and ``incidence_deg[:, None]`` give
        ``[A, F]``). ``e^{+jwt}`` convention; see the module docstring for the
        series.

    Raises
    ------
    ValueError
        Negative or non-finite frequency, source on or inside the sphere,
        non-positive radius or speed of sound, bad ``tol`` / ``max_terms``.
    RuntimeError
        The series did not converge within the automatic term bound.
    """
    cos_theta = np.cos(np.deg2rad(np.asarray(incidence_deg, dtype=float)))
    return _sphere_series(freqs_hz, source_distance_m, cos_theta, radius_m,
                          speed_of_sound, tol, max_terms)


def rigid_sphere_plane_wave_transfer(
    freqs_hz: ArrayLike,
    incidence_deg: ArrayLike,
    radius_m: float = DEFAULT_HEAD_RADIUS_M,
    speed_of_sound: float = 343.0,
    tol: float = 1e-8,
    max_terms: int | None = None,
) -> NDArray[np.complex128]:
    """Plane-wave limit (source at infinity) of :func:`rigid_sphere_transfer`.

    Rayleigh's series ``H = -j / (ka)^2 * sum_m (2m + 1) j^m P_m(cos theta) / h_m'(ka)``
    (Morse & Ingard sec. 8.2, ``e^{+jwt}``), reference: the incident wave at
    the centre. Parameters as :func:`rigid_sphere_transfer`.
    """
    return rigid_sphere_transfer(freqs_hz, np.inf, incidence_deg, radius_m,
                                 speed_of_sound, tol, max_terms)


def ear_directions(
    head_yaw_deg: ArrayLike,
    ear_azimuth_deg: float = 100.0,
    ear_elevation_deg: float = 0.0,
) -> NDArray[np.float64]:
    """Return unit vectors from the head centre to the two ears, in the device frame.

    AES69 frame: x forward (device front), y left, z up, azimuth counter-clockwise
    from +x. The head faces azimuth ``head_yaw_deg``; the left ear is at azimuth
    ``head_yaw_deg + ear_azimuth_deg``, the right at ``head_yaw_deg - ear_azimuth_deg``,
    both at elevation ``ear_elevation_deg``.

    Parameters
    ----------
    head_yaw_deg : array_like
        Head yaw(s) in degrees, shape ``[...]``.
    ear_azimuth_deg : float
        Ear azimuth relative to the facing direction (90 = exactly lateral).
    ear_elevation_deg : float
        Ear elevation in degrees (negative = below the head centre).

    Returns
    -------
    numpy.ndarray
        ``[..., 2, 3]``: index 0 left ear, 1 right ear; last axis x, y, z.
    """
    yaw = np.asarray(head_yaw_deg, dtype=float)[..., None]
    az = np.deg2rad(yaw + np.array([ear_azimuth_deg, -ear_azimuth_deg]))
    el = np.deg2rad(ear_elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                     np.full(az.shape, np.sin(el))], axis=-1)


def head_to_ear_transfer(
    freqs_hz: ArrayLike,
    source_xyz_m: ArrayLike,
    head_centre_xyz_m: ArrayLike,
    head_yaw_deg: ArrayLike,
    radius_m: float = DEFAULT_HEAD_RADIUS_M,
    speed_of_sound: float = 343.0,
    *,
    ear_azimuth_deg: float = 100.0,
    ear_elevation_deg: float = 0.0,
    tol: float = 1e-8,
) -> NDArray[np.complex128]:
    """Sphere transfer at both ears for point sources placed in the device frame.

    Distance and incidence angle of each source are taken from the geometry;
    the result is relative to the free field at the head centre, so the full
    source-to-ear path is ``e^{-jkR} / (4 pi R) * H`` with ``R`` the
    source-to-centre distance.

    Parameters
    ----------
    freqs_hz : array_like
        Frequencies ``[F]`` in Hz.
    source_xyz_m : array_like
        Source positions ``[..., 3]`` (drivers, image sources), metres.
    head_centre_xyz_m : array_like
        Head centre ``[3]`` (or broadcastable against ``[..., 3]``), metres.
    head_yaw_deg : array_like
        Facing azimuth of the head (scalar or broadcastable against ``[...]``).
    radius_m, speed_of_sound, tol
        As :func:`rigid_sphere_transfer`.
    ear_azimuth_deg, ear_elevation_deg
        As :func:`ear_directions`.

    Returns
    -------
    numpy.ndarray of complex128
        ``[..., F, 2]``: ears 0 = left, 1 = right.
    """
    freqs = np.asarray(freqs_hz, dtype=float)
    if freqs.ndim != 1:
        raise ValueError(f"freqs_hz must be 1-D [F], got shape {freqs.shape}")
    src = np.asarray(source_xyz_m, dtype=float)
    centre = np.asarray(head_centre_xyz_m, dtype=float)
    if src.shape[-1:] != (3,) or centre.shape[-1:] != (3,):
        raise ValueError(f"source_xyz_m and head_centre_xyz_m need a last axis of 3 (x, y, z), "
                         f"got shapes {src.shape} and {centre.shape}")
    delta = src - centre
    distance_m = np.linalg.norm(delta, axis=-1)                        # [...]
    ears = ear_directions(head_yaw_deg, ear_azimuth_deg, ear_elevation_deg)  # [..., 2, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = delta / distance_m[..., None]
    cos_theta = np.clip(np.einsum("...k,...ek->...e", unit, ears), -1.0, 1.0)  # [..., 2]
    return _sphere_series(freqs[:, None], distance_m[..., None, None], cos_theta[..., None, :],
                          radius_m, speed_of_sound, tol, None)


def _sphere_series(freqs_hz: ArrayLike, source_distance_m: ArrayLike, cos_theta: ArrayLike,
                   radius_m: float, speed_of_sound: float, tol: float,
                   max_terms: int | None) -> NDArray[np.complex128]:
    """Evaluate the series of the module docstring; ``cos_theta`` instead of degrees."""
    freqs = np.asarray(freqs_hz, dtype=float)
    dist = np.asarray(source_distance_m, dtype=float)
    x = np.asarray(cos_theta, dtype=float)
    if not (np.isfinite(radius_m) and radius_m > 0):
        raise ValueError(f"radius_m must be a positive finite number, got {radius_m!r}")
    if not (np.isfinite(speed_of_sound) and speed_of_sound > 0):
        raise ValueError(f"speed_of_sound must be a positive finite number, got {speed_of_sound!r}")
    if np.any(~np.isfinite(freqs) | (freqs < 0)):
        bad = float(freqs[~np.isfinite(freqs) | (freqs < 0)].flat[0])
        raise ValueError(f"freqs_hz must be finite and >= 0, got {bad!r}")
    if np.any(np.isnan(dist) | (dist <= radius_m)):
        bad = float(dist[np.isnan(dist) | (dist <= radius_m)].flat[0])
        raise ValueError(f"source_distance_m must exceed radius_m={radius_m!r} "
                         f"(source outside the sphere), got {bad!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    if max_terms is not None and (int(max_terms) != max_terms or max_terms < 1):
        raise ValueError(f"max_terms must be a positive integer or None, got {max_terms!r}")
    if max_terms is None and tol == 0:
        raise ValueError("tol=0 never converges: give max_terms to force a number of terms")

    freqs, rho, x = np.broadcast_arrays(freqs, dist / radius_m, x)
    shape = freqs.shape
    freqs, rho, x = freqs.ravel(), rho.ravel(), x.ravel()
    mu = 2 * np.pi * freqs * radius_m / speed_of_sound
    if max_terms is None:
        # Terms die super-exponentially once m > ka and geometrically like rho^{-m}
        # (near source); twice each estimate plus a margin, checked below.
        rho_min = float(np.min(rho, initial=np.inf))
        geometric = 0.0 if np.isinf(rho_min) else math.log(1 / tol) / math.log(rho_min)
        n_terms = int(60 + 2 * float(np.max(mu, initial=0.0)) + 2 * max(geometric, 0.0))
    else:
        n_terms = int(max_terms)

    out = np.empty(freqs.shape, complex)
    static = freqs == 0
    out[static] = _static_series(x[static], rho[static], tol, n_terms, max_terms is None)
    dyn = np.flatnonzero(~static)
    if dyn.size:
        out[dyn] = _dynamic_series(mu[dyn], rho[dyn], x[dyn], tol, n_terms, max_terms is None)
    return out.reshape(shape)


def _static_series(x: NDArray[np.float64], rho: NDArray[np.float64], tol: float, n_terms: int,
                   strict: bool) -> NDArray[np.float64]:
    """F = 0: potential flow around a rigid sphere, ``sum (2m+1)/(m+1) P_m(x) rho^{-m}``."""
    total = np.ones_like(x)
    p_prev, p_cur, rho_pow = np.zeros_like(x), np.ones_like(x), np.ones_like(x)
    small_prev = np.zeros(x.shape, bool)
    active = np.ones(x.shape, bool)                # per-element stop, as in the dynamic series
    for m in range(1, n_terms):
        if not active.any():
            break
        p_prev, p_cur = p_cur, ((2 * m - 1) * x * p_cur - (m - 1) * p_prev) / m
        rho_pow = rho_pow / rho
        term = (2 * m + 1) / (m + 1) * p_cur * rho_pow
        total = np.where(active, total + term, total)
        small = np.abs(term) <= tol * np.abs(total)
        active &= ~(small & small_prev)
        small_prev = small
    _check_converged(strict and bool(active.any()), tol, n_terms, 0.0, rho)
    return total


def _dynamic_series(mu: NDArray[np.float64], rho: NDArray[np.float64], x: NDArray[np.float64],
                    tol: float, n_terms: int, strict: bool) -> NDArray[np.complex128]:
    """F > 0: the ratio form of Duda & Martens' recurrence (module docstring)."""
    out = np.empty(mu.shape, complex)
    idx = np.arange(mu.size)                       # output positions of the working arrays
    finished = np.zeros(mu.shape, bool)            # converged, result already stored
    jmu = 1j * mu
    za = 1.0 / jmu
    zr = za / rho                                  # 0 for the plane wave (rho = inf)
    # m = 0: Q_{-1} = Q_0 = 1, so s_0 = 1, G_0 = 1, term 1 / (1 + j mu).
    s_a = np.ones(mu.shape, complex)               # s_m(z_a) = Q_{m-1}(z_a) / Q_m(z_a)
    s_r = np.ones(mu.shape, complex)               # same for z_r
    gain = np.ones(mu.shape, complex)              # G_m = Q_m(z_r) / Q_m(z_a)
    p_prev, p_cur = np.zeros_like(x), np.ones_like(x)    # Legendre P_{m-1}, P_m
    total = 1.0 / (1.0 + jmu)
    small_prev = np.zeros(mu.shape, bool)
    for m in range(1, n_terms):
        p_prev, p_cur = p_cur, ((2 * m - 1) * x * p_cur - (m - 1) * p_prev) / m
        s_a = 1.0 / ((2 * m - 1) * za + s_a)       # Q_{m-1} / Q_m
        q_r = (2 * m - 1) * zr + s_r
        gain = gain * q_r * s_a
        s_r = 1.0 / q_r
        term = (2 * m + 1) * p_cur * gain / (m + 1 + jmu * s_a)
        total = total + term
        small = np.abs(term) <= tol * np.abs(total)
        done = small & small_prev & ~finished
        small_prev = small
        if done.any():
            # Each element stops at its own convergence point (Duda & Martens'
            # test); finished ones are dropped from the work arrays in batches.
            out[idx[done]] = np.exp(jmu[done]) * total[done]
            finished |= done
            if finished.all():
                return out
            if 4 * np.count_nonzero(finished) >= finished.size:
                keep = ~finished
                # ignore[assignment]: the generator's element type is the union of these arrays' dtypes
                (idx, finished, jmu, za, zr, s_a, s_r, gain, x, p_prev, p_cur, total,
                 small_prev) = (v[keep] for v in (idx, finished, jmu, za, zr, s_a, s_r, gain,  # type: ignore[assignment]
                                                  x, p_prev, p_cur, total, small_prev))
    _check_converged(strict, tol, n_terms, float(np.max(jmu.imag)), rho)
    rest = ~finished
    out[idx[rest]] = np.exp(jmu[rest]) * total[rest]
    return out


def _check_converged(strict: bool, tol: float, n_terms: int, ka_max: float,
                     rho: NDArray[np.float64]) -> None:
    """Raise when the automatic term bound was reached (never expected)."""
    if strict:
        raise RuntimeError(f"rigid-sphere series did not converge to tol={tol!r} in {n_terms} "
                           f"terms (ka up to {ka_max:.3g}, r/a down to "
                           f"{float(np.min(rho, initial=np.inf)):.6g})")
