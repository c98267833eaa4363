"""Geometry types shared by every layer: where a dummy head stands.

Frame (AES69): x forward from the device, y to its left, z up; angles in
degrees, azimuth counter-clockwise seen from above.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadPosition:
    """A dummy-head placement in the device frame.

    Parameters
    ----------
    name : str
        Position name from the procedure (e.g. ``"centre"``).
    xyz_m : tuple of float
        Head centre (midpoint between the ears) in metres, device frame
        (x forward, y left, z up).
    yaw_deg : float
        Azimuth the listener faces, in the device frame; 180 means looking
        straight back at a device in front of them.
    """

    name: str
    xyz_m: tuple[float, float, float]
    yaw_deg: float
