"""FUSU-Net, its baselines and the FUSU loss: shapes, 0-step case, masks, gradients, weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from landforge.errors import InputError, OptionError
from landforge.models import available, build
from landforge.models.change_baselines import FCSiamDiff
from landforge.models.fusu_loss import IGNORE_INDEX, FusuLoss
from landforge.models.fusu_net import centre_crop

torch.set_num_threads(1)

K = 5  # classes
UTAE_TINY = {
    "encoder_widths": [8, 8, 16],
    "decoder_widths": [8, 8, 16],
    "out_channels": 8,
    "n_head": 4,
    "d_model": 16,
    "d_k": 4,
}
HR_TINY = {"backbone": "hrnet_w18_small", "head_channels": 16}
CHANGE_MODELS = {
    "fusu_net": {**HR_TINY, "utae": UTAE_TINY},
    "fusu_hrnet": HR_TINY,
    "fc_siam_diff": {"widths": [4, 8, 8, 16]},
    "utae_change": {"utae": UTAE_TINY},
}
OUTPUTS = {
    "fusu_net": {"seg1", "seg2", "change", "seg_ts"},
    "fusu_hrnet": {"seg1", "seg2", "change"},
    "fc_siam_diff": {"change"},
    "utae_change": {"seg1", "seg2", "change"},
}


def make(name: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = {"in_channels": 3, "series_channels": 14, "classes": K, **CHANGE_MODELS[name], **kw}
    return build(name, **cfg).eval()


@pytest.fixture(scope="module")
def fusu():
    return make("fusu_net")


def batch(b: int = 2, size: int = 64, t: int = 4, extent: int = 40, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    img1 = torch.randn(b, 3, size, size, generator=g)
    img2 = torch.randn(b, 3, size, size, generator=g)
    series = torch.randn(b, t, 14, extent, extent, generator=g)
    days = (torch.arange(t) * 30 + 5).expand(b, t).clone()
    return img1, img2, series, days


def test_every_change_model_is_registered():
    assert set(CHANGE_MODELS) | {"utae"} <= set(available())


@pytest.mark.parametrize("name", list(CHANGE_MODELS))
def test_outputs_are_patch_sized_logits(name):
    model = make(name)
    img1, img2, series, days = batch()
    with torch.no_grad():
        out = model(img1, img2, series, days, torch.ones(2, 4, dtype=torch.bool))
    assert set(out) == OUTPUTS[name]
    for key, value in out.items():
        assert value.shape == (2, 1 if key == "change" else K, 64, 64), key
        assert torch.isfinite(value).all()


def test_no_series_equals_a_zero_step_series_and_an_all_padded_one(fusu):
    img1, img2, series, days = batch()
    with torch.no_grad():
        none = fusu(img1, img2)
        zero = fusu(img1, img2, series[:, :0], days[:, :0])
        padded = fusu(img1, img2, series * float("nan"), days, torch.zeros(2, 4, dtype=torch.bool))
        with_series = fusu(img1, img2, series, days)
    assert set(none) == {"seg1", "seg2", "change"}  # no seg_ts without the branch
    for key in none:
        assert torch.equal(none[key], zero[key]) and torch.equal(none[key], padded[key])
    # a real series does change the segmentations (the branch is not dead)
    assert not torch.allclose(with_series["seg1"], none["seg1"], atol=1e-4)


def test_a_sample_without_dates_gets_its_zero_step_output_in_a_mixed_batch(fusu):
    img1, img2, series, days = batch()
    mask = torch.tensor([[True, True, False, True], [False, False, False, False]])
    with torch.no_grad():
        mixed = fusu(img1, img2, series, days, mask)
        alone = fusu(img1[1:], img2[1:])
    for key in alone:
        torch.testing.assert_close(mixed[key][1:], alone[key], rtol=1e-4, atol=1e-5)


def test_padded_dates_with_garbage_do_not_change_fusu_net(fusu):
    img1, img2, series, days = batch(t=3)
    with torch.no_grad():
        ref = fusu(img1, img2, series, days)
    junk = torch.full((2, 2, 14, 40, 40), 1e4)
    padded = torch.cat([junk[:, :1], series, junk[:, 1:]], dim=1)
    pdays = torch.cat([days[:, :1] * 0 + 999, days, days[:, :1] * 0], dim=1)
    mask = torch.tensor([[False, True, True, True, False]] * 2)
    with torch.no_grad():
        out = fusu(img1, img2, padded, pdays, mask)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], rtol=1e-4, atol=1e-5)


def test_series_reaches_the_change_head_only_with_change_series(fusu):
    # s is added to both dates and cancels in |f1' - f2'| (as in the paper's code)
    img1, img2, series, days = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            fusu(img1, img2, series, days)["change"], fusu(img1, img2)["change"]
        )
    direct = make("fusu_net", change_series=True)
    with torch.no_grad():
        a = direct(img1, img2, series, days)["change"]
        b = direct(img1, img2)["change"]
    assert not torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("name", list(CHANGE_MODELS))
def test_gradients_flow_to_every_branch(name):
    model = make(name).train()
    img1, img2, series, days = batch()
    out = model(img1, img2, series, days, torch.tensor([[True, True, True, False]] * 2))
    targets = {
        "seg1": torch.randint(0, K, (2, 64, 64)),
        "seg2": torch.randint(0, K, (2, 64, 64)),
        "change": torch.randint(0, 2, (2, 64, 64)),
    }
    FusuLoss()(out, targets)["loss"].backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead
    if name == "fusu_net":
        branches = {n.split(".")[0] + "." + n.split(".")[1] for n, _ in model.named_parameters()}
        assert {"series.utae", "series.bottleneck", "series.crop_proj"} <= branches


def test_fusu_hrnet_has_no_series_parameters_and_ignores_a_series():
    plain = make("fusu_hrnet")
    assert not plain.uses_series and make("fusu_net").uses_series
    assert not any(n.startswith("series") for n, _ in plain.named_parameters())
    img1, img2, series, days = batch()
    with torch.no_grad():
        a, b = plain(img1, img2, series, days), plain(img1, img2)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("head", ["aspp", "psp", "fcn"])
def test_segmentation_head_is_configurable(head):
    model = make("fusu_hrnet", seg_head=head)
    img1, img2, _, _ = batch(b=1, size=32)
    with torch.no_grad():
        assert model(img1, img2)["seg1"].shape == (1, K, 32, 32)


def test_fc_siam_diff_has_the_published_size_and_takes_any_image_size():
    # Daudt et al. 2018, Table 1: FC-Siam-diff 1.35 M parameters (3 bands, 2 outputs)
    published = FCSiamDiff(in_channels=3, out_channels=2)
    assert abs(sum(p.numel() for p in published.parameters()) - 1.35e6) / 1.35e6 < 0.01
    model = make("fc_siam_diff")
    img1, img2, _, _ = batch(size=64)
    with torch.no_grad():
        out = model(img1[:, :, :37, :50], img2[:, :, :37, :50])
    assert out["change"].shape == (2, 1, 37, 50)
    # a change in one corner of img2 moves the change logits there more than elsewhere
    moved = img2.clone()
    moved[:, :, :16, :16] += 3.0
    with torch.no_grad():
        delta = (model(img1, moved)["change"] - model(img1, img2)["change"]).abs()[:, 0]
    assert delta[:, :16, :16].mean() > 2 * delta[:, 40:, 40:].mean()


def test_centre_crop_keeps_the_patch_footprint_of_a_5x_series():
    grid = torch.arange(128 * 128).reshape(1, 1, 128, 128)
    crop = centre_crop(grid, 0.2)
    assert crop.shape[-2:] == (26, 26)  # FUSU: 128 px series -> 26 px patch footprint
    assert crop[0, 0, 0, 0].item() == 51 * 128 + 51
    assert centre_crop(torch.zeros(1, 1, 40, 30), 0.2).shape[-2:] == (8, 6)


def test_utae_change_crops_the_series_footprint():
    model = make("utae_change")
    img1, img2, series, days = batch(extent=40)
    with torch.no_grad():
        ref = model(img1, img2, series, days)
        # changing the series outside its middle fifth changes less than inside it
        outside = series.clone()
        outside[..., :4, :] += 5.0
        inside = series.clone()
        inside[..., 18:22, 18:22] += 5.0
        d_out = (model(img1, img2, outside, days)["seg1"] - ref["seg1"]).abs().mean()
        d_in = (model(img1, img2, inside, days)["seg1"] - ref["seg1"]).abs().mean()
    assert d_in > d_out
    with pytest.raises(InputError, match="series"):
        model(img1, img2)


def test_bad_inputs_and_options_name_the_problem(fusu):
    img1, img2, series, days = batch()
    with pytest.raises(InputError, match="img2"):
        fusu(img1, img2[:, :, :32])
    with pytest.raises(InputError, match="multiple of 32"):
        fusu(img1[..., :48, :48], img2[..., :48, :48])
    with pytest.raises(InputError, match="series"):
        fusu(img1, img2, series[:, :, :10], days)
    with pytest.raises(OptionError) as err:
        build("fusu_net", classes=K, seg_head="deeplab", **{"backbone": "hrnet_w18_small"})
    assert err.value.field == "model_kwargs.seg_head"
    with pytest.raises(OptionError) as err:
        build("fusu_net", classes=K, backbone="hrnet_w18_small", utae={**UTAE_TINY, "n_head": 3})
    assert err.value.field == "model_kwargs.utae.n_head"
    with pytest.raises(OptionError) as err:
        build("utae_change", classes=K, utae={"heads": 4})
    assert err.value.field == "model_kwargs.utae"


# ---- loss ---------------------------------------------------------------------------


def _targets(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    seg1 = torch.randint(0, K, (2, 8, 8), generator=g)
    seg2 = torch.randint(0, K, (2, 8, 8), generator=g)
    change = (seg1 != seg2).long()
    seg1[0, 0, :3] = IGNORE_INDEX
    change[1, 2, :5] = IGNORE_INDEX
    return {"seg1": seg1, "seg2": seg2, "change": change}


def _outputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return {
        "seg1": torch.randn(2, K, 8, 8, generator=g, requires_grad=True),
        "seg2": torch.randn(2, K, 8, 8, generator=g),
        "seg_ts": torch.randn(2, K, 8, 8, generator=g),
        "change": torch.randn(2, 1, 8, 8, generator=g),
    }


def test_fusu_loss_is_l1s_plus_l2s_plus_lts_plus_twice_lc():
    out, tgt = _outputs(), _targets()
    ce1 = F.cross_entropy(out["seg1"], tgt["seg1"], ignore_index=IGNORE_INDEX)
    ce2 = F.cross_entropy(out["seg2"], tgt["seg2"])
    ce_ts = F.cross_entropy(out["seg_ts"], tgt["seg1"], ignore_index=IGNORE_INDEX)  # vs T1
    valid = tgt["change"] != IGNORE_INDEX
    bce = F.binary_cross_entropy_with_logits(
        out["change"][:, 0][valid], tgt["change"][valid].float()
    )
    got = FusuLoss()(out, tgt)
    torch.testing.assert_close(got["loss"], ce1 + ce2 + ce_ts + 2 * bce)
    torch.testing.assert_close(got["change"], bce)
    torch.testing.assert_close(got["seg_ts"], ce_ts)
    # doubling the change weight's share: loss(change_weight=4) - loss(2) == 2 L_c
    four = FusuLoss(change_weight=4.0)(out, tgt)["loss"]
    torch.testing.assert_close(four - got["loss"], 2 * bce)


def test_fusu_loss_skips_missing_outputs_and_survives_an_all_ignored_batch():
    out, tgt = _outputs(), _targets()
    only_change = FusuLoss()({"change": out["change"]}, tgt)
    assert set(only_change) == {"loss", "change"}
    torch.testing.assert_close(only_change["loss"], 2 * only_change["change"])
    no_ts = FusuLoss()({k: v for k, v in out.items() if k != "seg_ts"}, tgt)
    assert "seg_ts" not in no_ts
    ignored = {k: torch.full_like(v, IGNORE_INDEX) for k, v in tgt.items()}
    loss = FusuLoss()(out, ignored)["loss"]
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(out["seg1"].grad).all()
    with pytest.raises(ValueError, match="none of"):
        FusuLoss()({"aux": out["seg1"]}, tgt)
    with pytest.raises(OptionError):
        FusuLoss(change_weight=-1.0)


def test_released_code_variant_weights_changed_pixels_twice():
    out, tgt = _outputs(), _targets()
    valid = tgt["change"] != IGNORE_INDEX
    y = tgt["change"][valid].float()
    per = F.binary_cross_entropy_with_logits(out["change"][:, 0][valid], y, reduction="none")
    want = (per * (1 + y)).mean()
    got = FusuLoss(changed_pixel_weight=2.0)(out, tgt)["change"]
    torch.testing.assert_close(got, want)
