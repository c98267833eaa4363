"""calib.store."""
