"""examples/osm_parcels.yaml on the real Helsinki OSM extract (skipped without
../shared/data): road parcels labelled by OSM land use are graded 0-5 and reported."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from landforge.pipeline import run_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "osm_parcels.yaml"


@pytest.mark.realdata
@pytest.mark.slow  # ~20 s of CPU (parcels, embeddings, grading); minutes on a busy machine
def test_osm_example_grades_helsinki(shared_data: Path, tmp_path: Path) -> None:
    if not (shared_data / "osm" / "helsinki.osm.pbf").is_file():
        pytest.skip("helsinki.osm.pbf not in ../shared/data/osm")
    # a lighter embedding than the example's (speed only): same stages, same outputs
    fast = {"embed.walks_per_node": 2, "embed.epochs": 1, "embed.dim": 8}
    manifest = run_pipeline(EXAMPLE, tmp_path, overrides=fast)
    assert {s["status"] for s in manifest["stages"].values()} == {"done"}
    graded = gpd.read_parquet(tmp_path / "graded.parquet")
    labelled = graded["label"].notna()
    # unlabelled parcels are level 0; labelled ones with POIs are graded by cleanlab
    assert (graded.loc[~labelled, "level"] == 0).all()
    assert graded.loc[labelled, "level"].between(0, 5).all() and (graded["level"] >= 2).any()
    tables = json.loads((tmp_path / "grading.json").read_text())
    assert tables["summary"]["probabilities"] == "out_of_fold"
    layer = gpd.read_file(tmp_path / "errors.gpkg", layer="parcels")
    assert len(layer) == labelled.sum() and layer.crs == graded.crs
    assert "Dataset quality levels (cleanlab)" in (tmp_path / "report.html").read_text()
