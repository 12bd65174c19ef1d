"""mdpl.ils."""
