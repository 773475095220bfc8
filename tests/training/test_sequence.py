"""Region sequences: each step starts from the previous one; a step x region matrix."""

from __future__ import annotations

import json

import pytest
import yaml

from landforge.cli import main
from landforge.errors import InputError
from landforge.evaluation.metrics import ConfusionMatrix
from landforge.models.checkpoint import load_checkpoint
from landforge.training.evaluate_store import evaluate_on_store
from landforge.training.options import HeadConfig, load_sequence_config

TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
BASE = {"model_kwargs": TINY_MODEL, "batch_size": 2, "max_steps": 1, "augment": False}


def _write(tmp_path, data):
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sequence_trains_in_order_and_scores_every_region(toy_store, other_store, tmp_path, capsys):
    out = tmp_path / "seq"
    cfg = _write(
        tmp_path,
        {
            "out": str(out),
            "regions": {"a": str(toy_store), "b": str(other_store)},
            "order": ["a", "b"],
            "base": BASE,
        },
    )
    assert main(["train-sequence", str(cfg)]) == 0
    report = json.loads((out / "sequence.json").read_text())
    assert report["head"] == "use" and report["regions"] == ["a", "b"]
    for m in ("oa", "miou", "kappa"):
        assert len(report["matrix"][m]) == 2 and all(len(r) == 2 for r in report["matrix"][m])
    assert all(0 <= v <= 1 for row in report["matrix"]["oa"] for v in row)
    assert report["steps"][0]["results"]["a"]["split"] == "val"  # a has no test split
    assert report["steps"][0]["results"]["b"]["split"] == "test"
    step2 = json.loads((out / "steps" / "02_b" / "train_config.json").read_text())
    assert step2["init"] == str(out / "steps" / "01_a" / "model.safetensors")
    assert step2["chips"] == str(other_store)
    md = (out / "sequence.md").read_text()
    assert "| 2. b |" in md and md.count("\n|") >= 3


def test_sequence_config_errors_name_the_field(tmp_path, toy_store):
    regions = {"a": str(toy_store)}
    with pytest.raises(InputError, match="steps: unknown field"):
        load_sequence_config(_write(tmp_path, {"out": "o", "regions": regions, "steps": 2}))
    with pytest.raises(InputError, match="base.epoch: unknown field"):
        load_sequence_config(
            _write(tmp_path, {"out": "o", "regions": regions, "base": {"epoch": 1}})
        )
    with pytest.raises(InputError, match="unknown region 'c'"):
        load_sequence_config(_write(tmp_path, {"out": "o", "regions": regions, "order": ["c"]}))
    with pytest.raises(InputError, match="base.chips: is set per step"):
        load_sequence_config(
            _write(tmp_path, {"out": "o", "regions": regions, "base": {"chips": "x"}})
        )


def test_evaluate_on_store_matches_a_hand_count(toy_store, tmp_path):
    from landforge.training.options import TrainConfig
    from landforge.training.train import train

    weights = train(
        TrainConfig.build({"chips": str(toy_store), "out": str(tmp_path / "r"), **BASE})
    )
    model, card = load_checkpoint(weights)
    fp = HeadConfig(label="footprint", classes=["building"])
    cm = evaluate_on_store(model, card, toy_store, "val", fp, "footprint")
    assert isinstance(cm, ConfusionMatrix) and cm.names == ["not_building", "building"]
    assert cm.total == 2 * 64 * 64  # two val chips, no nodata
    use = HeadConfig(label="use", classes=["r", "c", "i"], values=[1, 2, 3])
    masked = evaluate_on_store(model, card, toy_store, "val", use, "use", mask_by=fp)
    import numpy as np

    from landforge.datasets.chips import ChipDataset

    n_building = sum(int((ChipDataset(toy_store, "val")[i]["use"] > 0).sum()) for i in range(2))
    assert masked.total == n_building and masked.n_classes == 3
    assert np.isfinite(masked.overall_accuracy())


def test_only_steps_from_earlier_weights_freeze_the_encoder(tmp_path, toy_store, other_store):
    from landforge.training.options import SequenceConfig

    cfg = SequenceConfig.model_validate(
        {
            "out": str(tmp_path),
            "regions": {"a": str(toy_store), "b": str(other_store)},
            "base": {**BASE, "freeze_encoder_epochs": 2},
        }
    )
    assert cfg.train_config("a", tmp_path / "1", None).freeze_encoder_epochs == 0
    assert (
        cfg.train_config("b", tmp_path / "2", tmp_path / "m.safetensors").freeze_encoder_epochs == 2
    )
