"""Values shared by the predictor and the readers of its outputs (no heavy imports)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NODATA_CLASS", "PROB_SCALE", "CLASSES_TAG", "tagged_class_names"]

NODATA_CLASS = 255
"""Nodata of class maps (and of uint8 probabilities)."""

PROB_SCALE = 254
"""uint8 probabilities store ``round(p * 254)``; 255 stays free for nodata."""

CLASSES_TAG = "LANDFORGE_CLASSES"
"""GeoTIFF tag holding ``{"value": "class name"}`` as JSON."""


def tagged_class_names(src: Any) -> dict[int, str] | None:
    """``value -> name`` from a class map's ``LANDFORGE_CLASSES`` tag, if it has one."""
    tag = src.tags().get(CLASSES_TAG)
    if not tag:
        return None
    try:
        return {int(k): str(v) for k, v in json.loads(tag).items()}
    except (ValueError, AttributeError):
        return None
