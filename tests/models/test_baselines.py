"""U-Net, DeepLabV3+ and PSPNet baselines: one named head, any band count, safe weights."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

from landforge.errors import InputError
from landforge.models import ModelCard, available, build, load_checkpoint, save_checkpoint
from landforge.models.baselines import SmpSegmenter

torch.set_num_threads(1)

ARCHS = ["unet", "deeplabv3plus", "pspnet"]
STRIDE = {"unet": 32, "deeplabv3plus": 16, "pspnet": 8}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_all_three_are_registered():
    assert set(ARCHS) <= set(available())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("in_channels", [3, 4, 7])
def test_output_is_one_named_input_sized_head(arch, in_channels):
    model = build(arch, in_channels=in_channels, classes=5, encoder="resnet18", head="lc").eval()
    s = STRIDE[arch]
    h, w = 2 * s, 3 * s if arch != "unet" else 2 * s  # sizes that are only multiples of s
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, h, w))
    assert list(out) == ["lc"]
    assert out["lc"].shape == (2, 5, h, w)


@pytest.mark.parametrize("arch", ARCHS)
def test_input_size_must_be_a_multiple_of_the_output_stride(arch):
    model = build(arch, classes=3, encoder="resnet18").eval()
    assert model.output_stride == STRIDE[arch]
    with pytest.raises(InputError, match=f"multiple of {STRIDE[arch]} for {arch}"):
        model(torch.randn(1, 3, STRIDE[arch] * 4 + 4, STRIDE[arch] * 4))


def test_resnet34_parameter_counts():
    unet = build("unet", in_channels=4, classes=6)
    deeplab = build("deeplabv3plus", in_channels=4, classes=6)
    assert n_params(unet) == n_params(
        smp.Unet("resnet34", encoder_weights=None, in_channels=4, classes=6)
    )
    assert n_params(deeplab) == n_params(
        smp.DeepLabV3Plus("resnet34", encoder_weights=None, in_channels=4, classes=6)
    )
    assert n_params(unet) == pytest.approx(24.44e6, rel=0.01)
    assert n_params(deeplab) == pytest.approx(22.44e6, rel=0.01)


def test_pspnet_keeps_only_the_three_encoder_stages_it_uses():
    model = build("pspnet", in_channels=4, classes=6)
    assert not hasattr(model.encoder, "layer3") and not hasattr(model.encoder, "layer4")
    # Encoder: torchvision ResNet-34 stem (4-band conv1) + layer1 + layer2.
    r34 = torchvision.models.resnet34()
    stem_and_two = sum(
        p.numel() for n, p in r34.named_parameters() if n.startswith(("bn1", "layer1", "layer2"))
    )
    encoder = 64 * 4 * 7 * 7 + stem_and_two
    # PSP module on layer2's 128 channels: pyramid 1x1 convs to 128/4 (bins 1, 2, 3, 6;
    # bin 1 has a bias instead of batch norm), then a 1x1 conv-BN to 512 on 128 + 4*32.
    psp = (128 * 32 + 32) + 3 * (128 * 32 + 2 * 32) + (256 * 512 + 2 * 512)
    head = 512 * 6 * 3 * 3 + 6  # smp segmentation head: 3x3 conv to K
    assert n_params(model.encoder) == encoder
    assert n_params(model) == encoder + psp + head
    assert n_params(model) == pytest.approx(1.53e6, rel=0.01)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_reaches_every_parameter(arch):
    model = build(arch, in_channels=4, classes=3, encoder="resnet18").train()
    out = model(torch.randn(2, 4, 32, 32))["landcover"]
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("arch", ["unet", "deeplabv3plus"])
def test_three_training_steps_lower_the_loss(arch):
    # (PSPNet's first Adam steps overshoot on a 2-image batch: not a useful check there.)
    torch.manual_seed(0)
    model = build(arch, in_channels=4, classes=3, encoder="resnet18").train()
    x = torch.randn(2, 4, 32, 32)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x)["landcover"], y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    kwargs = {"in_channels": 4, "classes": 3, "encoder": "resnet18", "head": "landcover"}
    model = build("deeplabv3plus", **kwargs)
    model.train()
    model(torch.randn(2, 4, 32, 32))  # move the batch-norm statistics off their init
    model.eval()
    card = ModelCard(
        model="deeplabv3plus",
        model_kwargs=kwargs,
        bands=["red", "green", "blue", "nir"],
        mean=[0.0] * 4,
        std=[1.0] * 4,
        heads={"landcover": ["water", "tree", "built"]},
    )
    save_checkpoint(model, card, tmp_path / "model")
    again, _ = load_checkpoint(tmp_path / "model")
    assert isinstance(again, SmpSegmenter)
    x = torch.randn(1, 4, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["landcover"], again(x)["landcover"], rtol=0, atol=0)


def test_local_encoder_weights_fit_any_band_count(tmp_path):
    rgb = build("unet", in_channels=3, classes=2, encoder="resnet18")
    path = tmp_path / "resnet18.safetensors"
    state = {f"encoder.{k}": v.contiguous() for k, v in rgb.encoder.state_dict().items()}
    save_file(state, str(path))
    psp = build("pspnet", in_channels=5, classes=4, encoder="resnet18", encoder_weights=str(path))
    torch.testing.assert_close(psp.encoder.layer2.state_dict(), rgb.encoder.layer2.state_dict())
    w_rgb, w5 = rgb.encoder.conv1.weight, psp.encoder.conv1.weight
    torch.testing.assert_close(w5[:, :3], w_rgb * 0.6)  # cycled, rescaled by 3/5
    torch.testing.assert_close(w5[:, 3:], w_rgb[:, :2] * 0.6)
    with pytest.raises(InputError, match="do not fit"):
        build("unet", classes=2, encoder="resnet34", encoder_weights=str(path))


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="unknown encoder 'resnet999'"):
        build("unet", classes=3, encoder="resnet999")
    with pytest.raises(InputError, match="number of classes"):
        build("pspnet")
    with pytest.raises(InputError, match="unknown colour"):
        build("deeplabv3plus", classes=3, colour="red")
    with pytest.raises(InputError, match="unknown activation"):
        build("unet", classes=3, activation="sigmoid")  # logits only
    with pytest.raises(InputError, match="decoder_channels"):
        build("unet", classes=3, decoder_channels=[16, 8])
    # smp options pass through: a shallow U-Net needs inputs in multiples of 8 only
    shallow = build(
        "unet", classes=3, encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 8]
    )
    assert shallow.output_stride == 8 and not hasattr(shallow.encoder, "layer4")
    assert shallow(torch.randn(1, 3, 24, 24))["landcover"].shape == (1, 3, 24, 24)
