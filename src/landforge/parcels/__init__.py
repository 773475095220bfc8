"""landforge.parcels: parcels from road networks, and parcel labels from land-use polygons."""

from landforge.parcels.generate import (
    DEFAULT_WIDTHS_M,
    ParcelConfig,
    generate_parcels,
    load_widths,
    road_widths,
)
from landforge.parcels.label import label_parcels, map_labels

__all__ = [
    "DEFAULT_WIDTHS_M",
    "ParcelConfig",
    "generate_parcels",
    "label_parcels",
    "load_widths",
    "map_labels",
    "road_widths",
]
