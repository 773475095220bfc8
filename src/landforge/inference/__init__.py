"""landforge.inference."""
