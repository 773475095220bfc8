"""The demo path end to end on a tiny city: every stage real, every output openable."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import rasterio

from landforge.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--size-m",
            "500",
            "--train-minutes",
            "0.1",
            "--set",
            "train.max_steps=3",
        ]
    )
    assert code == 0
    return out


def test_demo_writes_map_buildings_metrics_and_report(demo_run):
    with rasterio.open(demo_run / "map.tif") as src:
        assert src.crs is not None and src.crs.to_epsg() == 32650
        assert src.dtypes[0] == "uint8" and src.colormap(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    buildings = gpd.read_file(demo_run / "buildings.gpkg")
    assert buildings.crs.to_epsg() == 32650
    assert {"use", "area_m2"} <= set(buildings.columns)
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert metrics["kind"] == "landforge-metrics/1"
    assert 0.0 <= metrics["overall_accuracy"] <= 1.0 and "baseline" in metrics
    html = (demo_run / "report.html").read_text()
    assert "data:image/png;base64" in html and "http://" not in html and "https://" not in html


def test_demo_manifest_records_every_stage_done(demo_run):
    manifest = json.loads((demo_run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert len(stages) == 12
    assert all(s["status"] == "done" for s in stages.values())
    assert all(s["inputs"] or s["type"] == "synth_city" for s in stages.values())


def test_demo_rerun_skips_everything(demo_run, capsys):
    before = (demo_run / "map.tif").stat().st_mtime_ns
    assert (
        main(
            [
                "demo",
                "--out",
                str(demo_run),
                "--size-m",
                "500",
                "--train-minutes",
                "0.1",
                "--set",
                "train.max_steps=3",
            ]
        )
        == 0
    )
    assert (demo_run / "map.tif").stat().st_mtime_ns == before
