"""Monthly Sentinel-2-like and Sentinel-1-like stacks of a synthetic city at 10 m.

Each 10 m pixel is a linear mixture of cover fractions (roofs, road, paving, soil,
grass, trees, crop, water) measured on a 2 m rasterisation of the true vectors. Vegetated
covers follow an NDVI season (grass and deciduous trees peak in July; cropland has two
seasons, winter wheat in April and rice in August, with bare soil after each harvest).
Clouds are smooth random blobs, more of them in the summer monsoon months. Sentinel-1
backscatter mixes per-cover sigma0 in linear power and adds multi-look speckle.

With a second epoch (:class:`SeriesChange`), every changed parcel switches from its
first-epoch to its second-epoch parcel and buildings in its own month (``changes.csv``,
column ``series_month``), so the series sees the change happen between the two dates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio import features
from scipy.special import ndtri

from landforge.io.raster import RasterGrid, write_cog
from landforge.synth.imagery import burn_mask, ground_cover
from landforge.synth.layout import CityFrame, component_rng, smooth_noise

__all__ = [
    "S2_BANDS",
    "SeriesChange",
    "cover_fractions",
    "month_names",
    "monthly_fractions",
    "write_sentinel1",
    "write_sentinel2",
]

S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
_COVERS = ("roof", "road", "paved", "soil", "grass", "trees", "crop", "water")
# Surface reflectance (0-1) per cover and band; vegetation rows are the seasonal peak.
_SPECTRA = np.array(
    [
        [0.10, 0.11, 0.13, 0.15, 0.16, 0.17, 0.18, 0.19, 0.20, 0.20, 0.24, 0.22],  # roof
        [0.07, 0.075, 0.085, 0.095, 0.10, 0.105, 0.11, 0.115, 0.12, 0.12, 0.14, 0.13],  # road
        [0.12, 0.13, 0.15, 0.17, 0.18, 0.19, 0.20, 0.21, 0.21, 0.21, 0.26, 0.24],  # paved
        [0.08, 0.09, 0.12, 0.16, 0.19, 0.21, 0.23, 0.24, 0.25, 0.25, 0.33, 0.30],  # soil
        [0.03, 0.04, 0.08, 0.04, 0.12, 0.30, 0.38, 0.42, 0.43, 0.43, 0.22, 0.11],  # grass
        [0.02, 0.03, 0.06, 0.03, 0.09, 0.25, 0.32, 0.36, 0.37, 0.37, 0.17, 0.08],  # trees
        [0.03, 0.04, 0.09, 0.035, 0.13, 0.35, 0.45, 0.50, 0.51, 0.50, 0.24, 0.12],  # crop
        [0.07, 0.06, 0.05, 0.03, 0.025, 0.015, 0.012, 0.01, 0.009, 0.008, 0.005, 0.004],  # water
    ],
    np.float32,
)
_CLOUD = np.array(
    [0.45, 0.47, 0.48, 0.49, 0.50, 0.50, 0.50, 0.51, 0.51, 0.35, 0.40, 0.30], np.float32
)
# Sentinel-1 sigma0 (dB) per cover: VV, VH. Roofs are bright by double bounce.
_S1_DB = np.array(
    [[-6, -13], [-16, -24], [-12, -20], [-13, -21], [-11, -17], [-8, -14], [-13, -21], [-22, -29]],
    np.float32,
)


def month_names(start_month: str, months: int) -> list[str]:
    """``YYYY-MM`` names of ``months`` consecutive months from ``start_month``."""
    year, month = (int(v) for v in start_month.split("-"))
    out = []
    for k in range(months):
        m = month - 1 + k
        out.append(f"{year + m // 12:04d}-{m % 12 + 1:02d}")
    return out


def _vigour(month: int) -> np.ndarray:
    """Green vigour (0-1) of grass, trees and crop in calendar ``month`` (1-12)."""
    phase = np.cos(2 * np.pi * (month - 7) / 12)
    grass = 0.55 + 0.4 * phase
    trees = 0.75 + 0.2 * phase
    crop = 0.08 + 0.9 * max(np.exp(-((month - 4) ** 2) / 2.0), np.exp(-((month - 8) ** 2) / 1.5))
    return np.array([grass, trees, crop], np.float32)


def cover_fractions(
    grid10: RasterGrid,
    parcels: gpd.GeoDataFrame,
    road_polygons: np.ndarray,
    buildings: gpd.GeoDataFrame,
) -> np.ndarray:
    """Fractions (8, H, W) of the covers in ``_COVERS`` per 10 m pixel, from a 2 m raster."""
    k = 5
    left, _, _, top = grid10.bounds
    fine = RasterGrid.from_bounds(
        left, top - grid10.height * 10, left + grid10.width * 10, top, 10 / k, grid10.crs
    )
    shape, tf = fine.shape, fine.transform
    pidx = features.rasterize(
        zip(parcels.geometry.to_numpy(), range(1, len(parcels) + 1), strict=True),
        out_shape=shape,
        transform=tf,
        fill=0,
        dtype="int32",
    )
    road = burn_mask(road_polygons, shape, tf)
    roof = burn_mask(buildings.geometry.to_numpy(), shape, tf)
    codes = [None, *parcels["use_secondary"].tolist()]
    covers = [ground_cover(c) for c in codes]
    green = np.array([c[1] for c in covers], np.float32)[pidx]
    tree = np.array([c[2] for c in covers], np.float32)[pidx]
    water = np.array([c == "E1" for c in codes])[pidx]
    crop = np.array([c == "E2" for c in codes])[pidx]
    soil_ground = np.array([c in (None, "E2", "E9", "M2", "X0") for c in codes])[pidx]
    open_ = (~road & ~roof).astype(np.float32)
    veg = open_ * green * ~water
    f = np.zeros((8, *shape), np.float32)
    f[0] = roof
    f[1] = road & ~roof
    f[6] = veg * crop
    f[4] = veg * ~crop * (1 - tree)
    f[5] = veg * ~crop * tree
    f[7] = open_ * water
    bare = open_ * (1 - green) * ~water
    f[3] = bare * soil_ground
    f[2] = bare * ~soil_ground
    h, w = grid10.shape
    return f.reshape(8, h, k, w, k).mean(axis=(2, 4))


def _grid10(frame: CityFrame, crs: object) -> RasterGrid:
    return RasterGrid.from_bounds(*frame.bounds, res=10.0, crs=crs)


@dataclass(frozen=True)
class SeriesChange:
    """The second epoch as the series sees it.

    Attributes:
        parcels, buildings: the city at the second date.
        switch: changed parcel id -> index of the first month (0-based) that shows it
            at its second-epoch state; an index >= the number of months never does.
    """

    parcels: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    switch: Mapping[int, int]


def monthly_fractions(
    grid10: RasterGrid,
    parcels: gpd.GeoDataFrame,
    road_polygons: np.ndarray,
    buildings: gpd.GeoDataFrame,
    months: int,
    change: SeriesChange | None = None,
) -> Iterator[np.ndarray]:
    """Cover fractions (8, H, W) of each month: the first epoch, changed parcels switched.

    Recomputed only in the months where some parcel switches.
    """
    frac, done = cover_fractions(grid10, parcels, road_polygons, buildings), frozenset[int]()
    for k in range(months):
        switched = frozenset(
            pid for pid, first in (change.switch.items() if change else ()) if first <= k
        )
        if switched != done:
            assert change is not None
            p = pd.concat(
                [
                    parcels[~parcels["parcel_id"].isin(switched)],
                    change.parcels[change.parcels["parcel_id"].isin(switched)],
                ]
            )
            b = pd.concat(
                [
                    buildings[~buildings["parcel_id"].isin(switched)],
                    change.buildings[change.buildings["parcel_id"].isin(switched)],
                ]
            )
            frac, done = cover_fractions(grid10, p, road_polygons, b), switched
        yield frac


def write_sentinel2(
    out: Path,
    frame: CityFrame,
    parcels: gpd.GeoDataFrame,
    road_polygons: np.ndarray,
    buildings: gpd.GeoDataFrame,
    crs: object,
    seed: int,
    months: int,
    start_month: str,
    change: SeriesChange | None = None,
) -> list[Path]:
    """Write ``s2/YYYY-MM.tif``: 12 bands uint16 reflectance x 10000 + band 13 cloud (0/1)."""
    grid = _grid10(frame, crs)
    fractions = monthly_fractions(grid, parcels, road_polygons, buildings, months, change)
    rng = component_rng(seed, "sentinel2")
    paths = []
    for name, frac in zip(month_names(start_month, months), fractions, strict=True):
        month = int(name[5:])
        vig = _vigour(month)
        spectra = _SPECTRA.copy()
        for row, v in zip((4, 5, 6), vig, strict=True):  # vegetation: soil <-> peak
            spectra[row] = _SPECTRA[3] * (1 - v) + _SPECTRA[row] * v
        refl = np.einsum("khw,kb->bhw", frac, spectra)
        refl *= rng.normal(1.0, 0.02, (12, 1, 1)).astype(np.float32)  # atmosphere
        refl *= 1 + rng.normal(0, 0.03, refl.shape).astype(np.float32)  # noise
        # clouds: wetter summer months are cloudier
        cover = float(np.clip(rng.beta(0.7, 2.5) + (0.2 if 5 <= month <= 9 else 0.0), 0, 0.95))
        field = smooth_noise(rng, grid.shape, 25.0)
        field = (field - field.mean()) / (field.std() + 1e-6)
        thr = ndtri(1 - cover) if cover > 0.005 else np.inf
        alpha = np.clip((field - thr) / 0.6 + 0.5, 0, 1).astype(np.float32)  # soft edges
        shadow = np.roll(alpha, (3, -3), axis=(0, 1)) * (1 - alpha)
        refl = refl * (1 - 0.5 * shadow) * (1 - alpha) + _CLOUD[:, None, None] * alpha
        cloud = (alpha > 0.5).astype(np.uint16)
        dn = np.clip(np.round(refl * 10000), 1, 65535).astype(np.uint16)
        path = out / f"{name}.tif"
        write_cog(
            path,
            np.concatenate([dn, cloud[None]]),
            grid,
            band_descriptions=[*S2_BANDS, "cloud"],
            tags={"date": f"{name}-15", "scale": 10000, "cloud_cover": round(cover, 3)},
        )
        paths.append(path)
    return paths


def write_sentinel1(
    out: Path,
    frame: CityFrame,
    parcels: gpd.GeoDataFrame,
    road_polygons: np.ndarray,
    buildings: gpd.GeoDataFrame,
    crs: object,
    seed: int,
    months: int,
    start_month: str,
    change: SeriesChange | None = None,
) -> list[Path]:
    """Write ``s1/YYYY-MM.tif``: VV, VH float32 sigma0 in dB."""
    grid = _grid10(frame, crs)
    fractions = monthly_fractions(grid, parcels, road_polygons, buildings, months, change)
    rng = component_rng(seed, "sentinel1")
    looks = 4.4
    paths = []
    for name, frac in zip(month_names(start_month, months), fractions, strict=True):
        vig = _vigour(int(name[5:]))
        db = _S1_DB.copy()
        db[6] = _S1_DB[6] + vig[2] * np.array([4.0, 6.0])  # crop canopy raises backscatter
        db[4] = _S1_DB[4] + (vig[0] - 0.5) * np.array([2.0, 3.0])
        lin = np.einsum("khw,kp->phw", frac, 10 ** (db / 10)).astype(np.float32)
        lin *= rng.gamma(looks, 1 / looks, lin.shape).astype(np.float32)  # speckle
        out_db = (10 * np.log10(np.maximum(lin, 1e-5))).astype(np.float32)
        path = out / f"{name}.tif"
        write_cog(
            path,
            out_db,
            grid,
            band_descriptions=["VV", "VH"],
            tags={"date": f"{name}-15", "units": "dB"},
        )
        paths.append(path)
    return paths
