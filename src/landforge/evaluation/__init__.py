"""landforge.evaluation."""
