"""Fixtures of the labelling tests: a small pre-labelled parcel file and POIs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from labelling_helpers import make_parcels


@pytest.fixture
def parcels_file(tmp_path):
    path = tmp_path / "classes.parquet"
    make_parcels().to_parquet(path)
    return path


@pytest.fixture
def poi_file(tmp_path):
    rng = np.random.default_rng(1)
    pts = gpd.GeoSeries(
        gpd.points_from_xy(500000 + rng.random(40) * 900, 6670000 + rng.random(40) * 600),
        crs="EPSG:32635",
    ).to_crs(4326)
    path = tmp_path / "pois.csv"
    pd.DataFrame(
        {"lon": pts.x, "lat": pts.y, "category": rng.choice(["shop=bakery", "amenity=school"], 40)}
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def exported(tmp_path, parcels_file):
    """A 'label export' folder with three annotators and 25 % cross-checks."""
    from landforge.cli import main

    out = tmp_path / "tasks"
    args = ["label", "export", str(parcels_file), "--out", str(out), "--annotators",
            "ann1,ann2,ann3", "--batch-size", "4", "--patch-px", "64"]  # fmt: skip
    assert main(args) == 0
    return out
