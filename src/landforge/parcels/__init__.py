"""landforge.parcels."""
