"""``parcel_fusion`` and ``inception_time``: shapes, masking of missing modalities, pieces."""

from __future__ import annotations

import pytest
import torch
from parcel_classifier_helpers import TINY_SWIN

from landforge.errors import OptionError
from landforge.models.inception_time import InceptionModule, InceptionTime
from landforge.models.registry import available, build


def _batch(n: int = 4, p: int = 3, f: int = 5, t: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(n, p, 3, 16, 16, generator=g) * 255,
        "patch_mask": torch.ones(n, p, dtype=torch.bool),
        "poi": torch.rand(n, f, generator=g),
        "series": torch.rand(n, t, generator=g) * 1000,
        "attrs": torch.tensor([[5000.0, 3.0]] * n),
        "present": torch.ones(n, 3, dtype=torch.bool),
    }


def _fusion(**kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(
        classes=4,
        in_channels=3,
        poi_features=5,
        backbone_kwargs=TINY_SWIN,
        embed_dim=8,
        inception_nf=4,
        inception_depth=3,
    )
    cfg.update(kw)
    return build("parcel_fusion", **cfg).eval()


def test_both_models_are_registered() -> None:
    assert {"parcel_fusion", "inception_time"} <= set(available())


def test_fusion_gives_logits_and_weights_that_sum_to_one() -> None:
    out = _fusion()(_batch())
    assert out["label"].shape == (4, 4)
    assert torch.allclose(out["weights"].sum(1), torch.ones(4))


def test_a_missing_modality_changes_nothing_whatever_its_input_holds() -> None:
    model = _fusion()
    batch = _batch()
    batch["present"][1, 0] = False  # parcel 1: no image
    batch["present"][2, 1] = False  # parcel 2: no POIs
    batch["present"][3, 2] = False  # parcel 3: no population
    batch["patch_mask"][0, 2] = False  # parcel 0: its third patch is padding
    ref = model(batch)
    garbage = {k: v.clone() for k, v in batch.items()}
    garbage["image"][1] = float("nan")
    garbage["image"][0, 2] = 1e9
    garbage["poi"][2] = float("inf")
    garbage["series"][3] = -1e12
    out = model(garbage)
    assert torch.isfinite(out["label"]).all()
    assert torch.equal(out["label"], ref["label"])
    assert ref["weights"][1, 0] == 0 and ref["weights"][2, 1] == 0 and ref["weights"][3, 2] == 0
    # ...and a present modality does matter
    changed = {k: v.clone() for k, v in batch.items()}
    changed["poi"][0] += 5.0
    assert not torch.equal(model(changed)["label"][0], ref["label"][0])


def test_masking_also_holds_in_training_mode_batch_statistics() -> None:
    model = _fusion(dropout=0.0).train()
    batch = _batch(n=6)
    batch["present"][4:, 2] = False
    torch.manual_seed(1)  # the same stochastic depth in both passes
    ref = model(batch)["label"]
    batch["series"][4:] = 1e9  # placeholders must not reach batch norm
    torch.manual_seed(1)
    assert torch.allclose(model(batch)["label"], ref)


def test_a_branch_switched_off_is_not_built() -> None:
    model = _fusion(modalities=["poi", "population"])
    assert "image" not in model.branches
    out = model(_batch())
    assert (out["weights"][:, 0] == 0).all()
    with pytest.raises(OptionError, match="modalities"):
        _fusion(modalities=["sound"])


def test_inception_module_has_three_kernel_sizes_a_bottleneck_and_a_pool_branch() -> None:
    m = InceptionModule(8, nf=4, kernel_sizes=(10, 20, 40), bottleneck=6)
    assert [c.kernel_size[0] for c in m.convs] == [10, 20, 40]
    assert m.bottleneck.out_channels == 6
    assert m(torch.zeros(2, 8, 50)).shape == (2, 16, 50)  # 4 branches x nf, same length
    # one input channel: no bottleneck (as the reference implementation)
    assert isinstance(InceptionModule(1, nf=4).bottleneck, torch.nn.Identity)


def test_inception_module_sees_half_its_longest_kernel_either_side() -> None:
    torch.manual_seed(0)
    m = InceptionModule(1, nf=2, kernel_sizes=(10, 20, 40)).eval()
    x = torch.randn(1, 1, 200)
    y = x.clone()
    y[0, 0, 100] += 10.0
    changed = (m(x) - m(y)).abs().sum(dim=1)[0] > 0
    where = torch.nonzero(changed).ravel()
    # kernel 40 pads 19 left / 20 right: output t reads inputs t-19 .. t+20
    assert where.min() >= 100 - 20 and where.max() <= 100 + 19
    assert where.max() - where.min() > 30


def test_inception_time_has_a_residual_every_third_module_and_any_length() -> None:
    net = InceptionTime(1, classes=3, nf=4, depth=6).eval()
    assert sorted(net.shortcuts) == ["2", "5"]
    assert net(torch.randn(2, 1, 24))["label"].shape == (2, 3)
    assert net(torch.randn(2, 1, 100))["label"].shape == (2, 3)  # global average pooling
    assert len(InceptionTime(1, classes=3, depth=6, residual=False).shortcuts) == 0
