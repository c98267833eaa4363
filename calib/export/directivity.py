"""Directivity exports: CTA-2034 curves as CSV, the orbits as spinorama.org reads them, balloons.

Spinorama CSV (:func:`write_spinorama_csv`): one file per source, a
``Freq`` column (Hz) and one column per curve in dB, named as public
spinorama tools name them (spinorama.org, Klippel's CEA2034 export):
``On Axis``, ``Listening Window``, ``Early Reflections``, ``Sound Power``,
``Estimated In-Room Response``, ``Early Reflections DI``, ``Sound Power DI``,
then the five early-reflection components.

Orbits (:func:`write_orbit_txt`): the layout spinorama.org loads measured
speakers from (its ``spl_hv_txt`` format): a folder holding one file per
angle, ``<angle>_H.txt`` and ``<angle>_V.txt`` (-170 .. 180 deg), each a
``Freq dB`` header line and then ``frequency level`` rows.

Balloons (:func:`write_balloon_csv`, :func:`write_balloon_sofa`): a driver's
band levels on the measured azimuth x elevation grid (device frame, AES69
angles). The SOFA file follows the AES69 convention FreeFieldDirectivityTF
(1.1): the source is the device at the origin, the grid directions are the
``ReceiverPosition`` (spherical, at the arc radius), ``N`` the band centres,
``Data.Real`` the band rms pressure (Pa per full-scale input, or full
scale per full scale for an uncalibrated station), ``Data.Imag`` zero: band power averages keep no phase.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from calib.errors import CalibError
from calib.metrics.spinorama import CURVES, DI_CURVES, ORBIT_DEG, REFLECTION_CURVES
from calib.stages.spinorama import Spinorama
from calib.store.sofa import _sofar, _spherical

SPINORAMA_COLUMNS = ("Freq", *CURVES, *DI_CURVES, *REFLECTION_CURVES)


def _fresh(path: Path) -> Path:
    if path.exists():
        raise CalibError(f"{path}: exists; not overwritten (choose another output)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_csv(path: str | Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    """Return a new CSV file (never overwrites): the header row, then ``rows``."""
    path = _fresh(Path(path))
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def write_spinorama_csv(spin: Spinorama, source: str, path: str | Path) -> Path:
    """Write one source's curves as CSV (``Freq`` + one column per curve, dB); never overwrites."""
    curves = _source(spin, source)
    rows = (
        [f"{hz:.2f}", *(f"{curves[c][b]:.3f}" for c in SPINORAMA_COLUMNS[1:])] for b, hz in enumerate(spin.bands_hz)
    )
    return _write_csv(path, list(SPINORAMA_COLUMNS), rows)


def write_orbit_txt(spin: Spinorama, source: str, folder: str | Path) -> Path:
    """Write one source's orbits as ``<angle>_H.txt`` / ``<angle>_V.txt`` files into a new ``folder``."""
    _source(spin, source)
    folder = Path(folder)
    if folder.exists():
        raise CalibError(f"{folder}: exists; not overwritten (choose another output)")
    folder.mkdir(parents=True)
    for tag, orbit in zip("HV", spin.orbits_db[source], strict=True):
        for angle, levels in zip(ORBIT_DEG, orbit, strict=True):
            rows = "".join(f"{hz:.2f} {db:.3f}\n" for hz, db in zip(spin.bands_hz, levels, strict=True))
            (folder / f"{angle:.0f}_{tag}.txt").write_text("Freq dB\n" + rows)
    return folder


def write_balloon_csv(spin: Spinorama, driver: str, path: str | Path) -> Path:
    """Write a driver's balloon as CSV: ``azimuth_deg, elevation_deg`` then one dB column per band centre (Hz)."""
    levels = _balloon(spin, driver)
    rows = ([f"{az:g}", f"{el:g}", *(f"{v:.3f}" for v in levels[i, j])]
            for i, az in enumerate(spin.azimuth_deg) for j, el in enumerate(spin.elevation_deg))
    return _write_csv(path, ["azimuth_deg", "elevation_deg", *(f"{hz:.2f}" for hz in spin.bands_hz)], rows)


def write_balloon_sofa(spin: Spinorama, driver: str, path: str | Path, distance_m: float,
                       position_m: tuple[float, float, float] = (0.0, 0.0, 0.0), title: str = "") -> Path:
    """Write a driver's balloon as SOFA FreeFieldDirectivityTF (see the module docstring); never overwrites.

    Parameters
    ----------
    distance_m : float
        The arc radius (the receivers' distance from the turntable axis).
    position_m : (float, float, float)
        The driver's acoustic centre in the device frame (the emitter position).
    """
    levels = _balloon(spin, driver)
    sofar = _sofar()
    path = Path(path).with_suffix(".sofa")
    _fresh(path)
    az, el = np.meshgrid(spin.azimuth_deg, spin.elevation_deg, indexing="ij")
    sofa = sofar.Sofa("FreeFieldDirectivityTF")
    for optional in ("EmitterDescriptions", "Description"):  # string variables sofar 1.3 cannot write under numpy 2
        sofa.delete(optional)  # (the global attributes below describe the same)
    sofa.GLOBAL_Title = title or f"calib balloon of {driver}"
    sofa.GLOBAL_EmitterDescription = driver
    sofa.GLOBAL_Comment = ("band rms pressure on 1/12-octave bands (power averages, no phase); directions in the "
                           "device frame: x front, y left, z up")
    sofa.ReceiverPosition = _spherical(az.ravel(), el.ravel(), distance_m)
    sofa.ReceiverPosition_Type = "spherical"
    sofa.ReceiverPosition_Units = "degree, degree, metre"
    sofa.EmitterPosition = np.asarray([position_m], dtype=float)
    sofa.N = np.asarray(spin.bands_hz, dtype=float)
    pressure = spin.reference * 10.0 ** (levels.reshape(-1, levels.shape[-1]) / 20.0)  # [R, N]
    sofa.Data_Real = np.nan_to_num(pressure)[None]  # [M = 1, R, N]
    sofa.Data_Imag = np.zeros_like(sofa.Data_Real)
    sofar.write_sofa(str(path), sofa, compression=4)
    return path


def _source(spin: Spinorama, source: str) -> dict[str, np.ndarray]:
    if source not in spin.curves:
        raise CalibError(f"source {source!r}: expected one of {', '.join(spin.curves)}")
    return spin.curves[source]


def _balloon(spin: Spinorama, driver: str) -> np.ndarray:
    if driver not in spin.sphere_db:
        raise CalibError(f"driver {driver!r}: expected one of {', '.join(spin.sphere_db) or '(no driver balloons)'}")
    return spin.sphere_db[driver]


def export_unit_directivity(report, folder: str | Path) -> list[Path]:
    """Write every directivity export of a verified unit measured on the sphere into a new ``folder``.

    ``spin-<source>-<verified|predicted>.csv`` for C, L, R (both) and the
    drivers (predicted), ``orbits-<source>-<...>/`` alike, and per driver
    ``balloon-<driver>.csv`` and ``balloon-<driver>.sofa``.

    Raises
    ------
    CalibError
        If the unit's procedure did not measure the sphere, or ``folder`` exists.
    """
    from calib.procedure.layout import sphere_problem

    if not report.spinorama:
        raise CalibError(f"{report.files.get('verification', 'verification')}: no spinorama: "
                         f"{sphere_problem(report.procedure)}")
    folder = Path(folder)
    if folder.exists():
        raise CalibError(f"{folder}: exists; not overwritten (choose another output)")
    written = []
    for which, spin in report.spinorama.items():
        for source in spin.curves:  # verified: L, R, C; predicted: the drivers and L, R, C
            written.append(write_spinorama_csv(spin, source, folder / f"spin-{source}-{which}.csv"))
            written.append(write_orbit_txt(spin, source, folder / f"orbits-{source}-{which}"))
    predicted = report.spinorama["predicted"]
    position = {d.name: d.position_m for d in report.procedure.drivers}
    for driver in predicted.sphere_db:
        written.append(write_balloon_csv(predicted, driver, folder / f"balloon-{driver}.csv"))
        written.append(write_balloon_sofa(predicted, driver, folder / f"balloon-{driver}.sofa",
                                          report.procedure.arc.distance_m, position[driver],
                                          f"{report.procedure.product.name} unit {report.serial}: {driver}"))
    return written
