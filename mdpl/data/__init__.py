"""mdpl.data."""
