"""Augmentation moves the image and its masks together: symmetries and random rescale."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from landforge.cli import main
from landforge.datasets.chips import ChipDataset
from landforge.errors import OptionError
from landforge.training.augment import dihedral, random_dihedral, random_rescale, rescale
from landforge.training.options import TrainOptions, load_train_config

# resnet18 stem + 2 stages and a slim 3-level decoder (as in test_train.py)
TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_eight_symmetries_are_distinct_and_shape_preserving():
    x = torch.arange(16).reshape(1, 4, 4)
    outs = [dihedral(x, k) for k in range(8)]
    assert all(o.shape == x.shape for o in outs)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    torch.testing.assert_close(dihedral(x, 4), x.transpose(-2, -1))
    torch.testing.assert_close(dihedral(x, 5), x.flip(-1))
    torch.testing.assert_close(dihedral(x, 7), x.flip(-2))
    with pytest.raises(ValueError):
        dihedral(x, 8)


def test_image_and_masks_stay_in_step():
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(5, 16, 16)
    mask = (image[0] > 0).long()  # a mask derived pixel by pixel from band 0
    seen = set()
    for _ in range(40):
        out = random_dihedral({"image": image, "footprint": mask}, generator=gen)
        torch.testing.assert_close(out["footprint"], (out["image"][0] > 0).long())
        seen.add(tuple(out["image"][0, 0, :3].tolist()))
    assert len(seen) > 4  # more than one transform was drawn


# ---------------------------------------------------------------- random rescale
IGNORE = -100


def _stripes(n: int, seed: int) -> np.ndarray:
    """0/1 runs of 4..9 pixels along one axis: every run is wider than the antialiasing
    support at zoom >= 0.5, so the image rounds to the label of the nearest pixel."""
    rng = np.random.default_rng(seed)
    out, value = [], 0
    while len(out) < n:
        width = int(rng.integers(4, 10))
        if n - len(out) - width < 4:  # no short run at the end
            width = n - len(out)
        out += [value] * width
        value = 1 - value
    return np.asarray(out)


def _striped_sample(size: int = 48, seed: int = 0) -> dict[str, torch.Tensor]:
    """Band 0 varies along columns, band 1 along rows; labels ``lx`` / ``ly`` equal them."""
    sx = torch.from_numpy(_stripes(size, seed))
    sy = torch.from_numpy(_stripes(size, seed + 1))
    lx = sx[None, :].expand(size, size).contiguous()
    ly = sy[:, None].expand(size, size).contiguous()
    image = torch.stack([lx, ly]).float()
    return {"image": image, "lx": lx.long(), "ly": ly.long()}


def test_rescaled_labels_stay_under_their_image_pixels():
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for i in range(60):
        sample = _striped_sample(seed=i)
        out = random_rescale(sample, (0.5, 2.0), ignore_index=IGNORE, generator=gen)
        out = random_dihedral(out, generator=gen)  # as ChipDataset composes them
        for band, name in enumerate(("lx", "ly")):
            label, value = out[name], out["image"][band]
            assert set(label.unique().tolist()) <= {0, 1, IGNORE}  # nearest: no new values
            keep = (label != IGNORE) & ((value - 0.5).abs() > 1e-3)
            # an edge of the label lies exactly where the image crosses between the values
            assert torch.equal((value[keep] > 0.5).long(), label[keep]), (i, name)
            checked += int(keep.sum())
            # the padding: ignored in every label, 0 in the image
            assert torch.equal(out["lx"] == IGNORE, out["ly"] == IGNORE)
            assert (out["image"][:, out["lx"] == IGNORE] == 0).all()
    assert checked > 0.5 * 60 * 2 * 48 * 48


def test_rescale_keeps_shapes_dtypes_and_honours_the_range():
    size, side = 64, 16  # a centred 16 x 16 square of label 1 (image 1)
    label = torch.zeros(size, size, dtype=torch.long)
    label[24:40, 24:40] = 1
    sample = {"image": label[None].float().repeat(3, 1, 1), "use": label}
    gen = torch.Generator().manual_seed(1)
    seen = []
    for _ in range(200):
        out = random_rescale(sample, (0.75, 1.25), ignore_index=IGNORE, generator=gen)
        assert out["image"].shape == (3, size, size) and out["image"].dtype == torch.float32
        assert out["use"].shape == (size, size) and out["use"].dtype == torch.long
        seen.append(math.sqrt(int((out["use"] == 1).sum())) / side)
    assert min(seen) >= 0.75 - 1 / side and max(seen) <= 1.25 + 1 / side
    assert min(seen) < 0.8 and max(seen) > 1.2  # the whole range is drawn
    # a zoom-out pads the labels with the ignore index, a zoom-in does not
    small = rescale(sample, 0.75, ignore_index=IGNORE)
    assert (small["use"] == IGNORE).sum() == size * size - 48 * 48
    assert (rescale(sample, 1.25, ignore_index=IGNORE)["use"] != IGNORE).all()
    assert rescale(sample, 1.0)["use"] is sample["use"]
    with pytest.raises(ValueError, match="scale"):
        rescale(sample, 0.0)
    with pytest.raises(ValueError, match="differ in size"):
        rescale({"a": torch.zeros(4, 4), "b": torch.zeros(5, 5)}, 1.5)


def test_random_rescale_is_seeded():
    sample = _striped_sample(seed=3)

    def draw(seed):
        gen = torch.Generator().manual_seed(seed)
        return [random_rescale(sample, (0.5, 1.5), generator=gen) for _ in range(3)]

    a, b, c = draw(5), draw(5), draw(6)
    for x, y in zip(a, b, strict=True):
        for name in sample:
            assert torch.equal(x[name], y[name])
    assert any(not torch.equal(x["image"], y["image"]) for x, y in zip(a, c, strict=True))


def test_the_option_is_off_by_default_and_checked():
    assert TrainOptions().augment_scale is None
    assert TrainOptions(augment_scale="0.75,1.25").augment_scale == (0.75, 1.25)
    assert TrainOptions(augment_scale=[0.8, 1.2]).augment_scale == (0.8, 1.2)
    assert TrainOptions(augment_scale="none").augment_scale is None
    for bad in ("1.25,0.75", "0,1", "1", "a,b", "nan,1"):
        with pytest.raises(OptionError) as err:
            TrainOptions.build(augment_scale=bad)
        assert err.value.field == "augment_scale"
    # the building-use example turns it on (our range: the paper names none)
    cfg = load_train_config(EXAMPLES / "train_multitask.yaml")
    assert cfg.augment and cfg.augment_scale == (0.75, 1.25)


def test_the_chip_dataset_rescales_only_with_a_range(toy_store):
    plain = ChipDataset(toy_store, "train", augment=True)
    scaled = ChipDataset(toy_store, "train", augment=True, scale_range=(0.5, 0.6))
    torch.manual_seed(0)
    a = plain[0]
    torch.manual_seed(0)
    b = scaled[0]
    assert a["image"].shape == b["image"].shape and a["use"].shape == b["use"].shape
    assert (b["use"] == -100).any() and not (a["use"] == -100).any()  # zoom-out padding
    torch.manual_seed(0)
    again = scaled[0]
    assert all(torch.equal(b[k], again[k]) for k in b)
    # without augment the range is not used
    off = ChipDataset(toy_store, "train", augment=False, scale_range=(0.5, 0.6))
    assert torch.equal(off[0]["use"], ChipDataset(toy_store, "train")[0]["use"])


def test_a_tiny_training_run_with_scale_augmentation(toy_store, tmp_path, capsys):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "chips": str(toy_store),
                "model_kwargs": TINY_MODEL,
                "batch_size": 2,
                "max_steps": 2,
                "augment_scale": [0.75, 1.25],
            }
        )
    )
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    run = json.loads((out / "train_config.json").read_text())
    assert run["augment"] is True and run["augment_scale"] == [0.75, 1.25]
    assert (out / "model.safetensors").is_file()
    assert main(["train", str(cfg), "--out", str(out), "--augment-scale", "2,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --augment-scale: ") and len(err.splitlines()) == 1
