"""landforge.parcels: parcels from road networks, their labels and selection, and the LSI
sample design."""

from landforge.parcels.generate import (
    DEFAULT_WIDTHS_M,
    ParcelConfig,
    generate_parcels,
    load_widths,
    road_widths,
)
from landforge.parcels.label import label_parcels, map_labels
from landforge.parcels.lsi import (
    SampleDesign,
    allocate,
    class_lsi,
    design_samples,
    design_samples_array,
    largest_remainder,
    lsi,
    region_lsi,
)
from landforge.parcels.poisson import patch_squares, poisson_disk, poisson_patches
from landforge.parcels.select import MSLU_AREA_RANGE, select_parcels, selection_report
from landforge.parcels.tiled import generate_parcels_tiled

__all__ = [
    "DEFAULT_WIDTHS_M",
    "MSLU_AREA_RANGE",
    "ParcelConfig",
    "SampleDesign",
    "allocate",
    "class_lsi",
    "design_samples",
    "design_samples_array",
    "generate_parcels",
    "generate_parcels_tiled",
    "label_parcels",
    "largest_remainder",
    "load_widths",
    "lsi",
    "map_labels",
    "region_lsi",
    "road_widths",
    "select_parcels",
    "selection_report",
    "patch_squares",
    "poisson_disk",
    "poisson_patches",
]
