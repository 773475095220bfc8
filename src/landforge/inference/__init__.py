"""landforge.inference: large-area prediction, post-processing, vectors and parcels.

- :func:`predict_raster` (``landforge predict``): sliding windows with centre crops,
  flip TTA, class map / probabilities / footprint probability as COGs.
- :func:`vectorize_buildings` (``landforge vectorize``): building polygons with use.
- :func:`assign_parcels`: majority class and class fractions per parcel.
- :func:`clean_class_map`: remove small objects and fill small holes per class.
- :func:`builtup_mask` (``landforge builtup``): union of settlement rasters on an image
  grid, the ``--mask`` of ``landforge predict``.
- :func:`predict_block`: the unit of work of block-wise prediction (Dask, resume); see
  :mod:`landforge.inference.blocks` and ``docs/scaling.md``.

Attributes are imported lazily so that vector-only work does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "predict_raster",
    "sliding_windows",
    "vectorize_buildings",
    "assign_parcels",
    "clean_class_map",
    "clean_class_map_file",
    "builtup_mask",
    "predict_block",
]

_WHERE = {
    "predict_raster": "predictor",
    "sliding_windows": "windows",
    "vectorize_buildings": "vectorize",
    "assign_parcels": "parcels",
    "clean_class_map": "postprocess",
    "clean_class_map_file": "postprocess",
    "builtup_mask": "builtup",
    "predict_block": "blocks",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"landforge.inference.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'landforge.inference' has no attribute {name!r}")
