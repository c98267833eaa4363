"""Speed of sound from the station's air (Cramer 1993) and its record in measurement files."""

from __future__ import annotations

import math

import pytest
from numpy.testing import assert_allclose

from calib.procedure.air import (
    DEFAULT_SPEED_OF_SOUND_M_S,
    recorded_speed_of_sound,
    speed_of_sound_m_s,
    water_vapour_mole_fraction,
)
from calib.procedure.station_file import parse_station


def test_cramer_reference_values():
    # Cramer (1993): dry air, 0 degC, 101.325 kPa, 314 ppm CO2 -> 331.45 m/s (the paper's reference c0).
    assert_allclose(speed_of_sound_m_s(0.0, 0.0, 101.325, co2_mole_fraction=314e-6), 331.45, atol=0.01)
    # NPL speed-of-sound calculator (Cramer, Davis 1992, 400 ppm): 20 degC, 50 % RH, 101.325 kPa -> 343.99 m/s.
    assert_allclose(speed_of_sound_m_s(20.0, 50.0), 343.99, atol=0.01)


def test_dry_air_follows_the_ideal_gas_law_and_humidity_speeds_sound_up():
    # Dry air: c ~ sqrt(T) within 0.05 % over 0..30 degC (gamma and the molar mass hardly change).
    for t in (5.0, 15.0, 25.0, 30.0):
        ideal = speed_of_sound_m_s(0.0) * math.sqrt((t + 273.15) / 273.15)
        assert_allclose(speed_of_sound_m_s(t), ideal, rtol=5e-4)
    # Water vapour is lighter than air: 100 % RH at 30 degC is about 4.2 % of the molecules and ~+2.1 m/s.
    assert_allclose(water_vapour_mole_fraction(30.0, 100.0, 101325.0), 0.0424, atol=5e-4)
    assert 1.8 < speed_of_sound_m_s(30.0, 100.0) - speed_of_sound_m_s(30.0, 0.0) < 2.5


@pytest.mark.parametrize(("args", "match"), [
    ((31.0,), r"expected a temperature of 0 to 30 degC \(Cramer 1993 validity\), got 31"),
    ((20.0, 0.0, 110.0), r"expected a pressure of 75 to 102 kPa \(Cramer 1993 validity\), got 110"),
    ((20.0, 101.0), r"expected a relative humidity of 0 to 100 %, got 101"),
])
def test_out_of_range_raises(args, match):
    with pytest.raises(ValueError, match=match):
        speed_of_sound_m_s(*args)


def test_station_air_and_default():
    station = parse_station("[air]\ntemperature_c = 20.0\nrelative_humidity_pct = 50.0\n", source="b.toml")
    c, source = station.speed_of_sound()
    assert_allclose(c, 343.99, atol=0.01)
    assert source == "station [air]: 20 degC, 50 % RH, 101.325 kPa (Cramer 1993)"
    c, source = parse_station("", source="b.toml").speed_of_sound()
    assert c == DEFAULT_SPEED_OF_SOUND_M_S and source == "default (no [air] in b.toml)"
    dry = parse_station("[air]\ntemperature_c = 0.0\npressure_kpa = 101.325\n", source="b.toml")
    assert_allclose(dry.speed_of_sound()[0], speed_of_sound_m_s(0.0), rtol=0)
    assert "dry air" in dry.speed_of_sound()[1]


def test_recorded_speed_of_sound():
    assert recorded_speed_of_sound({"speed_of_sound_m_s": 346.5}) == 346.5
    assert recorded_speed_of_sound({}) == DEFAULT_SPEED_OF_SOUND_M_S  # files from before it was recorded
