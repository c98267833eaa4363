"""The speed of sound in the lab's air, from temperature, humidity and pressure.

Formula: O. Cramer, "The variation of the specific heat ratio and the speed
of sound in air with temperature, pressure, humidity, and CO2
concentration", J. Acoust. Soc. Am. 93(5), 2510-2516 (1993), eq. (15) with
the coefficients of its Table III; the water-vapour mole fraction from the
relative humidity with the saturation vapour pressure and enhancement
factor of R. S. Davis, Metrologia 29, 67-70 (1992) (as in the NPL
calculator and IEC 61094-2 Annex F). CO2 mole fraction 400 ppm (today's
air; Cramer's paper used 314 ppm). Valid for 0-30 degC and 75-102 kPa; the
station file is held to that range.

Every measurement file records the speed of sound its rig measured in
(attribute ``speed_of_sound_m_s``, with ``speed_of_sound_source`` saying
where it came from); files written before calib recorded it read as
:data:`DEFAULT_SPEED_OF_SOUND_M_S`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Used when nothing better is known: a station without ``[air]``, and files
#: written before the speed of sound was recorded (dry air at about 20 degC).
DEFAULT_SPEED_OF_SOUND_M_S = 343.0
#: Measurement-file attributes.
SPEED_OF_SOUND_ATTR = "speed_of_sound_m_s"
SPEED_OF_SOUND_SOURCE_ATTR = "speed_of_sound_source"
#: Range of validity of the formula (Cramer 1993; NPL).
TEMPERATURE_RANGE_C = (0.0, 30.0)
PRESSURE_RANGE_KPA = (75.0, 102.0)
STANDARD_PRESSURE_KPA = 101.325
CO2_MOLE_FRACTION = 400e-6

# Cramer (1993) Table III, a0..a15 (t in degC, p in Pa, mole fractions).
_A = (
    331.5024, 0.603055, -0.000528, 51.471935, 0.1495874, -0.000782,
    -1.82e-7, 3.73e-8, -2.93e-10, -85.20931, -0.228525, 5.91e-5,
    -2.835149, -2.15e-13, 29.179762, 0.000486,
)  # fmt: skip


def water_vapour_mole_fraction(temperature_c: float, relative_humidity_pct: float, pressure_pa: float) -> float:
    """Mole fraction of water vapour ``x_w = h f(p, t) p_sv(T) / p`` (Davis 1992)."""
    kelvin = temperature_c + 273.15
    p_sv = math.exp(1.2378847e-5 * kelvin**2 - 1.9121316e-2 * kelvin + 33.93711047 - 6.3431645e3 / kelvin)
    enhancement = 1.00062 + 3.14e-8 * pressure_pa + 5.6e-7 * temperature_c**2
    return relative_humidity_pct / 100.0 * enhancement * p_sv / pressure_pa


def speed_of_sound_m_s(
    temperature_c: float,
    relative_humidity_pct: float = 0.0,
    pressure_kpa: float = STANDARD_PRESSURE_KPA,
    co2_mole_fraction: float = CO2_MOLE_FRACTION,
) -> float:
    """Zero-frequency speed of sound in air (Cramer 1993, eq. 15).

    Parameters
    ----------
    temperature_c : float
        Air temperature, degC (0 to 30).
    relative_humidity_pct : float
        Relative humidity, percent (0: dry air).
    pressure_kpa : float
        Static pressure, kPa (75 to 102).
    co2_mole_fraction : float
        CO2 mole fraction.

    Returns
    -------
    float
        Speed of sound, m/s (331.45 m/s for dry air at 0 degC, 101.325 kPa, 314 ppm CO2).

    Raises
    ------
    ValueError
        Outside the formula's range of validity.
    """
    t, p = float(temperature_c), float(pressure_kpa) * 1e3
    lo, hi = TEMPERATURE_RANGE_C
    if not lo <= t <= hi:
        raise ValueError(f"expected a temperature of {lo:g} to {hi:g} degC (Cramer 1993 validity), got {t:g}")
    lo, hi = PRESSURE_RANGE_KPA
    if not lo <= pressure_kpa <= hi:
        raise ValueError(f"expected a pressure of {lo:g} to {hi:g} kPa (Cramer 1993 validity), got {pressure_kpa:g}")
    if not 0.0 <= relative_humidity_pct <= 100.0:
        raise ValueError(f"expected a relative humidity of 0 to 100 %, got {relative_humidity_pct:g}")
    a = _A
    xw = water_vapour_mole_fraction(t, relative_humidity_pct, p)
    xc = float(co2_mole_fraction)
    return (
        a[0] + a[1] * t + a[2] * t**2
        + (a[3] + a[4] * t + a[5] * t**2) * xw
        + (a[6] + a[7] * t + a[8] * t**2) * p
        + (a[9] + a[10] * t + a[11] * t**2) * xc
        + a[12] * xw**2 + a[13] * p**2 + a[14] * xc**2 + a[15] * xw * p * xc
    )  # fmt: skip


def recorded_speed_of_sound(attrs: Mapping[str, object]) -> float:
    """Return the speed of sound a measurement file recorded (its attributes), or the default for older files."""
    value = attrs.get(SPEED_OF_SOUND_ATTR)
    # ignore[arg-type]: an HDF5 attribute value (a numpy scalar); float() raises on anything else
    return DEFAULT_SPEED_OF_SOUND_M_S if value is None else float(value)  # type: ignore[arg-type]
