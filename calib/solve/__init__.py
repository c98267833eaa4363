"""calib.solve."""
