"""Multi-task U-Net: building footprint + building use from one shared encoder-decoder.

Follows the building-use paper (§2.7): a ResNet encoder and a U-Net decoder with skip
connections shared by two heads, a binary footprint head (1 logit) and a K-class use
head (K logits, the rci classes residential / commercial / industrial). The input is
the image bands followed by any extra bands (e.g. POI probability maps), so
``in_channels`` is free: 3 (RGB), 6 (RGB + 3 POI maps), 7 (with NIR) ...

Departures from the paper: the encoder and decoder are the segmentation-models-pytorch
building blocks (``smp.Unet``'s encoder and ``UnetDecoder``); pretrained weights are
never downloaded, only read from a local ``.safetensors`` file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

import landforge._compat  # noqa: F401  (before segmentation_models_pytorch imports torchvision)
from landforge.errors import InputError, OptionError
from landforge.models.registry import register

__all__ = ["MultiTaskUNet", "load_encoder_weights", "prune_encoder_stages"]


class MultiTaskUNet(nn.Module):
    """Shared U-Net with a footprint head and a use head.

    Args:
        in_channels: number of input bands.
        classes: number of use classes K (the use head's channels).
        encoder: an smp encoder name (``resnet18``, ``resnet34``, ``resnet50`` ...).
        decoder_channels: U-Net decoder widths, deepest first (five for depth 5).
        encoder_weights: None (random init) or a local ``.safetensors`` file with the
            encoder's state dict (keys with or without an ``encoder.`` prefix).
        encoder_depth: number of encoder stages (3-5); the input size must be a
            multiple of ``2**encoder_depth``.
        use_classes: deprecated name of ``classes``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        classes: int = 3,
        encoder: str = "resnet34",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        encoder_weights: str | os.PathLike[str] | None = None,
        encoder_depth: int = 5,
        use_classes: int | None = None,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp
        from segmentation_models_pytorch.base import SegmentationHead

        if use_classes is not None:
            warnings.warn(
                "multitask_unet: use_classes is deprecated; use classes",
                DeprecationWarning,
                stacklevel=2,
            )
            classes = use_classes
        if in_channels < 1:
            raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
        if classes < 1:
            raise OptionError("classes", f"must be >= 1, got {classes}")
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if len(decoder_channels) != encoder_depth:
            raise OptionError(
                "decoder_channels",
                f"needs {encoder_depth} widths (one per encoder stage), got {len(decoder_channels)}",
            )
        try:
            unet = smp.Unet(
                encoder_name=encoder,
                encoder_depth=encoder_depth,
                encoder_weights=None,  # never download; local weights are loaded below
                decoder_channels=decoder_channels,
                in_channels=in_channels,
                classes=1,
            )
        except KeyError:
            raise OptionError(
                "encoder",
                f"unknown encoder {encoder!r}; try resnet18, resnet34 or resnet50 "
                "(any segmentation-models-pytorch encoder name)",
            ) from None
        self.in_channels = in_channels
        self.classes = classes
        self.encoder = unet.encoder
        self.decoder = unet.decoder
        self.footprint_head = SegmentationHead(decoder_channels[-1], 1, kernel_size=3)
        self.use_head = SegmentationHead(decoder_channels[-1], classes, kernel_size=3)
        self.output_stride = 2**encoder_depth
        self._pruned = prune_encoder_stages(self.encoder, encoder_depth)
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights, in_channels, skip=self._pruned)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits ``{"footprint": (N,1,H,W), "use": (N,K,H,W)}`` for ``x`` (N,C,H,W)."""
        h, w = x.shape[-2:]
        if h % self.output_stride or w % self.output_stride:
            raise ValueError(
                f"input size {h}x{w} must be a multiple of {self.output_stride}; pad the chip"
            )
        features = self.encoder(x)
        decoded = self.decoder(features)
        return {"footprint": self.footprint_head(decoded), "use": self.use_head(decoded)}


def prune_encoder_stages(encoder: nn.Module, depth: int) -> list[str]:
    """Drop the ResNet stages an encoder of ``depth`` never runs; returns their names.

    The stages are ``layer{depth}``..``layer4``.

    smp's ResNet encoders keep every stage whatever the depth: the unused ones would sit
    in memory and in the checkpoint, and have no gradients.
    """
    pruned = [f"layer{k}" for k in range(max(int(depth), 1), 5)]
    for name in pruned:
        if isinstance(getattr(encoder, name, None), nn.Module):
            delattr(encoder, name)
    return pruned


def load_encoder_weights(
    encoder: nn.Module,
    path: str | os.PathLike[str],
    in_channels: int,
    skip: Sequence[str] = (),
) -> None:
    """Load a local safetensors encoder state dict into ``encoder`` (strict).

    A first convolution trained on 3 bands is adapted to ``in_channels`` the way
    segmentation-models-pytorch does it: channels cycle through the pretrained ones and
    are rescaled by ``3 / in_channels`` so activations keep their magnitude. Keys of
    the ``skip`` submodules (stages a shallow encoder does not use) are ignored.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "encoder weights file does not exist")
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(p, f"not a safetensors file ({str(exc)[:200]})") from None
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    # timm/torchvision ResNets carry a classifier the smp encoder deletes.
    drop = ("fc.", *(f"{name}." for name in skip))
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    own = encoder.state_dict()
    for key, value in list(state.items()):
        target = own.get(key)
        if (
            target is not None
            and value.ndim == 4
            and target.ndim == 4
            and value.shape[1] != target.shape[1]
            and value.shape[0] == target.shape[0]
        ):
            idx = torch.arange(target.shape[1]) % value.shape[1]
            state[key] = value[:, idx] * (value.shape[1] / target.shape[1])
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise InputError(p, f"weights do not fit the encoder ({first})") from None


register("multitask_unet", MultiTaskUNet)
