"""Cross-domain matrix and the CBST self-training baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from landforge.cli import main
from landforge.errors import InputError
from landforge.training.crossdomain import (
    cbst_portion,
    cbst_pseudo_labels,
    cbst_thresholds,
)
from landforge.training.options import load_cross_domain_config

TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
USE4 = {
    "use": {
        "label": "use",
        "classes": ["background", "residential", "commercial", "industrial"],
        "values": [0, 1, 2, 3],
    }
}
BASE = {
    "model_kwargs": TINY_MODEL,
    "batch_size": 2,
    "max_steps": 1,
    "augment": False,
    "heads": USE4,
    "val_split": None,
}


def test_cbst_thresholds_match_a_hand_computation():
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.55, 0.4, 0.3])
    pred = np.array([0, 0, 0, 0, 0, 1, 1, 1, -1])  # -1: nodata, never counted
    t = cbst_thresholds(conf, pred, n_classes=3, portion=0.2)
    # class 0 sorted: .5 .6 .7 .8 .9; the 0.8 quantile sits at index 0.8*4 = 3.2
    # -> 0.8 + 0.2 * (0.9 - 0.8) = 0.82, so the top 20 % (one pixel, 0.9) passes
    assert t[0] == pytest.approx(0.82)
    # class 1 sorted: .4 .55 .95; index 0.8*2 = 1.6 -> 0.55 + 0.6 * 0.4 = 0.79
    assert t[1] == pytest.approx(0.79)
    assert t[2] == np.inf  # never predicted: nothing pseudo-labelled
    assert cbst_portion(0, 0.2, 0.05, 0.5) == 0.2
    assert cbst_portion(1, 0.2, 0.05, 0.5) == pytest.approx(0.25)
    assert cbst_portion(10, 0.2, 0.05, 0.5) == 0.5


def test_cbst_pseudo_labels_ignore_low_confidence():
    conf = np.array([[0.9, 0.81], [0.7, 0.95]])
    pred = np.array([[0, 0], [1, -1]])
    labels = cbst_pseudo_labels(conf, pred, np.array([0.82, 0.6, np.inf]))
    assert labels.tolist() == [[0, -100], [1, -100]]


def _write(tmp_path, data):
    path = tmp_path / "xd.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cross_domain_matrix_with_a_cbst_row(toy_store, other_store, tmp_path):
    out = tmp_path / "xd"
    cfg = _write(
        tmp_path,
        {
            "out": str(out),
            "regions": {"a": str(toy_store), "b": str(other_store)},
            "base": BASE,
            "cbst": {"pairs": [["a", "b"]], "rounds": 2, "epochs": 1, "max_steps": 1},
        },
    )
    assert main(["cross-domain", str(cfg)]) == 0
    report = json.loads((out / "cross_domain.json").read_text())
    assert report["row_names"] == ["a", "b", "a→b CBST"]
    assert np.asarray(report["matrix"]["oa"], dtype=float).shape == (3, 2)
    assert np.asarray(report["matrix"]["miou"], dtype=float).shape == (3, 2)
    rounds = report["rows"][2]["rounds"]
    assert [r["portion"] for r in rounds] == pytest.approx([0.2, 0.25])
    assert all(0 < r["pseudo_fraction"] <= 0.5 for r in rounds)
    assert (out / "cbst" / "a_to_b" / "model.safetensors").is_file()
    assert "a→b CBST" in (out / "cross_domain.md").read_text()


def test_cross_domain_config_errors(tmp_path, toy_store):
    regions = {"a": str(toy_store), "b": str(toy_store)}
    with pytest.raises(InputError, match="cbst.round: unknown field"):
        load_cross_domain_config(
            _write(tmp_path, {"out": "o", "regions": regions, "cbst": {"round": 3}})
        )
    with pytest.raises(InputError, match="base.lr_max: unknown field"):
        load_cross_domain_config(
            _write(tmp_path, {"out": "o", "regions": regions, "base": {"lr_max": 1}})
        )
    # the default heads (footprint + masked use) are not one multi-class head
    with pytest.raises(InputError, match="cbst needs exactly one multi-class head"):
        load_cross_domain_config(_write(tmp_path, {"out": "o", "regions": regions, "cbst": {}}))


def test_cbst_fine_tunes_in_train_mode(toy_store, other_store):
    """CBST adapts BatchNorm statistics to the target (the model is trained in train
    mode, not left in the eval mode its pseudo-labelling pass used)."""
    import torch

    from landforge.datasets.chips import read_stats
    from landforge.models.checkpoint import ModelCard
    from landforge.models.registry import build
    from landforge.training.crossdomain import cbst_adapt
    from landforge.training.options import CBSTConfig, TrainConfig

    stats = read_stats(toy_store)
    torch.manual_seed(0)
    model = build("multitask_unet", in_channels=len(stats["bands"]), classes=4, **TINY_MODEL)
    card = ModelCard(
        model="multitask_unet",
        model_kwargs={},
        bands=list(stats["bands"]),
        mean=list(stats["mean"]),
        std=list(stats["std"]),
        heads={"use": USE4["use"]["classes"]},
    )
    cfg = TrainConfig.build({"chips": str(toy_store), "out": "o", **BASE})
    before = model.encoder.bn1.running_mean.clone()
    adapted, rounds = cbst_adapt(
        model, card, toy_store, other_store, cfg, CBSTConfig(rounds=1, epochs=1, max_steps=2)
    )
    assert not adapted.training and len(rounds) == 1
    assert not torch.equal(adapted.encoder.bn1.running_mean, before)
    assert torch.equal(model.encoder.bn1.running_mean, before)  # the source is untouched
