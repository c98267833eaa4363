"""calib.cli."""
