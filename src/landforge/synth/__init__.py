"""landforge.synth."""
