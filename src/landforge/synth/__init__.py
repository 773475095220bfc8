"""Seeded synthetic cities: true vectors, imagery, labels, time series, second epoch.

``make_city(out_dir, seed=0, size_m=3000, gsd=0.5)`` writes a whole city (see
docs/synth.md); its options are :class:`~landforge.synth.options.CityOptions`. The
component modules (roads, parcels, buildings, pois, imagery, sentinel, population,
change) can be used alone.

Attributes are imported lazily, so that the CLI reads the options model without
importing geopandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CityInfo", "CityOptions", "city_statistics", "make_city"]

_WHERE = {
    "CityInfo": "city",
    "CityOptions": "options",
    "city_statistics": "city",
    "make_city": "city",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"landforge.synth.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'landforge.synth' has no attribute {name!r}")
