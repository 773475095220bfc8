"""Values shared by the predictor and the readers of its outputs (no heavy imports)."""

from __future__ import annotations

__all__ = ["NODATA_CLASS", "PROB_SCALE", "CLASSES_TAG"]

NODATA_CLASS = 255
"""Nodata of class maps (and of uint8 probabilities)."""

PROB_SCALE = 254
"""uint8 probabilities store ``round(p * 254)``; 255 stays free for nodata."""

CLASSES_TAG = "LANDFORGE_CLASSES"
"""GeoTIFF tag holding ``{"value": "class name"}`` as JSON."""
