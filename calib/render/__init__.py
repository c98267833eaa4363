"""calib.render."""
