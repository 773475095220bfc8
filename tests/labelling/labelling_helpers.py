"""Helpers of the labelling tests: a small pre-labelled parcel frame."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

CLASSES = ["R", "B", "A", "M", "E"]


def make_parcels(n: int = 24, seed: int = 0) -> gpd.GeoDataFrame:
    """n box parcels on a grid (UTM 35N) with a true label, a prediction and probabilities."""
    rng = np.random.default_rng(seed)
    geoms = [
        shapely.box(500000 + (i % 6) * 150, 6670000 + (i // 6) * 150,
                    500000 + (i % 6) * 150 + 100, 6670000 + (i // 6) * 150 + 60)
        for i in range(n)
    ]  # fmt: skip
    label = np.array(CLASSES)[np.arange(n) % len(CLASSES)]
    pred = np.where(rng.random(n) < 0.75, label, np.array(CLASSES)[rng.integers(0, 5, n)])
    probs = rng.dirichlet(np.ones(len(CLASSES)), n)
    for i, p in enumerate(pred):  # the predicted class has the largest probability
        j = CLASSES.index(p)
        probs[i, j] = probs[i].max() + 0.1
    probs /= probs.sum(axis=1, keepdims=True)
    frame = gpd.GeoDataFrame(
        {
            "parcel_id": [f"p{i:03d}" for i in range(n)],
            "label": label,
            "pred": pred,
            **{f"prob_{c}": probs[:, k] for k, c in enumerate(CLASSES)},
            "has_poi": rng.random(n) < 0.5,
            "area_m2": [g.area for g in geoms],
            "level": rng.integers(0, 6, n),
        },
        geometry=geoms,
        crs="EPSG:32635",
    )
    return frame
