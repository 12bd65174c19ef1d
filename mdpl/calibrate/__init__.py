"""mdpl.calibrate."""
