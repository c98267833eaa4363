"""calib: measurement and calibration of multi-driver loudspeakers.

The chain is procedure -> rig -> measure -> fit -> verify -> report; see
``docs/README.md`` (the design documents) and the README.
"""

__version__ = "0.1.0"
