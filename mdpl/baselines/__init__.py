"""mdpl.baselines."""
