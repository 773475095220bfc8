"""Patch tiling, scene clustering and texture search on the Brandenburg scene (docs/curation.md).

    python benchmarks/curate_realdata.py --out runs/curate

Tiles the Sentinel-2 scene into 64-px patches with the 8 OSM classes as label bins,
clusters them (combined features, quantile 0.1) and checks how often a patch's nearest
neighbour by texture alone (LBP histogram) has the same dominant OSM class, against
the chance agreement of a random neighbour. Patches with >= 50 % labelled pixels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landforge.curate.cluster import cluster_patches
from landforge.curate.similar import similar_patches
from landforge.curate.tiles import tile_frames

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brandenburg_s2"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/curate"))
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    d = DATA / "derived_geotiff"
    if not d.is_dir():
        raise SystemExit(f"error: {d}: shared sample data not found")
    a.out.mkdir(parents=True, exist_ok=True)
    patches = a.out / "patches.parquet"
    table = tile_frames(
        [d / "S2L1C_20170216_10m_B02_B03_B04_B08.tif"], patches,
        [d / "osm_landuse_water_10m_labels.tif"], size=a.size, bins=8,
    )  # fmt: skip
    rep = cluster_patches(
        patches, a.out / "clusters.parquet", features="combined", quantile=0.1, rgb=[3, 2, 1],
        report=a.out / "clusters.json", sheet=a.out / "clusters.png",
    )  # fmt: skip
    labels = [c for c in table.columns if c.startswith("label_")]
    keep = table[table["labelled_fraction"] >= 0.5]
    dominant = dict(zip(keep["patch_id"], keep[labels].to_numpy().argmax(axis=1), strict=True))
    result = {"patches": len(table), "clusters": rep["sizes"], "queries": len(dominant)}
    for feats in ("texture", "combined"):
        found = similar_patches(patches, patches=list(dominant), k=50, features=feats)
        found = found[found["patch_id"].isin(dominant)].sort_values("rank")
        first = found.groupby("query_id").head(1)
        pairs = zip(first["query_id"], first["patch_id"], strict=True)
        result[f"nn_agreement_{feats}"] = float(
            np.mean([dominant[q] == dominant[p] for q, p in pairs])
        )
    shares = np.bincount(list(dominant.values())) / len(dominant)
    result["chance_agreement"] = float((shares**2).sum())
    result["majority_share"] = float(shares.max())
    (a.out / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
