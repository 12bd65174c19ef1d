"""mdpl.evaluate."""
