"""A tiny synthetic city with parcel POI features, shared by the parcel-classifier tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``synth city`` (600 m, 2 m pixels, population) + ``parcels features`` output."""
    import geopandas as gpd

    from landforge.features.parcel_features import parcel_poi_features
    from landforge.synth.city import make_city

    out = tmp_path_factory.mktemp("parcel_city") / "city"
    make_city(out, seed=2, size_m=600, gsd=2.0, t2=False, s2=False, s1=False, quiet=True)
    parcels = gpd.read_file(out / "parcels.gpkg")
    pois = gpd.read_parquet(out / "pois.parquet")
    feats = parcel_poi_features(parcels, pois, category_col="gbt_category")
    feats.to_parquet(out / "features.parquet", index=False)
    return out
