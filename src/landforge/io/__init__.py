"""Input/output: rasters (windows, COG), vectors, atomic writes."""

from landforge.io.atomic import atomic_dir, atomic_path
from landforge.io.raster import (
    RasterGrid,
    check_same_grid,
    iter_blocks,
    open_raster,
    read_grid,
    read_raster,
    resample_to_grid,
    write_cog,
)
from landforge.io.vector import local_utm_crs, read_vector, to_metric, write_vector

__all__ = [
    "RasterGrid",
    "atomic_dir",
    "atomic_path",
    "check_same_grid",
    "iter_blocks",
    "local_utm_crs",
    "open_raster",
    "read_grid",
    "read_raster",
    "read_vector",
    "resample_to_grid",
    "to_metric",
    "write_cog",
    "write_vector",
]
