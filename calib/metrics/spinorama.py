"""CTA-2034-A ("spinorama") curves from the horizontal and vertical orbits.

ANSI/CTA-2034-A (2015), *Standard Method of Measurement for In-Home
Loudspeakers*, sections 5.2-5.3 and Appendix C. The device is measured on two
orbits through its reference axis at 10 degree steps:

- horizontal angle ``h`` (about the vertical axis): direction
  ``(cos h, sin h, 0)`` in the device frame (AES69: x front, y left, z up);
- vertical angle ``v`` (about the lateral axis, positive up): direction
  ``(cos v, 0, sin v)``.

Each orbit has 36 angles -170..180 deg; 0 and 180 deg are on both, so the
orbits hold 70 distinct directions. Every curve is a spatial average of
*pressure magnitudes* in the rms sense, ``sqrt(sum w_i |p_i|^2 / sum w_i)``:

- On Axis: ``h = 0``.
- Listening Window (LW): ``v = 0, +-10``, ``h = +-10, +-20, +-30`` (9 curves, equal weights).
- Early reflections, each an rms average:
  floor bounce ``v = -20, -30, -40``; ceiling bounce ``v = 40, 50, 60``;
  front wall ``h = 0, +-10, +-20, +-30``; side wall ``h = +-40 .. +-80``;
  rear wall ``h = 180, +-90 .. +-170`` (CTA-2034-A; CEA-2034 of 2013 printed
  only ``180, +-90``). The Early Reflections curve (ER) is the rms average of the five.
- Sound Power (SP): the weighted rms average of the 70 directions with the
  weights of Appendix C, :func:`sound_power_weights`.
- Predicted (estimated) In-Room Response: ``PIR^2 = 0.12 LW^2 + 0.44 ER^2 + 0.44 SP^2``
  (squared pressures weighted, then converted back, as the standard says).
- Directivity indices: ``ERDI = LW - ER``, ``SPDI = LW - SP`` (dB).

All functions are vectorized over trailing axes; the orbit axis comes first and
frequency last (``[A, ..., F]``). Levels are ``10 log10`` of the averaged
``|p|^2`` relative to ``reference`` squared (1 by default: dB re the input's unit).
"""

from __future__ import annotations

import numpy as np

from calib.metrics.bands import power_db
from calib.metrics.beam import wrap_deg

__all__ = [
    "CURVES",
    "DI_CURVES",
    "ORBIT_DEG",
    "REFLECTION_CURVES",
    "orbit_directions",
    "orbit_sound_power_weights",
    "orbits_from_sphere",
    "reference_rotation",
    "sphere_mean_power",
    "sound_power_weights",
    "spinorama",
    "square_solid_angle",
]

ORBIT_DEG = np.arange(-170.0, 181.0, 10.0)
"""The 36 angles of each orbit, degrees (-170 .. 180)."""

CURVES = ("On Axis", "Listening Window", "Early Reflections", "Sound Power", "Estimated In-Room Response")
"""The spinorama's level curves, in the names public tools (spinorama.org, Klippel exports) use."""
DI_CURVES = ("Early Reflections DI", "Sound Power DI")
"""The two directivity indices (dB, plotted on the right axis)."""
REFLECTION_CURVES = ("Floor Bounce", "Ceiling Bounce", "Front Wall Bounce", "Side Wall Bounce", "Rear Wall Bounce")
"""The five early-reflection components."""

_TENS = np.arange(10.0, 180.0, 10.0)
# (orbit, angles): "h" horizontal, "v" vertical; CTA-2034-A section 5.2.
LISTENING_WINDOW = (("v", (0.0, 10.0, -10.0)), ("h", (10.0, -10.0, 20.0, -20.0, 30.0, -30.0)))
REFLECTIONS = {
    "Floor Bounce": (("v", (-20.0, -30.0, -40.0)),),
    "Ceiling Bounce": (("v", (40.0, 50.0, 60.0)),),
    "Front Wall Bounce": (("h", (0.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0)),),
    "Side Wall Bounce": (("h", tuple(s * a for a in (40.0, 50.0, 60.0, 70.0, 80.0) for s in (1, -1))),),
    "Rear Wall Bounce": (("h", (180.0, *(s * a for a in _TENS[8:] for s in (1, -1)))),),
}
PIR_WEIGHTS = {"Listening Window": 0.12, "Early Reflections": 0.44, "Sound Power": 0.44}


def orbit_directions(angles_deg: np.ndarray, orbit: str) -> np.ndarray:
    """Return unit vectors ``[A, 3]`` (device frame) of orbit angles; ``orbit`` is ``"h"`` or ``"v"``."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=float))
    zero = np.zeros_like(a)
    if orbit == "h":
        return np.stack([np.cos(a), np.sin(a), zero], axis=-1)
    if orbit == "v":
        return np.stack([np.cos(a), zero, np.sin(a)], axis=-1)
    raise ValueError(f"orbit must be 'h' (horizontal) or 'v' (vertical), got {orbit!r}")


def square_solid_angle(half_width_deg: np.ndarray | float) -> np.ndarray:
    """Solid angle (sr) of the front region ``|h| <= a`` and ``|v| <= a`` bounded by the two orbits' planes.

    The region is the direction cone of a square of half-side ``tan a`` at unit
    distance: ``4 arcsin(sin^2 a)`` (solid angle of a rectangle seen from a point
    on its normal through the centre, ``4 arcsin(sin a sin b)``). 2 pi at 90 deg.
    """
    a = np.deg2rad(np.asarray(half_width_deg, dtype=float))
    return 4.0 * np.arcsin(np.sin(a) ** 2)


def sound_power_weights(angles_deg: np.ndarray) -> np.ndarray:
    """CTA-2034-A Appendix C weight of an orbit angle (the same on both orbits).

    The sphere is cut into nested "squares" around the front and rear axes
    (:func:`square_solid_angle`): the 0 (and 180) deg point weighs the square
    of half-width 5 deg, a point at ``t = 10 .. 80`` deg from the nearer axis
    the ring between ``t - 5`` and ``t + 5``, the 90 deg point the ring from 85
    deg to the 90 deg boundary on both hemispheres. Divided by ``16 pi``, the
    scale of the standard's table (0.000604486 on axis, 0.019629373 at 90 deg;
    the four points of a ring each carry the ring's whole area, so the 70
    weights sum to 0.99637, not 1). Only ratios matter: the average divides by
    the sum of the weights.
    """
    a = np.abs(wrap_deg(angles_deg))
    t = np.minimum(a, 180.0 - a)  # angle from the nearer of the front and rear axes
    if not np.allclose(t, np.round(t / 10.0) * 10.0, atol=1e-6):
        raise ValueError(f"sound power weights exist for multiples of 10 deg only, "
                         f"got {np.asarray(angles_deg).tolist()}")
    lo = square_solid_angle(np.maximum(t - 5.0, 0.0)) * (t > 0)
    hi = np.where(t >= 90.0, 2.0 * np.pi, square_solid_angle(np.minimum(t + 5.0, 90.0)))
    ring = np.where(t >= 90.0, 2.0 * (hi - lo), hi - lo)
    return ring / (16.0 * np.pi)


def orbit_sound_power_weights(h_deg: np.ndarray, v_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the orbits' angles for the 70-point sound power (0 and 180 deg counted once, on the horizontal)."""
    wv = sound_power_weights(v_deg)
    shared = np.isclose(np.abs(wrap_deg(v_deg)) % 180.0, 0.0)
    return sound_power_weights(h_deg), np.where(shared, 0.0, wv)


def _index(angles_deg: np.ndarray, target: float, orbit: str) -> int:
    diff = np.abs(wrap_deg(np.asarray(angles_deg, float) - target))
    i = int(np.argmin(diff))
    if diff[i] > 0.5:
        name = "horizontal" if orbit == "h" else "vertical"
        raise ValueError(f"the {name} orbit has no angle at {target:g} deg (within 0.5 deg), "
                         f"got {np.round(np.asarray(angles_deg, float), 3).tolist()}")
    return i


def _rms(power: dict[str, np.ndarray], angles: dict[str, np.ndarray],
         selection: tuple[tuple[str, tuple[float, ...]], ...]) -> np.ndarray:
    """Mean of ``|p|^2`` over the selected orbit angles (equal weights)."""
    rows = [power[o][_index(angles[o], a, o)] for o, values in selection for a in values]
    return np.mean(rows, axis=0)


def spinorama(horizontal: np.ndarray, vertical: np.ndarray, h_deg: np.ndarray = ORBIT_DEG,
              v_deg: np.ndarray = ORBIT_DEG, reference: float = 1.0) -> dict[str, np.ndarray]:
    """Return the CTA-2034-A curves of one source.

    Parameters
    ----------
    horizontal, vertical : array_like [A, ..., F]
        Pressure on the horizontal and vertical orbits (complex or magnitude)
        at the angles ``h_deg`` and ``v_deg`` (each must hold every angle the
        standard uses: -170 .. 180 deg at 10 deg steps).
    h_deg, v_deg : array_like [A]
        Orbit angles, degrees.
    reference : float
        Pressure that reads 0 dB (e.g. 20e-6 for dB SPL from pascals).

    Returns
    -------
    dict
        :data:`CURVES`, :data:`REFLECTION_CURVES` (dB) and :data:`DI_CURVES`
        (dB), each ``[..., F]``.
    """
    angles = {"h": np.asarray(h_deg, float), "v": np.asarray(v_deg, float)}
    power = {"h": np.abs(np.asarray(horizontal)) ** 2, "v": np.abs(np.asarray(vertical)) ** 2}
    for o, name in (("h", "horizontal"), ("v", "vertical")):
        if angles[o].ndim != 1 or power[o].shape[:1] != angles[o].shape:
            raise ValueError(f"{name} must have shape [A, ..., F] with A={angles[o].size} angles, got {power[o].shape}")
    if power["h"].shape[1:] != power["v"].shape[1:]:
        raise ValueError(f"horizontal and vertical must agree past the angle axis, got {power['h'].shape} and "
                         f"{power['v'].shape}")
    curves = {"On Axis": power["h"][_index(angles["h"], 0.0, "h")],
              "Listening Window": _rms(power, angles, LISTENING_WINDOW)}
    for name, selection in REFLECTIONS.items():
        curves[name] = _rms(power, angles, selection)
    curves["Early Reflections"] = np.mean([curves[n] for n in REFLECTION_CURVES], axis=0)
    idx = {o: [_index(angles[o], a, o) for a in ORBIT_DEG] for o in "hv"}
    wh, wv = orbit_sound_power_weights(ORBIT_DEG, ORBIT_DEG)
    weighted = np.tensordot(wh, power["h"][idx["h"]], axes=1) + np.tensordot(wv, power["v"][idx["v"]], axes=1)
    curves["Sound Power"] = weighted / (wh.sum() + wv.sum())
    curves["Estimated In-Room Response"] = sum(w * curves[n] for n, w in PIR_WEIGHTS.items())
    out = {name: power_db(value, reference**2) for name, value in curves.items()}
    out["Early Reflections DI"] = out["Listening Window"] - out["Early Reflections"]
    out["Sound Power DI"] = out["Listening Window"] - out["Sound Power"]
    return out


def reference_rotation(axis_deg: tuple[float, float]) -> np.ndarray:
    """Rotation ``[3, 3]`` taking the device front (+x) to the reference axis ``[azimuth, elevation]`` (degrees).

    A tilt up by the elevation about the lateral axis, then a turn by the
    azimuth about the vertical: the reference's "up" stays in the vertical
    plane of the axis (for an up-firing axis it is the device's back).
    """
    az, el = np.deg2rad(np.asarray(axis_deg, dtype=float))
    ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
    turn = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])
    tilt = np.array([[ce, 0.0, -se], [0.0, 1.0, 0.0], [se, 0.0, ce]])
    return turn @ tilt


def orbits_from_sphere(pattern: np.ndarray, azimuth_deg: np.ndarray, elevation_deg: np.ndarray,
                       axis_deg: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Return the two orbits about a reference axis, sampled from a sphere measured on an azimuth x elevation grid.

    A turntable turning the device under an arc of microphones at several
    elevations measures the directions ``(azimuth a, elevation e)``. About the
    device front the horizontal orbit is ``e = 0`` and the vertical orbit the
    meridian through the front and the back (``v`` in [-90, 90] at ``(0, v)``,
    ``v > 90`` at ``(180, 180 - v)``). About another axis
    (:func:`reference_rotation`, e.g. a driver's own axis) the orbits are
    rotated with it; every direction must be a grid point within 0.5 deg (the
    poles are one point at any azimuth), there is no interpolation.

    Parameters
    ----------
    pattern : array_like [A, E, ..., F]
    azimuth_deg : array_like [A]
    elevation_deg : array_like [E]
    axis_deg : (float, float)
        Reference axis ``[azimuth, elevation]``, degrees.

    Returns
    -------
    horizontal, vertical : ndarray [36, ..., F]
        On :data:`ORBIT_DEG`.
    """
    pattern = np.asarray(pattern)
    az, el = np.asarray(azimuth_deg, float), np.asarray(elevation_deg, float)
    if pattern.shape[:2] != (az.size, el.size):
        raise ValueError(f"pattern must have shape [A, E, ..., F] with A={az.size}, E={el.size}, got {pattern.shape}")
    rot = reference_rotation(axis_deg)

    def at(u: np.ndarray) -> np.ndarray:
        e = float(np.rad2deg(np.arcsin(np.clip(u[2], -1.0, 1.0))))
        j = int(np.argmin(np.abs(el - e)))
        if abs(el[j] - e) > 0.5:
            raise ValueError(f"the sphere grid has no elevation at {e:.4g} deg (within 0.5 deg), got {el.tolist()}")
        if abs(el[j]) > 89.5:  # a pole: every azimuth is the same direction
            return pattern[0, j]
        a = float(np.rad2deg(np.arctan2(u[1], u[0])))
        diff = np.abs(wrap_deg(az - a))
        i = int(np.argmin(diff))
        if diff[i] > 0.5:
            raise ValueError(f"the sphere grid has no azimuth at {a:.4g} deg (within 0.5 deg), got {az.tolist()}")
        return pattern[i, j]

    h, v = (np.stack([at(rot @ u) for u in orbit_directions(ORBIT_DEG, o)]) for o in "hv")
    return h, v


def sphere_mean_power(power: np.ndarray, azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Mean of ``power`` over the whole sphere from an azimuth x elevation grid (the true sound power, up to 4 pi r^2).

    Each elevation row stands for the band between the midpoints to its
    neighbours (the poles for the outermost rows), of solid angle
    ``2 pi (sin e_hi - sin e_lo)``, shared evenly by its azimuths (a uniform
    full circle). A reference for the 70-point :func:`spinorama` sound power.

    Parameters
    ----------
    power : array_like [A, E, ..., F]
        ``|p|^2`` on the grid.
    azimuth_deg : array_like [A]
        A full circle at a uniform step.
    elevation_deg : array_like [E]
        Ascending, within [-90, 90].
    """
    power = np.asarray(power, dtype=float)
    az, el = np.asarray(azimuth_deg, float), np.asarray(elevation_deg, float)
    if power.shape[:2] != (az.size, el.size):
        raise ValueError(f"power must have shape [A, E, ..., F] with A={az.size}, E={el.size}, got {power.shape}")
    steps = np.diff(np.sort(np.mod(az, 360.0)))
    if az.size < 2 or not np.allclose(np.r_[steps, 360.0 - np.ptp(np.mod(az, 360.0))], 360.0 / az.size, atol=1e-6):
        raise ValueError(f"azimuth_deg must be a full circle at a uniform step, got {az.tolist()}")
    if np.any(np.diff(el) <= 0) or el[0] < -90.0 or el[-1] > 90.0:
        raise ValueError(f"elevation_deg must ascend within [-90, 90], got {el.tolist()}")
    edges = np.deg2rad(np.r_[-90.0, 0.5 * (el[1:] + el[:-1]), 90.0])
    band = np.diff(np.sin(edges)) / 2.0  # fraction of the sphere per elevation row (sums to 1)
    return np.tensordot(band, power.mean(axis=0), axes=1)
