"""Tiny inputs for the grading tests: a predictions file as `parcels predict-classes`
writes it (GeoParquet: parcel_id, geometry, label, pred, prob_<class>, has_* flags,
area_m2) and a POI feature table keyed by parcel_id."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

CLASSES = ("R", "B", "E")


def parcels_frame(n_side: int = 8, seed: int = 0) -> gpd.GeoDataFrame:
    """n_side x n_side square parcels (40 m, 10 m apart): labels, probabilities, flags."""
    rng = np.random.default_rng(seed)
    n = n_side * n_side
    xs, ys = np.meshgrid(np.arange(n_side), np.arange(n_side))
    geoms = [
        shapely.box(400000 + 50 * x, 3400000 + 50 * y, 400040 + 50 * x, 3400040 + 50 * y)
        for x, y in zip(xs.ravel(), ys.ravel(), strict=True)
    ]
    label = rng.integers(0, len(CLASSES), n)
    probs = rng.dirichlet(np.ones(len(CLASSES)) * 0.5, n)
    df = gpd.GeoDataFrame(
        {"parcel_id": np.arange(1, n + 1), "label": np.array(CLASSES, dtype=object)[label]},
        geometry=geoms,
        crs="EPSG:32650",
    )
    df.loc[3, "label"] = None  # one parcel without a label: level 0
    df["pred"] = np.array(CLASSES, dtype=object)[probs.argmax(axis=1)]
    for k, c in enumerate(CLASSES):
        df[f"prob_{c}"] = probs[:, k]
    df["has_image"] = True
    df["has_poi"] = rng.random(n) > 0.2
    df["has_population"] = True
    df["area_m2"] = 1600.0
    return df


def features_frame(parcels: gpd.GeoDataFrame, seed: int = 0) -> pd.DataFrame:
    """POI-like features that separate the classes (plus noise)."""
    rng = np.random.default_rng(seed)
    code = {c: i for i, c in enumerate(CLASSES)}
    y = np.array([code.get(v, 0) if v is not None else 0 for v in parcels["label"]])
    x = rng.normal(0, 0.3, (len(parcels), 3)) + np.eye(len(CLASSES))[y] * 2
    out = pd.DataFrame(x, columns=["n_shop", "n_office", "n_park"])
    out.insert(0, "parcel_id", parcels["parcel_id"].to_numpy())
    out.insert(1, "n_pois", np.where(parcels["has_poi"].to_numpy(), 3, 0))
    return out


def write_inputs(root: Path) -> tuple[Path, Path]:
    """predictions.parquet and features.parquet under ``root``."""
    p = parcels_frame()
    pred = root / "predictions.parquet"
    p.to_parquet(pred)
    feats = root / "features.parquet"
    features_frame(p).to_parquet(feats)
    return pred, feats
