"""A tiny chip store (toy scene: bright roofs, use readable from an extra band)."""

from __future__ import annotations

import pytest
import torch

from landforge.datasets.chips import build_chips
from landforge.synth.toy import make_toy_scene

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def toy_scene(tmp_path_factory):
    return make_toy_scene(tmp_path_factory.mktemp("toy"), size=128, seed=0)


@pytest.fixture(scope="session")
def toy_store(toy_scene, tmp_path_factory):
    return build_chips(
        toy_scene["image"],
        {"footprint": toy_scene["footprint"], "use": toy_scene["use"]},
        tmp_path_factory.mktemp("store") / "chips",
        extras=[toy_scene["poi"]],
        size=64,
        split={"train": 0.5, "val": 0.5, "block_size": 1},
    )


@pytest.fixture(scope="module")
def other_store(tmp_path_factory):
    """A second region: another toy scene, with a test split."""
    d = tmp_path_factory.mktemp("region_b")
    scene = make_toy_scene(d / "scene", size=128, seed=7)
    return build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        d / "chips",
        extras=[scene["poi"]],
        size=64,
        split={"train": 0.5, "test": 0.5, "block_size": 1},
    )
