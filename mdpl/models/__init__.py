"""mdpl.models."""
