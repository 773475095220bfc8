"""examples/all_stages.yaml: every stage type as a pipeline step, on a small synthetic city.

The pipeline can express everything the CLI can: the Poisson chip sampler, predict
with a threshold, uint8 probabilities and a built-up mask, sample design, splits, POI
embeddings, built-up masks, training, region sequences and cross-domain runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from landforge.pipeline import run_pipeline
from landforge.pipeline.registry import registered_stages

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "all_stages.yaml"


def test_example_names_every_built_in_stage_type():
    types = {s["type"] for s in yaml.safe_load(EXAMPLE.read_text())["stages"]}
    built_in = {
        n for n, st in registered_stages().items() if st.fn.__module__.startswith("landforge.")
    }
    assert built_in - types == set(), "add the new stage to examples/all_stages.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("all_stages")
    manifest = run_pipeline(EXAMPLE, run_dir)
    return run_dir, manifest


def test_every_step_runs(run):
    run_dir, manifest = run
    stages = manifest["stages"]
    assert {s["status"] for s in stages.values()} == {"done"}
    # Poisson-disk chips inside parcels, spatially split
    meta = json.loads((run_dir / "chips" / "meta.json").read_text())
    assert meta["sampler"] == "poisson"
    assert stages["chips"]["summary"]["chips_test"] > 0
    # sample design and split as steps
    assert stages["sites"]["summary"]["sites"] == 12
    assert stages["patch_split"]["summary"]["train"] > 0
    assert stages["poi_embed"]["summary"]["dim"] == 8


def test_predict_options_from_yaml_reach_the_outputs(run):
    run_dir, manifest = run
    with rasterio.open(run_dir / "probs.tif") as src:
        assert src.dtypes[0] == "uint8"  # probs_dtype: uint8
    with (
        rasterio.open(run_dir / "map.tif") as src,
        rasterio.open(run_dir / "footprint_prob.tif") as fp,
        rasterio.open(run_dir / "builtup.tif") as mask,
    ):
        classes, prob, built = src.read(1), fp.read(1), mask.read(1)
    # threshold 0.4: a building pixel wherever the footprint probability reaches it
    # (inside windows the built-up mask let through; others are skipped, class 0)
    predicted = np.isfinite(prob) & (classes != 255)
    building = classes[predicted] > 0
    assert np.array_equal(building, prob[predicted] >= 0.4)
    summary = manifest["stages"]["predict"]["summary"]
    assert summary["windows_predicted"] + summary["windows_skipped"] == summary["windows"]
    assert (built == 1).any()


def test_a_second_run_skips_every_step(run):
    run_dir, _ = run
    before = _finished(run_dir)
    again = run_pipeline(EXAMPLE, run_dir)
    assert {k: v["finished"] for k, v in again["stages"].items()} == before


def _finished(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {k: v["finished"] for k, v in manifest["stages"].items()}
