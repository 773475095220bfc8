"""HRNet-OCR land-cover model: shapes, sizes, the OCR equations, training and prediction."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import timm
import torch
from affine import Affine
from rasterio.crs import CRS
from safetensors.torch import save_file

from landforge.errors import InputError
from landforge.inference.predictor import predict_raster
from landforge.io.raster import RasterGrid, write_cog
from landforge.models import ModelCard, available, build, load_checkpoint, save_checkpoint
from landforge.models.hrnet_ocr import HRNetSegmenter, OCRHead, object_region_features
from landforge.training.module import SegmentationTask
from landforge.training.options import HeadConfig, load_train_config

torch.set_num_threads(1)

# hrnet_w18_small backbone (1.5 M) with a 32/16-channel OCR head: fast on one CPU core.
TINY = {"backbone": "hrnet_w18_small", "ocr_mid_channels": 32, "ocr_key_channels": 16}
LANDCOVER = ["water", "tree", "grass", "built"]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ocr_head_params(c: int, m: int, d: int, k: int) -> int:
    """Parameters of the OCR head from its layers (conv weights; BN weight + bias)."""
    aux = c * c + 2 * c + c * k + k  # conv1x1-BN-ReLU, conv1x1 with bias to K
    reduce = 9 * c * m + 2 * m  # conv3x3-BN-ReLU to the mid width
    phi = psi = (m * d + 2 * d) + (d * d + 2 * d)  # two conv1x1-BN-ReLU each
    delta = m * d + 2 * d
    rho = d * m + 2 * m
    g = 2 * m * m + 2 * m  # on [x; y]
    classifier = m * k + k
    return aux + reduce + phi + psi + delta + rho + g + classifier


def backbone_params(name: str, in_channels: int) -> tuple[int, int]:
    """(parameters, concatenated branch channels) of the timm HRNet, built directly."""
    net = timm.create_model(
        name,
        features_only=True,
        feature_location="",
        out_indices=(1, 2, 3, 4),
        in_chans=in_channels,
    )
    return n_params(net), sum(net.feature_info.channels())


def test_both_variants_are_registered():
    names = available()
    assert "hrnet_ocr" in names and "hrnet" in names


@pytest.mark.parametrize(
    ("in_channels", "height", "width"), [(3, 64, 64), (4, 96, 64), (7, 32, 96)]
)
def test_outputs_are_input_sized_logits_for_any_band_count(in_channels, height, width):
    model = build("hrnet_ocr", in_channels=in_channels, classes=5, **TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, height, width))
    assert set(out) == {"landcover", "aux"}
    assert out["landcover"].shape == out["aux"].shape == (2, 5, height, width)
    plain = build(
        "hrnet", in_channels=in_channels, classes=5, backbone="hrnet_w18_small", head="lc"
    )
    with torch.no_grad():
        assert plain.eval()(torch.randn(1, in_channels, height, width))["lc"].shape == (
            1,
            5,
            height,
            width,
        )


def test_backbone_gives_the_four_hrnet_branches_at_stride_4():
    model = build("hrnet_ocr", in_channels=4, classes=3, **TINY).eval()
    with torch.no_grad():
        branches = model.encoder(torch.randn(1, 4, 64, 64))
    assert [b.shape[1] for b in branches] == [16, 32, 64, 128]  # W18-small widths
    assert [b.shape[-1] for b in branches] == [16, 8, 4, 2]  # strides 4, 8, 16, 32
    with torch.no_grad():
        assert model.features(torch.randn(1, 4, 64, 64)).shape == (1, 240, 16, 16)


def test_parameter_counts_match_backbone_plus_head_formula():
    model = build("hrnet_ocr", in_channels=7, classes=6, **TINY)
    backbone, c = backbone_params("hrnet_w18_small", 7)
    assert n_params(model.encoder) == backbone
    assert n_params(model.ocr) == ocr_head_params(c, 32, 16, 6)
    assert n_params(model) == backbone + ocr_head_params(c, 32, 16, 6)


def test_default_size_hrnet_w18_small_v2_ocr_is_about_6_4m_parameters():
    full = build("hrnet_ocr", in_channels=4, classes=6)
    backbone, c = backbone_params("hrnet_w18_small_v2", 4)
    assert c == 270  # 18 + 36 + 72 + 144, as in HRNetV2-W18
    assert n_params(full) == backbone + ocr_head_params(c, 512, 256, 6)
    assert n_params(full) == pytest.approx(6.37e6, rel=0.01)  # 3.86 M backbone + 2.51 M OCR
    plain = build("hrnet", in_channels=4, classes=6)
    assert n_params(plain) == backbone + (c * c + 2 * c + c * 6 + 6)
    assert n_params(plain) == pytest.approx(3.94e6, rel=0.01)


def test_object_region_features_equal_the_weighted_pixel_sum():
    torch.manual_seed(0)
    soft = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    pixels = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    got = object_region_features(soft, pixels)
    want = torch.zeros(2, 3, 6, dtype=torch.float64)
    for n in range(2):
        for k in range(3):
            z = sum(math.exp(soft[n, k, i, j]) for i in range(4) for j in range(5))
            for i in range(4):
                for j in range(5):
                    want[n, k] += math.exp(soft[n, k, i, j]) / z * pixels[n, :, i, j]
    torch.testing.assert_close(got, want)


def test_relation_is_a_softmax_over_regions_and_context_follows_eq_3():
    torch.manual_seed(0)
    head = OCRHead(in_channels=8, classes=3, mid_channels=6, key_channels=4).double().eval()
    pixels = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    regions = torch.randn(2, 3, 6, dtype=torch.float64)
    with torch.no_grad():
        w = head.relation(pixels, regions)
        y = head.context(pixels, regions)
        phi = head.phi(pixels)  # (N, d, H, W)
        psi = head.psi(regions.transpose(1, 2).unsqueeze(-1))[..., 0]  # (N, d, K)
        delta = head.delta(regions.transpose(1, 2).unsqueeze(-1))[..., 0]  # (N, d, K)
    assert w.shape == (2, 15, 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 15, dtype=torch.float64))
    for n in range(2):
        for i in range(3):
            for j in range(5):
                s = torch.stack([phi[n, :, i, j] @ psi[n, :, k] for k in range(3)]) / 2.0
                w_ij = torch.softmax(s, 0)
                torch.testing.assert_close(w[n, i * 5 + j], w_ij)
    # y_i = rho(sum_k w_ik delta(f_k))
    mixed = torch.einsum("npk,ndk->ndp", w, delta).reshape(2, 4, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(y, head.rho(mixed))


def test_gradient_reaches_every_parameter():
    model = build("hrnet_ocr", in_channels=4, classes=3, **TINY).train()
    out = model(torch.randn(2, 4, 64, 64))
    (out["landcover"].square().mean() + out["aux"].square().mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
    plain = build("hrnet", in_channels=4, classes=3, backbone="hrnet_w18_small").train()
    plain(torch.randn(2, 4, 64, 64))["landcover"].square().mean().backward()
    assert all(p.grad is not None for p in plain.parameters())


def _task(model: torch.nn.Module, **head: object) -> SegmentationTask:
    heads = {"landcover": HeadConfig(label="lc", classes=LANDCOVER, loss="ce_dice", **head)}
    return SegmentationTask(model, heads, lr=1e-2)


def _batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 4, 64, 64, generator=gen)
    lc = (image[:, 0] > 0).long() + 2 * (image[:, 1] > 0).long() + 1  # 1..4
    lc[:, :4] = 0  # a strip without label (value 0 is not a class: ignored)
    return {"image": image, "lc": lc}


def test_training_puts_0_4_of_the_main_loss_on_the_aux_output():
    torch.manual_seed(0)
    model = build("hrnet_ocr", in_channels=4, classes=4, **TINY)
    assert model.aux_weight == 0.4
    task = _task(model)
    total, parts, _, _ = task._step(_batch())
    assert set(parts) == {"landcover", "aux"}
    torch.testing.assert_close(total, parts["landcover"] + 0.4 * parts["aux"])
    # without OCR there is no aux output and no aux loss
    plain = _task(build("hrnet", in_channels=4, classes=4, backbone="hrnet_w18_small"))
    total, parts, _, _ = plain._step(_batch())
    assert set(parts) == {"landcover"}


def test_aux_output_needs_one_multi_class_head():
    model = build("hrnet_ocr", in_channels=4, classes=4, **TINY)
    heads = {
        "landcover": HeadConfig(label="lc", classes=LANDCOVER),
        "other": HeadConfig(label="lc", classes=LANDCOVER),
    }
    with pytest.raises(InputError, match="one multi-class head"):
        SegmentationTask(model, heads)


def test_three_training_steps_lower_the_loss():
    torch.manual_seed(0)
    task = _task(build("hrnet_ocr", in_channels=4, classes=4, **TINY))
    task.train()
    opt = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    batch = _batch()
    losses = []
    for _ in range(3):
        opt.zero_grad()
        total, *_ = task._step(batch)
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def _card(kwargs: dict) -> ModelCard:
    return ModelCard(
        model="hrnet_ocr",
        model_kwargs=kwargs,
        bands=["red", "green", "blue", "nir"],
        mean=[100.0] * 4,
        std=[50.0] * 4,
        heads={"landcover": LANDCOVER},
        taxonomy=None,
        gsd_m=1.0,
    )


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    kwargs = {"in_channels": 4, "classes": 4, **TINY}
    model = build("hrnet_ocr", **kwargs)
    model.train()
    model(torch.randn(2, 4, 64, 64))  # move the batch-norm statistics off their init
    model.eval()
    save_checkpoint(model, _card(kwargs), tmp_path / "model")
    again, card = load_checkpoint(tmp_path / "model.safetensors")
    assert isinstance(again, HRNetSegmenter) and card.heads == {"landcover": LANDCOVER}
    x = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        a, b = model(x), again(x)
    for key in ("landcover", "aux"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_predict_raster_uses_the_landcover_head_and_ignores_aux(tmp_path):
    torch.manual_seed(0)
    kwargs = {"in_channels": 4, "classes": 4, **TINY}
    model = build("hrnet_ocr", **kwargs).eval()
    grid = RasterGrid(CRS.from_epsg(32650), Affine(1.0, 0, 500000, 0, -1.0, 3400000), 80, 72)
    image = np.random.default_rng(0).integers(1, 255, size=(4, 72, 80)).astype("uint8")
    write_cog(tmp_path / "image.tif", image, grid)
    summary = predict_raster(
        (model, _card(kwargs)),
        tmp_path / "image.tif",
        tmp_path / "map.tif",
        window=64,
        overlap=8,
        probs_out=tmp_path / "probs.tif",
        quiet=True,
    )
    assert set(summary["class_pixels"]) == {"background", *LANDCOVER}
    with rasterio.open(tmp_path / "map.tif") as src:
        classes = src.read(1)
        names = json.loads(src.tags()["LANDFORGE_CLASSES"])
    assert names == {str(k): n for k, n in enumerate(LANDCOVER, start=1)}
    assert classes.shape == (72, 80) and set(np.unique(classes)) <= {1, 2, 3, 4}
    with rasterio.open(tmp_path / "probs.tif") as src:
        probs = src.read()
    assert probs.shape == (4, 72, 80)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0) + 1, classes)


def test_local_backbone_weights_from_a_timm_classification_checkpoint(tmp_path):
    torch.manual_seed(0)
    timm_rgb = timm.create_model("hrnet_w18_small", pretrained=False, in_chans=3)
    path = tmp_path / "hrnet_w18_small.safetensors"
    save_file({k: v.contiguous() for k, v in timm_rgb.state_dict().items()}, str(path))
    model = build("hrnet_ocr", in_channels=4, classes=3, encoder_weights=str(path), **TINY)
    torch.testing.assert_close(model.encoder.stage4.state_dict(), timm_rgb.stage4.state_dict())
    w_rgb, w4 = timm_rgb.conv1.weight, model.encoder.conv1.weight
    assert w4.shape[1] == 4
    torch.testing.assert_close(w4[:, :3], w_rgb * 0.75)  # 3 bands cycled, rescaled by 3/4
    torch.testing.assert_close(w4[:, 3], w_rgb[:, 0] * 0.75)
    with pytest.raises(InputError, match="does not exist"):
        build("hrnet_ocr", classes=3, encoder_weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(InputError, match="do not fit"):
        build("hrnet_ocr", classes=3, encoder_weights=str(path))  # w18_small into w18_small_v2


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="unknown HRNet backbone"):
        build("hrnet_ocr", classes=3, backbone="resnet50")
    with pytest.raises(InputError, match="number of classes"):
        build("hrnet_ocr")
    with pytest.raises(InputError, match="classes"):
        build("hrnet_ocr", classes=1)
    with pytest.raises(InputError, match="head"):
        build("hrnet_ocr", classes=3, head="aux")
    with pytest.raises(InputError, match="bad options"):
        build("hrnet_ocr", classes=3, colour="red")
    model = build("hrnet", classes=3, backbone="hrnet_w18_small")
    with pytest.raises(InputError, match="multiple of 32"):
        model(torch.randn(1, 3, 40, 40))


def test_example_config_loads_and_builds_its_model():
    path = Path(__file__).resolve().parents[2] / "examples" / "train_hrnet_ocr.yaml"
    cfg = load_train_config(path)
    assert cfg.model == "hrnet_ocr" and cfg.taxonomy == "ubgg"
    head = cfg.heads["landcover"]
    assert head.loss == "ce_dice" and head.label_values() == [1, 2, 3, 4, 5]
    model = build(cfg.model, in_channels=4, **cfg.model_kwargs)
    assert model.head == "landcover" and model.classes == len(head.classes)
    assert cfg.monitor == "val/landcover_miou" and cfg.monitor_mode == "max"
