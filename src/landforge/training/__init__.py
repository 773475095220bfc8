"""landforge.training."""
