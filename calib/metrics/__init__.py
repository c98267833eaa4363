"""calib.metrics."""
