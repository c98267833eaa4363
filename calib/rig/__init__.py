"""calib.rig."""
