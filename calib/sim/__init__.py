"""calib.sim."""
