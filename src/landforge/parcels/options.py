"""Options models of the parcel and sample-design stages (defaults live only here).

One model per step: :class:`ParcelOptions` (``generate_parcels``; also importable as
``ParcelConfig``), :class:`TiledParcelOptions` (``generate_parcels_tiled``),
:class:`LabelOptions` (``label_parcels``), :class:`SelectOptions` (``select_parcels``),
:class:`SampleDesignOptions` (``design_samples``) and :class:`PatchOptions`
(``poisson_patches``). Data (roads, boundary, POIs, districts, parcels) are arguments of
the functions, never options.

No heavy imports: the CLI builds its flags from these models at start-up (a CRS given
as text is checked with pyproj when it is validated, not on import).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from landforge.config import XY, FloatMap, Options, SchedulerAddress, check_dask_choice
from landforge.errors import OptionError

__all__ = [
    "MSLU_AREA_RANGE",
    "CrsText",
    "LabelOptions",
    "ParcelConfig",
    "ParcelOptions",
    "PatchOptions",
    "SampleDesignOptions",
    "SelectOptions",
    "TiledParcelOptions",
]

#: Optimal parcel area range (m2) of the MSLU-100K paper.
MSLU_AREA_RANGE: tuple[float, float] = (38931.315, 676818.47)


def _crs_text(value: Any) -> Any:
    """A CRS as text: ``4326`` / ``"4326"`` -> ``"EPSG:4326"``; a pyproj CRS -> its string.

    Anything else pyproj understands (``"EPSG:32650"``, WKT, PROJ strings) is checked
    and kept as given; an unknown CRS is a validation error.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a CRS like 4326 or EPSG:32650, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        value = f"EPSG:{int(value)}"
    from pyproj import CRS  # checked on validation only: this module stays light
    from pyproj.exceptions import CRSError

    if not isinstance(value, str):
        try:
            return CRS.from_user_input(value).to_string()
        except CRSError:
            raise ValueError(f"not a CRS: {value!r}") from None
    try:
        CRS.from_user_input(value)
    except CRSError:
        raise ValueError(f"unknown CRS {value!r} (e.g. 4326 or EPSG:32650)") from None
    return value


#: A CRS: an EPSG code (``4326``), ``"EPSG:32650"``, WKT or a pyproj CRS (kept as text).
CrsText = Annotated[str, BeforeValidator(_crs_text)]


def _pair(value: Any) -> Any:
    """``"0.7,0.3"`` or ``"0.7:0.3"`` -> two numbers; sequences pass through."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(":", ",").split(",") if p.strip()]
        if len(parts) != 2:
            raise ValueError(f"expected two numbers like 0.7,0.3; got {value!r}")
        return parts
    return value


# ---------------------------------------------------------------- generate
class ParcelOptions(Options):
    """How parcels are cut from a road network (``generate_parcels``).

    Roads are buffered by half their roadbed width, removed from the boundary and the
    blocks opened by ``clean_m``; see :mod:`landforge.parcels.generate`.
    """

    widths: FloatMap = Field(
        default_factory=dict,
        description="Roadbed width (m) by road class, e.g. residential=10,service=4; "
        "over the built-in table.",
    )
    default_width_m: float = Field(
        8.0, ge=0, description="Width (m) of a road class not in the table (one warning)."
    )
    class_col: str = Field(
        "road_class", description="Road class column; falls back to OSM 'highway'."
    )
    width_col: str = Field(
        "width_m", description="Per-road width column (m) that wins over the class table."
    )
    clean_m: float = Field(
        5.0, ge=0, description="Opening distance (m): -x/+x buffer of each block; 0 = none."
    )
    min_area_m2: float = Field(100.0, ge=0, description="Drop parcels below this area (m2).")
    keep_tunnels: bool = Field(
        False, description="Let roads tagged as tunnels cut parcels too (default: dropped)."
    )
    quad_segs: int = Field(4, ge=1, description="Segments per quarter circle of the road buffers.")
    crs: CrsText | None = Field(
        None,
        description="Working and output CRS; default: a projected input's CRS, else the "
        "local UTM zone.",
    )
    centre: XY | None = Field(
        None, description="City centre X,Y for dist_centre_m; default estimated."
    )
    centre_crs: CrsText | None = Field(
        None, description="CRS of the centre (EPSG code); default the roads' CRS."
    )
    centre_method: Literal["density", "centroid"] = Field(
        "density",
        description="Without a centre: density (road/POI density peak) or centroid "
        "(of the boundary).",
    )
    centre_cell_m: float = Field(100.0, gt=0, description="Grid cell (m) of the centre density.")
    centre_bandwidth_m: float = Field(
        500.0, gt=0, description="Gaussian bandwidth (m) of the centre density."
    )
    district_col: str = Field(
        "district_id", description="Id column of the districts (else row number + 1)."
    )

    @field_validator("widths")
    @classmethod
    def _widths_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, width in value.items():
            if not (math.isfinite(width) and width >= 0):
                raise ValueError(f"width of {name!r} must be >= 0, got {width!r}")
        return value


#: The options of :func:`~landforge.parcels.generate.generate_parcels` (former name).
ParcelConfig = ParcelOptions


class TiledParcelOptions(ParcelOptions):
    """:class:`ParcelOptions` plus the tiling of ``generate_parcels_tiled``."""

    tile_m: float = Field(2000.0, gt=0, allow_inf_nan=False, description="Side of a tile core (m).")
    overlap_m: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Margin (m) round each core; default 500. A tile where a block is "
        "larger is re-done with the margin doubled.",
    )


# ---------------------------------------------------------------- label
class LabelOptions(Options):
    """How parcels take the majority class of land-use polygons (``label_parcels``)."""

    col: str = Field(description="Class column of the land-use polygons.")
    taxonomy: str | None = Field(
        None, description="Mapping applied to the class column first, e.g. osm_mslu."
    )
    min_coverage: float = Field(
        0.3, ge=0, le=1, description="Leave parcels less covered than this unlabelled."
    )
    mixed_threshold: float = Field(
        0.6, ge=0, le=1, description="Flag a parcel mixed below this majority share."
    )


# ---------------------------------------------------------------- select
class SelectOptions(Options):
    """Area filter and centre-weighted draw of parcels (``select_parcels``, MSLU-100K)."""

    min_area_m2: float = Field(
        MSLU_AREA_RANGE[0], ge=0, description="Smallest area (m2), MSLU default; 0 = none."
    )
    max_area_m2: float = Field(
        MSLU_AREA_RANGE[1], ge=0, description="Largest area (m2), MSLU default; 0 = none."
    )
    n: int | None = Field(None, ge=1, description="Parcels to draw; default all.")
    fraction: float | None = Field(
        None, gt=0, le=1, description="Share of the filtered parcels to draw instead of n."
    )
    weights: Annotated[tuple[float, float], BeforeValidator(_pair)] = Field(
        (0.7, 0.3), description="Distance,random weight mix."
    )
    dispersion: float = Field(
        0.5, gt=0, description="Distance decay as a fraction of the largest distance."
    )
    seed: int = Field(0, description="Random seed.")
    centre: XY | None = Field(
        None,
        description="City centre X,Y of the distance weight; default the centre recorded "
        "by parcels generate, else (with a warning) the parcels' area-weighted centroid.",
    )
    centre_crs: CrsText | None = Field(
        None, description="CRS of the centre (EPSG code); default the parcels' CRS."
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: tuple[float, float]) -> tuple[float, float]:
        a, b = value
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0 or a + b <= 0:
            raise ValueError(f"need two weights >= 0, not both 0; got {a:g},{b:g}")
        return value

    @field_validator("centre")
    @classmethod
    def _finite_centre(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(math.isfinite(v) for v in value):
            raise ValueError(f"need two finite coordinates, got {value[0]:g},{value[1]:g}")
        return value

    @model_validator(mode="after")
    def _one_size(self) -> SelectOptions:
        if self.n is not None and self.fraction is not None:
            raise OptionError("fraction", "give at most one of n and fraction")
        if self.centre_crs is not None and self.centre is None:
            raise OptionError("centre_crs", "give the centre it applies to as well")
        lo, hi = self.area_range()
        if lo is not None and hi is not None and lo > hi:
            raise OptionError("min_area_m2", f"min {lo:g} > max {hi:g}")
        return self

    def area_range(self) -> tuple[float | None, float | None]:
        """(min, max) area in m2, None for an open end (an option of 0)."""
        return (self.min_area_m2 or None, self.max_area_m2 or None)


# ---------------------------------------------------------------- LSI sample design
class SampleDesignOptions(Options):
    """LSI-stratified sample sites on a land-cover raster (``design_samples``)."""

    n: int = Field(ge=1, description="Total number of sample sites.")
    unit_size_m: float = Field(
        gt=0, description="Side of the square grid units (raster CRS units)."
    )
    region_col: str | None = Field(
        None, description="Column naming the regions; default the row number."
    )
    nodata: float | None = Field(None, description="Nodata class; default the raster's nodata.")
    seed: int = Field(0, description="Random seed of the site pixels.")
    standard: Literal["sqrt", "fragstats"] = Field(
        "sqrt", description="LSI standard: sqrt (0.25E/sqrt A) or fragstats."
    )
    block: int = Field(
        1024,
        ge=1,
        description="The raster is read in windows of about this many pixels a side "
        "(memory grows with its square).",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Count windows on a local Dask cluster of N single-threaded processes "
        "(0: in this process).",
    )
    scheduler: SchedulerAddress = Field(
        None, description="Count windows on a running Dask scheduler, e.g. tcp://host:8786."
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> SampleDesignOptions:
        check_dask_choice(self.workers, self.scheduler)
        return self


# ---------------------------------------------------------------- patches
class PatchOptions(Options):
    """Poisson-disk patch centres inside parcels (``poisson_patches``)."""

    patch_size_m: float = Field(gt=0, description="Patch side in metres.")
    radius_m: float | None = Field(
        None, gt=0, description="Minimum distance between centres (default: the patch size)."
    )
    min_inside: float = Field(
        1.0, gt=0, le=1, description="Smallest share of a patch inside its parcel."
    )
    max_per_parcel: int | None = Field(
        None, ge=1, description="Keep at most this many patches per parcel."
    )
    seed: int = Field(0, description="Random seed.")
    id_col: str = Field("parcel_id", description="Parcel id column.")
