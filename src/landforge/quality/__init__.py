"""landforge.quality."""
