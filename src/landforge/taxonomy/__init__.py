"""landforge.taxonomy."""
