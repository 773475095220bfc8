"""Parcels get the majority class of their pixels: fast counts equal brute force."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from inference_helpers import grid_for
from rasterio.features import geometry_mask

from landforge.inference.parcels import assign_parcels
from landforge.io.raster import write_cog


def _parcels(grid) -> gpd.GeoDataFrame:
    left, bottom, right, top = grid.bounds
    geoms = []
    rng = np.random.default_rng(5)
    step = 8.0  # 16 px cells at 0.5 m, one parcel per cell
    for x in np.arange(left, right - step, step):
        for y in np.arange(bottom, top - step, step):
            kind = rng.integers(3)
            cx, cy = x + step / 2, y + step / 2
            if kind == 0:
                geoms.append(shapely.box(x + 0.3, y + 0.7, x + step - 0.9, y + step - 0.2))
            elif kind == 1:
                geoms.append(shapely.Point(cx, cy).buffer(rng.uniform(1, 3.9)))
            else:
                geoms.append(shapely.Polygon([(x + 0.2, y + 0.2), (x + 7.5, y + 1), (cx, y + 7.7)]))
    geoms.append(shapely.box(left + 0.01, top - 0.2, left + 0.1, top - 0.1))  # no pixel centre
    return gpd.GeoDataFrame({"parcel_id": np.arange(len(geoms))}, geometry=geoms, crs=grid.crs)


def test_majority_class_and_fractions_equal_brute_force(tmp_path: Path) -> None:
    grid = grid_for(70, 90)
    rng = np.random.default_rng(0)
    m = rng.choice([0, 1, 2, 3, 255], size=(70, 90), p=[0.3, 0.3, 0.2, 0.15, 0.05]).astype(np.uint8)
    write_cog(tmp_path / "map.tif", m, grid, nodata=255)
    probs = rng.dirichlet([1, 1, 1], size=(70, 90)).transpose(2, 0, 1).astype(np.float32)
    write_cog(tmp_path / "probs.tif", probs, grid, nodata=float("nan"))
    parcels = _parcels(grid)
    names = {1: "residential", 2: "commercial", 3: "industrial"}

    got = assign_parcels(
        parcels, tmp_path / "map.tif", class_names=names, probs_path=tmp_path / "probs.tif",
        block=16,
    )  # fmt: skip
    maxp = probs.max(axis=0)
    for i, geom in enumerate(parcels.geometry):
        inside = geometry_mask([geom], (70, 90), grid.transform, invert=True)
        cls = m[inside]
        keep = (cls != 0) & (cls != 255)
        counts = np.bincount(cls[keep], minlength=4)[1:]
        row = got.iloc[i]
        assert row["n_pixels"] == counts.sum()
        if counts.sum() == 0:
            assert pd.isna(row["class_value"]) and pd.isna(row["class_name"])
            assert np.isnan(row["confidence"])
            continue
        assert row["class_value"] == np.argmax(counts) + 1
        assert row["class_name"] == names[np.argmax(counts) + 1]
        for k, name in names.items():
            assert row[f"frac_{name}"] == pytest.approx(counts[k - 1] / counts.sum())
        assert row["confidence"] == pytest.approx(maxp[inside][keep].mean())
    assert got["class_value"].isna().sum() >= 1  # the tiny parcel

    # without probabilities the confidence is the majority fraction
    plain = assign_parcels(parcels, tmp_path / "map.tif", class_names=names)
    has = plain["n_pixels"] > 0
    np.testing.assert_allclose(
        plain.loc[has, "confidence"],
        plain.loc[has, [f"frac_{n}" for n in names.values()]].max(axis=1),
    )
