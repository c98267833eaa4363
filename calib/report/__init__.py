"""calib.report."""
