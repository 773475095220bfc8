"""examples/mslu_synth.yaml runs end to end (at a tiny size) and grades every parcel."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd

from landforge.pipeline import run_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mslu_synth.yaml"

TINY = {
    "city.size_m": 500,
    "city.gsd": 2.0,
    "poi_embed.dim": 8,
    "samples.patch_px": 16,
    "samples.max_patches": 2,
    "train.epochs": 1,
    "train.block_size_m": 150,
    "train.backbone_kwargs": {
        "img_size": 16, "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2], "window_size": 2,
    },
}  # fmt: skip


def test_mslu_example_runs_and_grades_every_parcel(tmp_path):
    manifest = run_pipeline(EXAMPLE, tmp_path / "run", overrides=TINY)
    assert {s["status"] for s in manifest["stages"].values()} == {"done"}
    run = tmp_path / "run"
    classes = gpd.read_parquet(run / "parcel_classes.parquet")
    graded = gpd.read_parquet(run / "graded.parquet")
    assert len(graded) == len(classes) and graded["level"].between(0, 5).all()
    probs = classes[[c for c in classes.columns if c.startswith("prob_")]]
    assert (probs.sum(axis=1) - 1).abs().max() < 1e-5
    metrics = json.loads((run / "parcel_model" / "metrics.json").read_text())
    assert "baseline" in json.dumps(metrics)
    report = (run / "report.html").read_text()
    assert "level" in report and "grading.json" in report
