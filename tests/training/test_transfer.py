"""Transfer learning: --init loads what fits, heads re-initialise, the encoder freezes."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from landforge.cli import main
from landforge.datasets.chips import ChipDataset, build_chips
from landforge.errors import InputError
from landforge.models import build
from landforge.models.checkpoint import load_checkpoint
from landforge.training.module import SegmentationTask
from landforge.training.options import TrainConfig
from landforge.training.train import FreezeEncoder, _quiet_lightning, init_from_checkpoint, train

TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
USE4 = {
    "use": {
        "label": "use",
        "classes": ["background", "residential", "commercial", "industrial"],
        "values": [0, 1, 2, 3],
    }
}


def cfg_for(store, out, **kw):
    base = dict(
        chips=str(store),
        out=str(out),
        model_kwargs=TINY_MODEL,
        batch_size=2,
        epochs=1,
        max_steps=1,
        augment=False,
    )
    base.update(kw)
    return TrainConfig.build(base)


@pytest.fixture(scope="module")
def source(toy_store, tmp_path_factory):
    """A checkpoint trained one step on the toy store."""
    return train(cfg_for(toy_store, tmp_path_factory.mktemp("src") / "run"))


def _encoder(model):
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("encoder.")}


def test_init_loads_the_weights(toy_store, source):
    loaded, card = load_checkpoint(source)
    fresh = build(card.model, **card.model_kwargs)
    report = init_from_checkpoint(fresh, source, card.bands)
    assert report["reinitialised"] == [] and len(report["loaded"]) == len(fresh.state_dict())
    fresh.eval()
    x = ChipDataset(toy_store, split=None)[0]["image"][None]
    with torch.no_grad():
        a, b = loaded(x), fresh(x)
    for head in a:
        torch.testing.assert_close(a[head], b[head], rtol=0, atol=0)


def test_a_head_with_another_class_count_is_reinitialised(toy_store, source, tmp_path):
    weights = train(cfg_for(toy_store, tmp_path / "run", heads=USE4, init=str(source)))
    card = json.loads(weights.with_suffix(".json").read_text())
    assert "re-initialised: use_head.0" in card["notes"]
    assert "head 'use' has 4 classes, the checkpoint 3" in card["notes"]
    model, _ = load_checkpoint(weights)
    assert model.use_head[0].weight.shape[0] == 4


def test_init_refuses_other_bands_and_foreign_files(toy_scene, source, tmp_path):
    rgb = build_chips(
        toy_scene["image"],
        {"footprint": toy_scene["footprint"], "use": toy_scene["use"]},
        tmp_path / "rgb",
        size=64,
    )
    with pytest.raises(InputError) as err:
        train(cfg_for(rgb, tmp_path / "run", init=str(source)))
    msg = str(err.value)
    assert "[red, green, blue, poi_use]" in msg and "[red, green, blue]" in msg
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InputError, match="not a landforge checkpoint"):
        train(cfg_for(rgb, tmp_path / "run", init=str(pickle)))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage, not tensors")
    bad.with_suffix(".json").write_text(source.with_suffix(".json").read_text())
    with pytest.raises(InputError, match="not a safetensors file"):
        train(cfg_for(rgb, tmp_path / "run", init=str(bad)))
    assert main(["train", str(_yaml(tmp_path, rgb)), "--init", str(pickle)]) == 2


def _yaml(tmp_path, store):
    path = tmp_path / "t.yaml"
    path.write_text(
        f"chips: {store}\nout: {tmp_path / 'cli'}\nmax_steps: 1\nbatch_size: 2\n"
        f"model_kwargs: {json.dumps(TINY_MODEL)}\n"
    )
    return path


def test_cli_init_trains_from_a_checkpoint(toy_store, source, tmp_path):
    assert main(["train", str(_yaml(tmp_path, toy_store)), "--init", str(source)]) == 0
    card = json.loads((tmp_path / "cli" / "model.json").read_text())
    assert "init from model.safetensors" in card["notes"]


def test_frozen_epochs_leave_the_encoder_alone(toy_store, source, tmp_path):
    before, _ = load_checkpoint(source)
    enc0 = _encoder(before)
    # one epoch, all of it frozen, no validation: the saved encoder is the init's
    weights = train(
        cfg_for(
            toy_store,
            tmp_path / "run",
            init=str(source),
            freeze_encoder_epochs=1,
            max_steps=None,
            val_split=None,
            lr=0.05,
        )
    )
    after, _ = load_checkpoint(weights)
    for k, v in _encoder(after).items():
        torch.testing.assert_close(v, enc0[k], rtol=0, atol=0, msg=k)  # incl. BN stats
    dec = [k for k in after.state_dict() if k.startswith("decoder.") and "weight" in k]
    assert any(not torch.equal(after.state_dict()[k], before.state_dict()[k]) for k in dec)


def test_freeze_callback_unfreezes_after_n_epochs(toy_store):
    cfg = TrainConfig.build({"chips": "c", "out": "o"})
    model = build("multitask_unet", in_channels=4, **TINY_MODEL)
    task = SegmentationTask(model, cfg.heads, lr=0.05, schedule="constant")
    seen: list[dict[str, torch.Tensor]] = []

    class Record(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append(_encoder(pl_module.model))

    start = _encoder(model)
    loader = DataLoader(ChipDataset(toy_store, "train"), batch_size=2)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[FreezeEncoder(2), Record()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with _quiet_lightning(True):
        trainer.fit(task, loader)
    conv = "encoder.conv1.weight"
    assert torch.equal(seen[0][conv], start[conv]) and torch.equal(seen[1][conv], start[conv])
    assert torch.equal(seen[1]["encoder.bn1.running_mean"], start["encoder.bn1.running_mean"])
    assert not torch.equal(seen[2][conv], start[conv])
    assert all(p.requires_grad for p in model.parameters())
