"""Tiling and scene clustering on the real Brandenburg Sentinel-2 scene (skipped when absent)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest

from landforge.cli import main

pytestmark = pytest.mark.realdata


def test_brandenburg_patches_and_clusters(shared_data, tmp_path, monkeypatch, capsys):
    d = shared_data / "brandenburg_s2" / "derived_geotiff"
    image, labels = (
        d / "S2L1C_20170216_10m_B02_B03_B04_B08.tif",
        d / "osm_landuse_water_10m_labels.tif",
    )
    if not image.is_file():
        pytest.skip(f"{image} not found")
    monkeypatch.chdir(tmp_path)
    # 128-px patches of the 1536 x 768 scene: 12 x 6 = 72 patches, 8 OSM classes as bins
    argv = ["--image", str(image), "--labels", str(labels), "--size", "128", "--bins", "8"]
    assert main(["curate", "tiles", *argv, "--lbp-points", "8", "--lbp-radius", "1"]) == 0
    table = gpd.read_parquet("patches.parquet")
    assert len(table) == 72 and table.crs.to_epsg() == 32633
    labelled = table["labelled_fraction"]
    assert 0.1 < labelled.mean() < 0.6  # ~70 % of the scene is unlabelled
    hist = table[[f"label_{v}" for v in range(1, 9)]].to_numpy()
    assert np.allclose(hist.sum(axis=1)[labelled > 0], 1.0)
    assert (
        main(
            [
                "curate",
                "cluster",
                "--tiles",
                "patches.parquet",
                "--features",
                "combined",
                "--quantile",
                "0.15",
                "--sheet",
                "none",
            ]
        )
        == 0
    )
    rep = json.loads((tmp_path / "clusters.json").read_text())
    assert rep["n_patches"] == 72 and rep["n_clusters"] >= 2
    assert sum(rep["sizes"].values()) == 72
    # the water-dominated patches (value 7) do not all fall into the largest cluster
    clustered = gpd.read_parquet("clusters.parquet")
    water = clustered[clustered["label_7"] > 0.5]
    if len(water):
        assert (water["cluster"] != 0).any()
    capsys.readouterr()
