"""landforge.prep."""
