"""Training: a chip store in, a checkpoint that restores to the same model out."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from landforge.cli import main
from landforge.datasets.chips import ChipDataset
from landforge.errors import InputError
from landforge.models.checkpoint import load_checkpoint
from landforge.training.module import make_targets
from landforge.training.options import TrainConfig, load_train_config
from landforge.training.train import train, training_data_hash

# resnet18 stem + 2 stages and a slim 3-level decoder: about 0.8 M parameters.
TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}


def cfg_for(store, out, **kw):
    base = dict(
        chips=str(store),
        out=str(out),
        model_kwargs=TINY_MODEL,
        batch_size=2,
        epochs=1,
        augment=False,
    )
    base.update(kw)
    return TrainConfig.build(base)


def test_two_steps_write_a_checkpoint_that_restores_identically(toy_store, tmp_path):
    weights = train(cfg_for(toy_store, tmp_path / "run", max_steps=2, epochs=2))
    assert weights == tmp_path / "run" / "model.safetensors"
    assert weights.is_file() and (tmp_path / "run" / "model.json").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()
    assert list((tmp_path / "run" / "logs").glob("*/metrics.csv"))
    model, card = load_checkpoint(weights)
    stats = json.loads((toy_store / "stats.json").read_text())
    assert card.bands == ["red", "green", "blue", "poi_use"] == stats["bands"]
    assert card.mean == stats["mean"] and card.std == stats["std"]
    assert card.heads == {
        "footprint": ["building"],
        "use": ["residential", "commercial", "industrial"],
    }
    assert card.taxonomy == "rci" and card.gsd_m == 1.0
    assert card.training_data_hash == training_data_hash(toy_store)
    assert card.model_kwargs["in_channels"] == 4 and card.model_kwargs["classes"] == 3
    assert "val_loss" in card.metrics and "val_footprint_iou" in card.metrics
    assert card.metrics["steps"] == 2
    # the restored model computes what the saved weights compute
    from safetensors.torch import load_file

    from landforge.models import build

    again = build(card.model, **card.model_kwargs)
    again.load_state_dict(load_file(str(weights)))
    again.eval()
    x = ChipDataset(toy_store, split=None)[0]["image"][None]
    with torch.no_grad():
        a, b = model(x), again(x)
    for head in ("footprint", "use"):
        torch.testing.assert_close(a[head], b[head], rtol=0, atol=0)
        assert torch.isfinite(a[head]).all()


def test_loss_goes_down_on_the_toy_problem(toy_store, tmp_path):
    out = tmp_path / "run"
    train(
        cfg_for(
            toy_store,
            out,
            max_steps=10,
            epochs=10,
            lr=0.01,
            log_every_n_steps=1,
            schedule="constant",
            early_stopping_patience=None,
        )
    )
    (log,) = (out / "logs").glob("*/metrics.csv")
    rows = [r for r in csv.DictReader(log.open()) if r.get("train/loss_step")]
    losses = [float(r["train/loss_step"]) for r in rows]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05


def test_time_budget_without_validation_keeps_the_last_weights(toy_store, tmp_path):
    cfg = cfg_for(toy_store, tmp_path / "run", epochs=100, max_minutes=0.001, val_split=None)
    weights = train(cfg)
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["metrics"]["steps"] < 100  # stopped by the clock, not by the epochs
    assert "train_loss" in card["metrics"] and "val_loss" not in card["metrics"]


def test_resume_continues_from_the_last_checkpoint(toy_store, tmp_path):
    out = tmp_path / "run"
    train(cfg_for(toy_store, out, max_steps=1, epochs=3))
    train(cfg_for(toy_store, out, max_steps=2, epochs=3, resume=str(out)))
    card = json.loads((out / "model.json").read_text())
    assert card["metrics"]["steps"] == 2
    assert len(list((out / "logs").glob("*/metrics.csv"))) == 2
    with pytest.raises(InputError, match="not a landforge training directory"):
        train(cfg_for(toy_store, tmp_path / "other", resume=str(tmp_path)))


def test_targets_follow_the_head_mapping():
    cfg = TrainConfig.build({"chips": "c", "out": "o"})
    batch = {
        "footprint": torch.tensor([[0, 1, 1, -100]]),
        "use": torch.tensor([[0, 1, 3, 2]]),
    }
    t = make_targets(batch, cfg.heads)
    assert t["footprint"].tolist() == [[0, 1, 1, -100]]
    assert t["use"].tolist() == [[-100, 0, 2, 1]]  # rci 1..3 -> 0..2, background ignored


def test_unknown_config_field_is_named(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("chips: c\nout: o\nepoch: 3\n")
    with pytest.raises(InputError, match="epoch: unknown field"):
        load_train_config(path)
    path.write_text("chips: c\nout: o\nheads:\n  use: {label: use, classes: [a, b], colour: 1}\n")
    with pytest.raises(InputError, match="heads.use.colour"):
        load_train_config(path)


def test_head_on_a_missing_label_is_an_input_error(toy_store, tmp_path):
    cfg = cfg_for(
        toy_store, tmp_path / "run", heads={"roads": {"label": "roads", "classes": ["road"]}}
    )
    with pytest.raises(InputError, match="no label 'roads'"):
        train(cfg)


def test_cli_chips_and_train(toy_scene, tmp_path, capsys):
    store = tmp_path / "chips"
    labels = f"footprint={toy_scene['footprint']},use={toy_scene['use']}"
    rc = main(
        [
            "chips",
            "--image",
            str(toy_scene["image"]),
            "--extra",
            str(toy_scene["poi"]),
            "--labels",
            labels,
            "--size",
            "64",
            "--split",
            "train=0.5,val=0.5",
            "--block-size",
            "1",
            "--out",
            str(store),
        ]
    )
    assert rc == 0
    assert "4 chips" in capsys.readouterr().out
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"chips: {store}\nout: {tmp_path / 'run'}\nbatch_size: 2\nmax_steps: 1\n"
        f"model_kwargs: {json.dumps(TINY_MODEL)}\n"
    )
    assert main(["train", str(cfg)]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
    cfg.write_text(f"chips: {store}\nout: {tmp_path / 'run'}\nlearning_rate: 0.1\n")
    assert main(["train", str(cfg)]) == 2
    assert "learning_rate: unknown field" in capsys.readouterr().err
    assert (
        main(
            [
                "chips",
                "--image",
                str(toy_scene["image"]),
                "--labels",
                "footprint",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )


def test_lr_schedules_anneal_over_the_run(toy_store, tmp_path):
    from landforge.training.module import SegmentationTask

    cfg = TrainConfig.build({"chips": "c", "out": "o"})
    task = SegmentationTask(torch.nn.Identity(), cfg.heads, schedule="cosine")
    assert task.lr_factor(0.0) == 1.0 and task.lr_factor(0.5) == pytest.approx(0.5)
    assert task.lr_factor(1.0) == pytest.approx(0.0, abs=1e-12)
    task.schedule, task.poly_power = "poly", 2.0
    assert task.lr_factor(0.5) == pytest.approx(0.25)
    out = tmp_path / "run"
    train(cfg_for(toy_store, out, max_steps=4, epochs=4, lr=0.01, log_every_n_steps=1))
    (log,) = (out / "logs").glob("*/metrics.csv")
    lrs = [float(r["train/lr"]) for r in csv.DictReader(log.open()) if r.get("train/lr")]
    assert lrs[0] == pytest.approx(0.01) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.005


def test_single_head_model_gets_classes_and_head_from_the_config(toy_store):
    """hrnet_ocr / unet take their head name and class count from the one head."""
    from landforge.training.options import TrainConfig
    from landforge.training.train import _model_kwargs

    cfg = TrainConfig.build(
        {
            "chips": str(toy_store),
            "out": "o",
            "model": "unet",
            "heads": {"landcover": {"label": "use", "classes": ["a", "b", "c"]}},
        }
    )
    kw = _model_kwargs(cfg, {"bands": ["r", "g", "b", "n"]})
    assert kw == {"in_channels": 4, "classes": 3, "head": "landcover"}
    cfg = TrainConfig.build(
        {
            "chips": str(toy_store),
            "out": "o",
            "model": "unet",
            "model_kwargs": {"classes": 3},
            "heads": {"x": {"label": "use", "classes": ["a", "b", "c"]}},
        }
    )
    assert _model_kwargs(cfg, {"bands": ["r"]})["head"] == "x"


def test_validation_metrics_come_from_one_confusion_matrix(toy_store):
    """Device bincounts folded into landforge.evaluation's ConfusionMatrix per head."""
    import lightning as L
    import numpy as np
    from torch.utils.data import DataLoader

    from landforge.evaluation.metrics import ConfusionMatrix
    from landforge.models import build
    from landforge.training.module import SegmentationTask, head_prediction
    from landforge.training.train import _quiet_lightning

    cfg = TrainConfig.build({"chips": str(toy_store)})
    torch.manual_seed(0)
    task = SegmentationTask(build("multitask_unet", in_channels=4, **TINY_MODEL), cfg.heads, cfg)
    trainer = L.Trainer(
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu"
    )
    loader = DataLoader(ChipDataset(toy_store, "val"), batch_size=2)
    with _quiet_lightning(True):
        (logged,) = trainer.validate(task, loader, verbose=False)
    fp, use = task.matrices["footprint"], task.matrices["use"]
    assert isinstance(fp, ConfusionMatrix) and fp.names == ["not_building", "building"]
    assert use.names == ["residential", "commercial", "industrial"]
    assert logged["val/footprint_iou"] == pytest.approx(fp.iou()[1])
    assert logged["val/use_miou"] == pytest.approx(use.miou())
    # the same counts as ConfusionMatrix.update on the host
    ref = ConfusionMatrix(labels=[0, 1], ignore=[-100])
    task.eval()
    with torch.no_grad():
        for batch in loader:
            target = make_targets(batch, cfg.heads)["footprint"]
            pred = head_prediction(cfg.heads["footprint"], task(batch["image"])["footprint"])
            ref.update(target.numpy(), pred.numpy())
    np.testing.assert_array_equal(fp.matrix, ref.matrix)
