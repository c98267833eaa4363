"""calib.capture."""
