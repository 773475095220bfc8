"""The demo path end to end on a tiny city: every stage real, every output openable."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
import rasterio

from landforge.cli import main


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """(run directory, what the demo printed)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
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
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def demo_run(demo_output):
    return demo_output[0]


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
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)  # Leaflet's code
    assert "data:image/png;base64" in html and "http://" not in markup and "https://" not in markup
    assert 'id="lf-map"' in html and "default-src 'none'" in html  # the map, offline only


def test_demo_manifest_records_every_stage_done(demo_run):
    manifest = json.loads((demo_run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert len(stages) == 13
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


def test_demo_scores_the_test_split_and_says_so(demo_output):
    run, printed = demo_output
    blocks = gpd.read_file(run / "chips" / "split_blocks.gpkg")
    assert {"train", "val", "test"} <= set(blocks["split"])  # a small city: 1-chip blocks
    n_test = int((blocks["split"] == "test").sum())
    pixels = int(blocks[blocks["split"] == "test"].area.sum())  # 1 m pixels
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["evaluated_on"]["split"] == "test"
    assert metrics["evaluated_on"]["blocks"] == n_test
    assert metrics["evaluated_on"]["pixels"] == pixels
    assert metrics["n"] + metrics["n_ignored"] == pixels  # baseline on the same pixels
    parcels = json.loads((run / "parcel_metrics.json").read_text())
    assert parcels["evaluated_on"]["split"] == "test"
    train = json.loads((run / "metrics_train_split.json").read_text())
    assert train["evaluated_on"]["split"] == "train"
    lines = [ln for ln in printed.splitlines() if "OA" in ln]
    blocks_txt = f"{n_test} block{'' if n_test == 1 else 's'}"
    assert lines[0].startswith(f"test split ({blocks_txt}, {pixels:,} pixels): pixel OA ")
    assert "majority baseline" in lines[0] and "kappa" in lines[0] and "mIoU" in lines[0]
    assert lines[1].startswith("test split (") and "parcel OA" in lines[1]
    assert lines[2].startswith("for comparison only, train split (")
    assert "seen in training" in lines[2]
    html = (run / "report.html").read_text()
    headline = html[html.index("<h2>Headline</h2>") :]
    assert headline.index("test split") < headline.index("train split")


def test_demo_normalises_with_training_split_statistics(demo_run):
    stats = json.loads((demo_run / "chips" / "stats.json").read_text())
    assert stats["split"] == "train"
    card = json.loads((demo_run / "model" / "model.json").read_text())
    assert card["mean"] == stats["mean"] and card["std"] == stats["std"]
    assert "mean/std from the store's train pixels" in card["notes"]
