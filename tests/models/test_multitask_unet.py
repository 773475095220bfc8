"""Multi-task U-Net: shapes, parameter counts, registry and local encoder weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from landforge.errors import InputError
from landforge.models import available, build
from landforge.models.multitask_unet import MultiTaskUNet

torch.set_num_threads(1)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_and_resnet34_has_about_24m_parameters():
    assert "multitask_unet" in available()
    model = build("multitask_unet", in_channels=3, classes=3)
    assert isinstance(model, MultiTaskUNet)
    # smp's resnet34 U-Net has 24.4 M parameters; the second head adds a few hundred.
    assert 24.0e6 < n_params(model) < 24.8e6


@pytest.mark.parametrize("in_channels", [3, 6, 7])
def test_output_shapes_for_any_band_count(in_channels):
    model = build("multitask_unet", in_channels=in_channels, classes=4, encoder="resnet18")
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 64, 64))
    assert set(out) == {"footprint", "use"}
    assert out["footprint"].shape == (2, 1, 64, 64)
    assert out["use"].shape == (2, 4, 64, 64)


def test_slim_decoder_is_smaller():
    slim = build("multitask_unet", encoder="resnet18", decoder_channels=[64, 32, 16, 16, 8])
    assert 11.0e6 < n_params(slim) < 12.5e6  # resnet18 encoder is 11.2 M


def test_shallow_encoder_drops_unused_stages_and_still_loads_full_weights(tmp_path):
    full = build("multitask_unet", encoder="resnet18")
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in full.encoder.state_dict().items()}, str(path))
    shallow = build(
        "multitask_unet",
        encoder="resnet18",
        encoder_depth=3,
        decoder_channels=[32, 16, 8],
        encoder_weights=str(path),
    )
    assert n_params(shallow) < 1e6 and not hasattr(shallow.encoder, "layer4")
    torch.testing.assert_close(
        shallow.encoder.layer2[0].conv1.weight, full.encoder.layer2[0].conv1.weight
    )
    assert shallow(torch.randn(1, 3, 16, 16))["use"].shape == (1, 3, 16, 16)


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="unknown encoder"):
        build("multitask_unet", encoder="resnet999")
    with pytest.raises(InputError, match="decoder_channels"):
        build("multitask_unet", decoder_channels=[16, 8])
    with pytest.raises(InputError, match="bad options"):
        build("multitask_unet", colour="red")
    model = build("multitask_unet", encoder="resnet18")
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.randn(1, 3, 40, 40))


def test_local_encoder_weights_adapted_to_more_bands(tmp_path):
    rgb = build("multitask_unet", in_channels=3, encoder="resnet18")
    state = {f"encoder.{k}": v for k, v in rgb.encoder.state_dict().items()}
    path = tmp_path / "resnet18_rgb.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    six = build("multitask_unet", in_channels=6, encoder="resnet18", encoder_weights=str(path))
    w_rgb = rgb.encoder.conv1.weight
    w_six = six.encoder.conv1.weight
    assert w_six.shape[1] == 6
    torch.testing.assert_close(w_six[:, 3:], w_rgb * 0.5)  # cycled and scaled by 3/6
    torch.testing.assert_close(
        six.encoder.layer1[0].conv1.weight, rgb.encoder.layer1[0].conv1.weight
    )
    with pytest.raises(InputError, match="does not exist"):
        build("multitask_unet", encoder_weights=str(tmp_path / "none.safetensors"))
    with pytest.raises(InputError, match="do not fit"):
        build("multitask_unet", encoder="resnet34", encoder_weights=str(path))
