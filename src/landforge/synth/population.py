"""Hourly population density per parcel over one week (as from mobile-phone data).

Each use has a daily profile (share of its peak density by hour) for weekdays and for
weekends: homes are full at night and half empty in working hours, offices fill from
9 to 18 on weekdays, shops peak in the evening and at weekends, schools on weekday
daytimes, parks on weekend afternoons. Each parcel scales its profile by a lognormal
factor and every hour gets multiplicative noise.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from landforge.synth.layout import component_rng

__all__ = [
    "PEAK_DENSITY_KM2",
    "POPULATION_CELL_M",
    "daily_profile",
    "population_table",
    "write_population_rasters",
]

# Peak density (people per km²) by secondary use.
PEAK_DENSITY_KM2: dict[str, float] = {
    "R1": 8_000,
    "R2": 30_000,
    "R3": 40_000,
    "B1": 35_000,
    "B2": 45_000,
    "A1": 15_000,
    "A3": 25_000,
    "A5": 20_000,
    "G1": 6_000,
    "M1": 12_000,
    "M2": 8_000,
    "W1": 5_000,
    "S4": 8_000,
    "E1": 50,
    "E2": 300,
    "E9": 150,
    "X0": 2_000,
}

_H = np.arange(24)


def _bump(centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((_H - centre) / width) ** 2)


def _plateau(start: float, end: float, edge: float = 1.0) -> np.ndarray:
    return 1 / (1 + np.exp(-(_H - start) / edge * 2)) * 1 / (1 + np.exp((_H - end) / edge * 2))


def daily_profile(code: str, weekend: bool) -> np.ndarray:
    """Share (0-1) of the peak density for each hour 0-23 of one day."""
    kind = code[0] if code[0] in "RBMW" else code
    if kind == "R":
        day_dip = 0.25 if weekend else 0.5  # fewer leave home at weekends
        return np.clip(1.0 - day_dip * _plateau(8.5, 17.5) + 0.05 * _bump(20, 2), 0.05, 1)
    if code == "B2":
        return 0.05 + (0.25 if weekend else 0.95) * _plateau(9, 18)
    if kind == "B":
        return 0.05 + (0.9 if weekend else 0.6) * _plateau(10, 21.5) + 0.1 * _bump(19, 1.5)
    if kind in ("M", "W"):
        return 0.1 + (0.3 if weekend else 0.9) * _plateau(8, 17.5)
    if code == "A3":
        return 0.02 + (0.05 if weekend else 0.95) * _plateau(7.5, 16.5)
    if code in ("A1", "A5", "S4"):
        return 0.1 + (0.35 if weekend else 0.85) * _plateau(8.5, 17.5)
    if code == "G1":
        return 0.02 + (0.9 if weekend else 0.45) * _bump(15, 3) + 0.3 * _bump(7, 1)
    return 0.3 + 0.4 * _plateau(7, 18)  # farmland, natural land, water, unknown


def population_table(parcels: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    """Long table: parcel_id, day (0 = Monday .. 6), hour (0-23), density (people/km²)."""
    rng = component_rng(seed, "population")
    n = len(parcels)
    codes = parcels["use_secondary"].to_numpy()
    profiles = np.zeros((n, 7, 24), np.float32)
    cache: dict[tuple[str, bool], np.ndarray] = {}
    for i, code in enumerate(codes):
        for day in range(7):
            key = (str(code), day >= 5)
            if key not in cache:
                cache[key] = daily_profile(*key)
            profiles[i, day] = cache[key]
    mixed = parcels["mixed"].to_numpy() & parcels["use_secondary_2"].notna().to_numpy()
    for i in np.flatnonzero(mixed):
        second = str(parcels["use_secondary_2"].iloc[i])
        for day in range(7):
            profiles[i, day] = 0.7 * profiles[i, day] + 0.3 * daily_profile(second, day >= 5)
    peak = np.array([PEAK_DENSITY_KM2.get(str(c), 1000) for c in codes], np.float32)
    scale = rng.lognormal(0, 0.35, n).astype(np.float32)
    noise = rng.lognormal(0, 0.1, (n, 7, 24)).astype(np.float32)
    density = profiles * (peak * scale)[:, None, None] * noise
    return pd.DataFrame(
        {
            "parcel_id": np.repeat(parcels["parcel_id"].to_numpy().astype(np.int64), 7 * 24),
            "day": np.tile(np.repeat(np.arange(7, dtype=np.int8), 24), n),
            "hour": np.tile(np.arange(24, dtype=np.int8), 7 * n),
            "density": np.round(density.reshape(-1), 2),
        }
    )


#: Pixel size (m) of the hourly population rasters. MSLU's rasters are ~1.1 km; a
#: synthetic city of a few km would be a handful of such pixels, so ours are finer.
POPULATION_CELL_M = 250.0


def write_population_rasters(
    parcels: gpd.GeoDataFrame,
    table: pd.DataFrame,
    bounds: tuple[float, float, float, float],
    out_dir: Path,
    cell_m: float = POPULATION_CELL_M,
    day: int = 0,
) -> list[Path]:
    """One day of hourly density rasters (people/km², float32 COGs ``hour_HH.tif``).

    Each pixel is the area-weighted mean density of the parcels in it (roads and other
    land outside parcels count as 0), computed on a 10 m sub-grid: a coarse census of
    the table, as the paper's gridded mobile-phone densities are.
    """
    from rasterio.features import rasterize

    from landforge.io.raster import RasterGrid, write_cog

    left, bottom, right, top = bounds
    width = max(int(np.ceil((right - left) / cell_m)), 1)
    height = max(int(np.ceil((top - bottom) / cell_m)), 1)
    sub = max(int(round(cell_m / 10.0)), 1)
    grid = RasterGrid.from_bounds(
        left, top - height * cell_m, left + width * cell_m, top, cell_m, parcels.crs
    )
    fine_transform = grid.transform @ grid.transform.scale(1 / sub)
    owner = rasterize(
        ((g, i + 1) for i, g in enumerate(parcels.geometry.values) if g is not None),
        out_shape=(height * sub, width * sub),
        transform=fine_transform,
        fill=0,
        dtype="int32",
    )
    one_day = table[table["day"] == day]
    wide = one_day.pivot(index="parcel_id", columns="hour", values="density")
    dens = wide.reindex(parcels["parcel_id"].to_numpy()).to_numpy(np.float32)  # (n, 24)
    dens = np.vstack([np.zeros((1, dens.shape[1]), np.float32), np.nan_to_num(dens)])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for hour in range(dens.shape[1]):
        fine = dens[owner, hour]
        coarse = fine.reshape(height, sub, width, sub).mean(axis=(1, 3)).astype(np.float32)
        path = out_dir / f"hour_{hour:02d}.tif"
        write_cog(path, coarse, grid, band_descriptions=[f"density_h{hour:02d}"])
        paths.append(path)
    return paths
