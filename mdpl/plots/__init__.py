"""mdpl.plots."""
