"""Options model of the synthetic city (``landforge synth city``); defaults live only here.

No heavy imports: the CLI builds its flags from this model at start-up (the CRS is
checked with pyproj, imported when a value is validated).
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from landforge.config import Options
from landforge.errors import OptionError

__all__ = ["MAX_PIXELS_SIDE", "CityOptions"]

#: 20 km at 0.5 m: beyond this the in-memory renderer is unwise
MAX_PIXELS_SIDE = 40_000


class CityOptions(Options):
    """What :func:`~landforge.synth.city.make_city` generates.

    The same options and seed give byte-identical files.
    """

    seed: int = Field(0, ge=0, description="Random seed; the same seed gives the same files.")
    size_m: float = Field(3000.0, description="Side of the square extent, metres (>= 200).")
    gsd: float = Field(0.5, description="Pixel size of the image and labels, metres.")
    crs: str = Field("EPSG:32650", description="Projected metric CRS of the outputs.")
    x0: float = Field(400_000.0, description="Left edge of the extent in the CRS.")
    y0: float = Field(3_400_000.0, description="Bottom edge of the extent in the CRS.")
    mixed_rate: float = Field(0.10, ge=0, le=1, description="Share of mixed-use parcels.")
    change_rate: float = Field(
        0.07, ge=0, le=1, description="Share of parcels changing by epoch 2."
    )
    use_ambiguity: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of urban parcels whose buildings' size, shape, height and roof "
        "palette are drawn from a use-independent (pooled) model; 0 = appearance by use. "
        "Against the building-use paper's imagery-only F1 the calibrated range is 0-0.25 "
        "(docs/synth.md).",
    )
    t2: bool = Field(True, description="Write the second epoch (t2/).")
    s2: bool = Field(True, description="Write the monthly Sentinel-2 stack (s2/).")
    s1: bool = Field(True, description="Write the monthly Sentinel-1 stack (s1/).")
    population: bool = Field(
        True, description="Write the hourly population.parquet and population/hour_HH.tif."
    )
    months: int = Field(25, ge=1, description="Number of monthly Sentinel scenes.")
    start_month: str = Field(
        "2023-01",
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="First month of the Sentinel scenes, YYYY-MM.",
    )
    quiet: bool = Field(False, description="No progress bar.")

    @field_validator("crs")
    @classmethod
    def _projected_metric(cls, value: str) -> str:
        from pyproj import CRS  # validated here so a pipeline fails before it starts
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(value)
        except CRSError:
            raise ValueError(f"unknown CRS {value!r}") from None
        if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
            raise ValueError(f"{value} is not a projected CRS in metres (try EPSG:32650)")
        return value

    @model_validator(mode="after")
    def _check_extent(self) -> CityOptions:
        size, gsd = self.size_m, self.gsd
        if not math.isfinite(size) or size <= 0:
            raise OptionError("size_m", f"must be a positive number of metres, got {size}")
        if size < 200:
            raise OptionError("size_m", f"a city needs at least 200 m, got {size:g}")
        if not math.isfinite(gsd) or gsd <= 0:
            raise OptionError("gsd", f"must be a positive pixel size in metres, got {gsd}")
        if gsd > size / 16:
            raise OptionError("gsd", f"{gsd:g} m is too coarse for a {size:g} m city")
        if size / gsd > MAX_PIXELS_SIDE:
            raise OptionError(
                "size_m",
                f"{size / gsd:.0f} pixels a side is too large; use a larger gsd "
                f"or at most {MAX_PIXELS_SIDE * gsd:.0f} m",
            )
        return self
