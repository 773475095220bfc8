"""landforge.parcels: road-network parcels, their labels and selection, LSI sample design.

Each step takes its data as arguments and its settings as one options model
(:mod:`landforge.parcels.options`), e.g. ``generate_parcels(roads, boundary,
ParcelOptions(clean_m=3), districts=districts)`` or ``generate_parcels(roads,
clean_m=3)``.
"""

from landforge.parcels.generate import (
    DEFAULT_WIDTHS_M,
    generate_parcels,
    load_widths,
    road_widths,
)
from landforge.parcels.label import label_parcels, load_label_mapping, map_labels
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
from landforge.parcels.options import (
    LabelOptions,
    ParcelConfig,
    ParcelOptions,
    PatchOptions,
    SampleDesignOptions,
    SelectOptions,
    TiledParcelOptions,
)
from landforge.parcels.poisson import patch_squares, poisson_disk, poisson_patches
from landforge.parcels.select import MSLU_AREA_RANGE, select_parcels, selection_report
from landforge.parcels.tiled import generate_parcels_tiled

__all__ = [
    "DEFAULT_WIDTHS_M",
    "MSLU_AREA_RANGE",
    "LabelOptions",
    "ParcelConfig",
    "ParcelOptions",
    "PatchOptions",
    "SampleDesign",
    "SampleDesignOptions",
    "SelectOptions",
    "TiledParcelOptions",
    "allocate",
    "class_lsi",
    "design_samples",
    "design_samples_array",
    "generate_parcels",
    "generate_parcels_tiled",
    "label_parcels",
    "largest_remainder",
    "load_label_mapping",
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
