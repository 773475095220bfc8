"""landforge.datasets."""
