"""Label rasters of a synthetic city, rasterised from its true vectors.

All on the image grid: land use (MSLU primary values, roads = S, 0 outside the
boundary), building footprint (0/1) and building use (rci: 1 residential, 2 commercial,
3 industrial, 0 background).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio import features

from landforge.io.raster import RasterGrid
from landforge.synth.parcels import PRIMARY_VALUE

__all__ = ["RCI_VALUE", "landuse_raster", "footprint_raster", "building_use_raster"]

RCI_VALUE: dict[str, int] = {"residential": 1, "commercial": 2, "industrial": 3}


def landuse_raster(
    grid: RasterGrid, boundary: shapely.Geometry, parcels: gpd.GeoDataFrame
) -> np.ndarray:
    """uint8 MSLU primary values; everything inside the boundary that is no parcel is road."""
    out = features.rasterize(
        [(boundary, PRIMARY_VALUE["S"])],
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )
    if len(parcels):
        features.rasterize(
            zip(parcels.geometry.to_numpy(), parcels["value"].astype(int), strict=True),
            out=out,
            transform=grid.transform,
        )
    return out


def footprint_raster(grid: RasterGrid, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """uint8 0/1 building footprint."""
    if not len(buildings):
        return np.zeros(grid.shape, np.uint8)
    return features.rasterize(
        ((g, 1) for g in buildings.geometry.to_numpy()),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )


def building_use_raster(grid: RasterGrid, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """uint8 rci values of building pixels, 0 elsewhere."""
    if not len(buildings):
        return np.zeros(grid.shape, np.uint8)
    values = buildings["use"].map(RCI_VALUE).astype(int)
    return features.rasterize(
        zip(buildings.geometry.to_numpy(), values, strict=True),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )
