"""HRNet with an object-contextual representation (OCR) head, and plain HRNet.

Land-cover segmentation after the UBGG paper, which uses HRNet-OCR (Yuan, Chen and
Wang 2020, "Object-Contextual Representations for Semantic Segmentation", ECCV).

Backbone: a timm HRNet (``hrnet_w18_small_v2`` by default) returning its four parallel
branches at strides 4, 8, 16 and 32 (timm ``feature_location=""``: the raw branches,
not the classification head's widened ones). As in HRNetV2 for segmentation (Sun et
al. 2019), the three coarser branches are upsampled bilinearly to stride 4 and
concatenated with the first: 18 + 36 + 72 + 144 = 270 channels for the W18 models.

OCR head, on those stride-4 features ``x_i``:

1. soft object regions ``m`` (K maps) from an auxiliary head, conv1x1-BN-ReLU-conv1x1;
2. object region representations ``f_k = Σ_i softmax_i(m_ki) x_i`` (softmax over pixels
   ``i``), :func:`object_region_features`;
3. pixel-region relation ``w_ik = softmax_k(phi(x_i)·psi(f_k) / sqrt(d))`` with ``d``
   the key channels;
4. object-contextual representation ``y_i = rho(Σ_k w_ik delta(f_k))``;
5. augmented representation ``z_i = g([x_i; y_i])`` and a 1x1 classifier.

``phi`` and ``psi`` are two conv1x1-BN-ReLU layers, ``delta``, ``rho`` and ``g`` one
(the OCRNet reference implementation); ``x_i`` is first reduced to ``ocr_mid_channels``
by a 3x3 conv-BN-ReLU. The model returns the final and the auxiliary logits, both
upsampled to the input size, ``{head: (N,K,H,W), "aux": (N,K,H,W)}``, and carries
``aux_weight = 0.4``: training adds ``0.4 x`` the main head's loss on ``aux`` (OCRNet).

``hrnet`` is the same backbone with the HRNetV2 segmentation head (conv1x1-BN-ReLU-
conv1x1 on the 270 concatenated channels) and no OCR: the "HRNet without OCR" baseline.

Departures: weights are never downloaded (random init, or a local ``.safetensors``
backbone state dict); bilinear upsampling uses ``align_corners=False``; the OCR head's
widths are options so that a small head (e.g. 64/32) fits CPU training.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import landforge._compat  # noqa: F401  (before timm imports torchvision)
from landforge.errors import InputError, OptionError
from landforge.models.multitask_unet import load_encoder_weights
from landforge.models.registry import register

__all__ = [
    "HRNetSegmenter",
    "OCRHead",
    "object_region_features",
    "AUX_WEIGHT",
]

AUX_WEIGHT = 0.4
"""Weight of the auxiliary (soft object region) loss, as in OCRNet."""

# Submodules of a timm HRNet classification checkpoint that the branch-feature backbone
# does not have (its widened head and classifier); dropped when loading local weights.
_HEAD_MODULES = ("incre_modules", "downsamp_modules", "final_layer", "classifier")


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def object_region_features(soft_regions: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Object region representations ``f_k = Σ_i softmax_i(m_ki) x_i`` (OCR eq. 2).

    Args:
        soft_regions: (N,K,H,W) coarse segmentation logits ``m``.
        pixels: (N,C,H,W) pixel representations ``x``.

    Returns:
        (N,K,C): one C-vector per object region, a convex combination of pixels.
    """
    weights = torch.softmax(soft_regions.flatten(2).float(), dim=2).to(pixels.dtype)
    return weights @ pixels.flatten(2).transpose(1, 2)


class OCRHead(nn.Module):
    """Object-contextual representation head (OCR eq. 1-4) with its auxiliary head.

    Args:
        in_channels: channels of the backbone features.
        classes: number of classes K (= number of object regions).
        mid_channels: width of the pixel and region representations (512 in OCRNet).
        key_channels: width of ``phi``/``psi``/``delta`` (256 in OCRNet).
        dropout: channel dropout after ``g``.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        mid_channels: int = 512,
        key_channels: int = 256,
        dropout: float = 0.05,
    ) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.aux = nn.Sequential(
            _conv_bn_relu(in_channels, in_channels), nn.Conv2d(in_channels, classes, 1)
        )
        self.reduce = _conv_bn_relu(in_channels, mid_channels, 3)
        self.phi = nn.Sequential(
            _conv_bn_relu(mid_channels, key_channels), _conv_bn_relu(key_channels, key_channels)
        )
        self.psi = nn.Sequential(
            _conv_bn_relu(mid_channels, key_channels), _conv_bn_relu(key_channels, key_channels)
        )
        self.delta = _conv_bn_relu(mid_channels, key_channels)
        self.rho = _conv_bn_relu(key_channels, mid_channels)
        self.g = nn.Sequential(_conv_bn_relu(2 * mid_channels, mid_channels), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(mid_channels, classes, 1)

    @staticmethod
    def _as_map(regions: torch.Tensor) -> torch.Tensor:
        # (N,K,C) -> (N,C,K,1): the 1x1 convolutions (and their batch norm) of psi and
        # delta then act on the K region vectors as on K pixels.
        return regions.transpose(1, 2).unsqueeze(-1)

    def relation(self, pixels: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Pixel-region relation ``w_ik = softmax_k(phi(x_i)·psi(f_k) / sqrt(d))``, (N,HW,K)."""
        query = self.phi(pixels).flatten(2).transpose(1, 2)  # (N, HW, d)
        key = self.psi(self._as_map(regions)).flatten(2)  # (N, d, K)
        sim = (query @ key) / math.sqrt(self.key_channels)
        return torch.softmax(sim, dim=-1)

    def context(self, pixels: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Object-contextual representation ``y_i = rho(Σ_k w_ik delta(f_k))``, (N,M,H,W)."""
        n, _, h, w = pixels.shape
        relation = self.relation(pixels, regions)  # (N, HW, K)
        value = self.delta(self._as_map(regions)).flatten(2).transpose(1, 2)  # (N, K, d)
        y = (relation @ value).transpose(1, 2).reshape(n, self.key_channels, h, w)
        return self.rho(y)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, auxiliary logits), both (N,K,h,w) at the resolution of ``features``."""
        soft = self.aux(features)
        pixels = self.reduce(features)
        regions = object_region_features(soft, pixels)
        y = self.context(pixels, regions)
        z = self.g(torch.cat([pixels, y], dim=1))
        return self.classifier(z), soft


class HRNetSegmenter(nn.Module):
    """HRNet backbone (timm) with an OCR head or the plain HRNetV2 segmentation head.

    Args:
        in_channels: number of input bands.
        classes: number of classes K.
        backbone: a timm HRNet name (``hrnet_w18_small_v2``, ``hrnet_w18_small``,
            ``hrnet_w18``, ``hrnet_w32``, ``hrnet_w48`` ...).
        ocr: with the OCR head (``hrnet_ocr``) or without (``hrnet``).
        ocr_mid_channels: OCR pixel/region width (512 in OCRNet; 64 for a small model).
        ocr_key_channels: OCR key width (256 in OCRNet).
        head: name of the output head (a key of the forward's dict).
        encoder_weights: None (random init) or a local ``.safetensors`` file with the
            timm HRNet state dict (keys with or without an ``encoder.`` prefix; a
            classification checkpoint's head and classifier are ignored; a 3-band first
            convolution is adapted to ``in_channels``).
        dropout: OCR channel dropout.
    """

    output_stride = 32

    def __init__(
        self,
        in_channels: int = 3,
        classes: int | None = None,
        backbone: str = "hrnet_w18_small_v2",
        ocr: bool = True,
        ocr_mid_channels: int = 512,
        ocr_key_channels: int = 256,
        head: str = "landcover",
        encoder_weights: str | os.PathLike[str] | None = None,
        dropout: float = 0.05,
    ) -> None:
        super().__init__()
        import timm

        if classes is None:
            raise OptionError("classes", "give the number of classes of the head")
        if in_channels < 1:
            raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
        if classes < (2 if ocr else 1):
            raise OptionError(
                "classes", f"must be >= {2 if ocr else 1} (one object region per class)"
            )
        if not head or head == "aux":
            raise OptionError("head", f"{head!r} cannot name the output head")
        if ocr and (ocr_mid_channels < 1 or ocr_key_channels < 1):
            raise OptionError("ocr_mid_channels", "OCR widths must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise OptionError("dropout", f"must be in [0, 1), got {dropout}")
        names = timm.list_models("hrnet*")
        if backbone not in names:
            raise OptionError(
                "backbone", f"unknown HRNet backbone {backbone!r}; one of {', '.join(names)}"
            )
        self.encoder = timm.create_model(
            backbone,
            pretrained=False,  # never download; local weights are loaded below
            features_only=True,
            feature_location="",  # the HRNet branches themselves (strides 4..32)
            out_indices=(1, 2, 3, 4),
            in_chans=in_channels,
        )
        channels = int(sum(self.encoder.feature_info.channels()))
        self.in_channels = in_channels
        self.classes = classes
        self.head = head
        self.feature_channels = channels
        if ocr:
            self.ocr: OCRHead | None = OCRHead(
                channels, classes, ocr_mid_channels, ocr_key_channels, dropout
            )
            self.seg_head: nn.Module | None = None
            self.aux_weight = AUX_WEIGHT
        else:
            self.ocr = None
            self.seg_head = nn.Sequential(
                _conv_bn_relu(channels, channels), nn.Conv2d(channels, classes, 1)
            )
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights, in_channels, skip=_HEAD_MODULES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """HRNetV2 representation: all branches upsampled to stride 4 and concatenated."""
        branches = self.encoder(x)
        size = branches[0].shape[-2:]
        up = [
            F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]
        ]
        return torch.cat([branches[0], *up], dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits ``{head: (N,K,H,W)}`` (plus ``"aux"`` with OCR) for ``x`` (N,C,H,W)."""
        h, w = x.shape[-2:]
        if h % self.output_stride or w % self.output_stride:
            raise InputError(
                "model input",
                f"size {h}x{w} must be a multiple of {self.output_stride}; pad the chip",
            )
        feats = self.features(x)
        if self.ocr is not None:
            logits, aux = self.ocr(feats)
            return {self.head: _upsample(logits, (h, w)), "aux": _upsample(aux, (h, w))}
        assert self.seg_head is not None
        return {self.head: _upsample(self.seg_head(feats), (h, w))}


def _upsample(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)


# HRNet + OCR, and HRNet with the HRNetV2 segmentation head and no OCR (the baseline)
register("hrnet_ocr", HRNetSegmenter, ocr=True)
register("hrnet", HRNetSegmenter, ocr=False)
