"""Options model of the product comparison (``landforge compare``); defaults live here.

No heavy imports: the CLI builds its flags from this model at start-up.
"""

from __future__ import annotations

from pydantic import Field

from landforge.config import Options

__all__ = ["CompareOptions"]


class CompareOptions(Options):
    """How an external land-cover product is compared with a landforge map.

    UBGG compares its blue-green-gray map with public products after reclassifying
    them into its classes (UGS = trees + grass + farmland, UBS = water, UIS =
    impervious). The product's legend is a taxonomy mapping (e.g.
    ``esa_worldcover_ubgg``) from its class system to the target system; the map's
    values are the target system's unless ``map_legend`` maps them too.
    """

    legend: str = Field(
        description="Mapping (name or YAML path) from the product's classes to the target "
        "classes, e.g. esa_worldcover_ubgg, esri_lulc_ubgg, globeland30_ubgg."
    )
    map_legend: str | None = Field(
        None,
        description="Mapping (or class system) of the landforge map's values; default: "
        "the values of the legend's target system (e.g. ubgg).",
    )
    level: int = Field(
        0, ge=0, description="Target level compared (0: first level, e.g. UBS/UGS/UIS)."
    )
    focus: str = Field(
        "UGS",
        min_length=1,
        description="Target class of the difference map: under = product has it and the "
        "map not, over = the map has it and the product not.",
    )
    resample: bool = Field(
        False,
        description="Warp the product onto the map's grid (nearest) when the grids differ; "
        "without it, differing grids are an error.",
    )
    band: int = Field(1, ge=1, description="1-based band of the landforge map.")
    product_band: int = Field(1, ge=1, description="1-based band of the product.")
    block: int = Field(1024, ge=16, description="Rows per block of the windowed pass.")
