"""landforge.features."""
