"""mdpl.ensemble."""
