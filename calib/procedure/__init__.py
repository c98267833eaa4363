"""calib.procedure."""
