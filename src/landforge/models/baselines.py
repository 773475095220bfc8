"""Single-head segmentation baselines from segmentation-models-pytorch.

``unet`` (Ronneberger et al. 2015), ``deeplabv3plus`` (Chen et al. 2018) and ``pspnet``
(Zhao et al. 2017), each ``smp``'s implementation with a chosen encoder (``resnet34``
by default) and one output head: ``forward(x) -> {head: (N,K,H,W)}``, the same dict
contract as every landforge model, so they train, predict and evaluate like
:mod:`~landforge.models.hrnet_ocr` and serve as its comparison in the land-cover paper.

Encoder weights are never downloaded (``encoder_weights=None`` for smp); a local
``.safetensors`` encoder state dict can be loaded instead (see
:func:`~landforge.models.multitask_unet.load_encoder_weights`).

The input height and width must be multiples of the encoder's output stride: 32 for
``unet``, 16 for ``deeplabv3plus`` (dilated last stage) and 8 for ``pspnet`` (a
three-stage encoder; its unused deeper ResNet stages are dropped).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
import torch.nn as nn

import landforge._compat  # noqa: F401  (before segmentation_models_pytorch imports torchvision)
from landforge.errors import InputError, OptionError
from landforge.models.multitask_unet import load_encoder_weights, prune_encoder_stages
from landforge.models.registry import register

__all__ = ["SmpSegmenter"]

_ARCHITECTURES = {"unet": "Unet", "deeplabv3plus": "DeepLabV3Plus", "pspnet": "PSPNet"}
# smp options set here (or that would break the logits-dict contract).
_FIXED = {
    "self",
    "encoder_name",
    "encoder_weights",
    "in_channels",
    "classes",
    "activation",
    "aux_params",
}


class SmpSegmenter(nn.Module):
    """A segmentation-models-pytorch model returning ``{head: logits}``.

    Args:
        arch: ``unet``, ``deeplabv3plus`` or ``pspnet``.
        in_channels: number of input bands.
        classes: number of classes K (1 for a binary head).
        encoder: an smp encoder name (``resnet18``, ``resnet34``, ``resnet50`` ...).
        head: name of the output head (the key of the forward's dict).
        encoder_weights: None (random init) or a local ``.safetensors`` file with the
            encoder's state dict (keys with or without an ``encoder.`` prefix).
        **smp_kwargs: further options of the smp class (e.g. ``decoder_channels`` for
            ``unet``, ``encoder_output_stride`` for ``deeplabv3plus``).
    """

    def __init__(
        self,
        arch: str,
        in_channels: int = 3,
        classes: int | None = None,
        encoder: str = "resnet34",
        head: str = "landcover",
        encoder_weights: str | os.PathLike[str] | None = None,
        **smp_kwargs: Any,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        if arch not in _ARCHITECTURES:
            raise OptionError(
                "arch", f"unknown architecture {arch!r}; one of {', '.join(_ARCHITECTURES)}"
            )
        if classes is None:
            raise OptionError("classes", "give the number of classes of the head")
        if in_channels < 1:
            raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
        if classes < 1:
            raise OptionError("classes", f"must be >= 1, got {classes}")
        if not head:
            raise OptionError("head", "the output head needs a name")
        cls = getattr(smp, _ARCHITECTURES[arch])
        # smp passes unknown keywords on to the encoder, which ignores them: check here
        # so a typo is an error, not a silently ignored setting.
        allowed = set(inspect.signature(cls.__init__).parameters) - _FIXED
        allowed.discard("kwargs")
        unknown = sorted(set(smp_kwargs) - allowed)
        if unknown:
            raise OptionError(
                "",
                f"bad options for {arch!r}: unknown {', '.join(unknown)} "
                f"(smp options: {', '.join(sorted(allowed))})",
            )
        try:
            net = cls(
                encoder_name=encoder,
                encoder_weights=None,  # never download; local weights are loaded below
                in_channels=in_channels,
                classes=classes,
                **smp_kwargs,
            )
        except KeyError:
            raise OptionError(
                "encoder",
                f"unknown encoder {encoder!r}; try resnet18, resnet34 or resnet50 "
                "(any segmentation-models-pytorch encoder name)",
            ) from None
        except RuntimeError as exc:  # e.g. an unknown timm ("tu-") encoder
            raise OptionError("encoder", f"{encoder!r}: {str(exc)[:200]}") from None
        except (TypeError, ValueError, AssertionError) as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise OptionError("", f"bad options for {arch!r}: {first}") from None
        self.arch = arch
        self.in_channels = in_channels
        self.classes = classes
        self.head = head
        self.encoder = net.encoder
        self.decoder = net.decoder
        self.segmentation_head = net.segmentation_head
        self.output_stride = int(net.encoder.output_stride)
        # PSPNet runs three encoder stages: the fourth would sit unused in the checkpoint
        self._pruned = prune_encoder_stages(self.encoder, int(getattr(net.encoder, "_depth", 5)))
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights, in_channels, skip=self._pruned)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits ``{head: (N,K,H,W)}`` for ``x`` (N,C,H,W)."""
        h, w = x.shape[-2:]
        if h % self.output_stride or w % self.output_stride:
            raise InputError(
                "model input",
                f"size {h}x{w} must be a multiple of {self.output_stride} for {self.arch}; "
                "pad the chip",
            )
        return {self.head: self.segmentation_head(self.decoder(self.encoder(x)))}


# Registry builders: smp ``Unet`` (input a multiple of 32), ``DeepLabV3Plus`` (output
# stride 16: a multiple of 16), ``PSPNet`` (three-stage encoder: a multiple of 8).
for _name in _ARCHITECTURES:
    register(_name, SmpSegmenter, arch=_name)
