"""calib.signals."""
