"""FUSU-Net: bi-temporal HRNet + U-TAE over a Sentinel-1/2 series, for change segmentation.

After Yuan et al. 2024, "FUSU: A Multi-temporal-source Land Use Change Segmentation
Dataset for Fine-grained Urban Semantic Understanding" (NeurIPS Datasets and
Benchmarks), Fig. 5, and its released code (github.com/yuanshuai0914/FUSU, read for
the structure; this code is ours).

``forward(img1, img2, series=None, days=None, series_mask=None)`` takes two
high-resolution images (B,C,H,W) and a monthly series (B,T,Cs,h,w) over a footprint
five times the patch extent, centred on it, and returns

- ``seg1``, ``seg2`` (B,K,H,W): class logits of each date;
- ``change`` (B,1,H,W): binary change logits (BCE; no sigmoid inside);
- ``seg_ts`` (B,K,H,W): class logits from the series branch alone (trained against the
  T1 label), only when the series branch ran.

Structure:

1. Bi-temporal branch: one timm HRNet (shared weights) on both images; its four branches
   upsampled to stride 4 and concatenated (HRNetV2: 270 channels for the W18 models),
   ``f1`` and ``f2``.
2. Series branch: a :class:`~landforge.models.utae.UTAE` over the whole series extent
   gives decoder features ``u`` (B,D,h,w). (a) "cropped": the middle ``1/5`` of ``u``
   (the patch footprint), a 1x1 conv to the HRNet width, bilinear upsampling to the
   stride-4 grid of the patch; (b) "collapsed" context over the full extent: a dilated
   residual bottleneck (1x1 reduce, 3x3 convs with dilations 2 and 4, 1x1 expand), a
   global average and a 1x1 conv to the HRNet width, broadcast over the patch. The two
   are added: ``s = crop + context``.
3. Fusion: ``f1' = f1 + s``, ``f2' = f2 + s``.
4. Heads: one segmentation head (ASPP, PSP or FCN; ``seg_head``) with shared weights
   applied to ``f1'``, ``f2'`` and to ``s`` alone (``seg_ts``), as in the released code;
   a change head with pyramid pooling (PSP, bins 1, 2, 3, 6) on ``|f1' - f2'|``. All
   logits are upsampled bilinearly to (H,W).

Note: since ``s`` is added to both dates, it cancels in ``|f1' - f2'|``: as in the
paper's code, the series reaches the change output only through the shared backbone
and heads trained jointly. ``change_series=True`` (ours) adds ``s`` to the difference
as well, so the change head sees the series directly.

``series=None``, a series with T = 0, or a sample whose ``series_mask`` is all False
skip the series branch (``s = 0`` for that sample): the 0-time-step case. ``fusu_hrnet``
is the same model without the series branch (its parameters are not even built), the
HRNet-alone baseline.

Departures (ours): the paper names a "dilated bottleneck" for the full-extent context
but not its layout; the released code uses a global mean and an MLP instead. Pooled
branches of the pyramid pooling and ASPP modules have no batch norm (a 1x1 pooled map
cannot be batch-normalised with batch size 1). The HRNet is randomly initialised or
loaded from a local safetensors file, never downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

import landforge._compat  # noqa: F401  (before timm imports torchvision)
from landforge.errors import InputError, OptionError
from landforge.models.multitask_unet import load_encoder_weights
from landforge.models.registry import register
from landforge.models.utae import UTAE, series_mask_or_all

__all__ = [
    "FusuNet",
    "ASPPHead",
    "PSPHead",
    "FCNHead",
    "centre_crop",
    "SERIES_CHANNELS",
]

SERIES_CHANNELS = 14
"""Sentinel-2 B1-B8, B8A, B9, B11, B12, then Sentinel-1 VV, VH (FUSU's order)."""

# timm HRNet classification modules absent from the branch-feature backbone.
_HEAD_MODULES = ("incre_modules", "downsamp_modules", "final_layer", "classifier")


def _cbr(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)


def centre_crop(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The middle ``fraction`` of ``x`` (..., h, w) along both axes (at least 1 pixel).

    A series over five times the patch extent, centred on it, covers the patch in its
    middle fifth: ``fraction = 0.2`` (128 px -> rows 51..76, 26 px).
    """
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


class _PooledBranch(nn.Module):
    """Adaptive average pool to ``bins`` x ``bins``, 1x1 conv + ReLU, upsample back."""

    def __init__(self, cin: int, cout: int, bins: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(bins)
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled context of ``x`` at its own size."""
        return _up(self.conv(self.pool(x)), x.shape[-2:])


class PSPHead(nn.Module):
    """Pyramid pooling (Zhao et al. 2017, bins 1, 2, 3, 6) and a classifier.

    Args:
        in_channels: feature channels.
        classes: output channels.
        channels: width of the 3x3 conv after the pyramid.
        bins: pooled grid sizes.
        dropout: channel dropout before the classifier.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        channels: int = 128,
        bins: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        branch = max(1, in_channels // len(bins))
        self.pools = nn.ModuleList(_PooledBranch(in_channels, branch, b) for b in bins)
        self.fuse = _cbr(in_channels + branch * len(bins), channels, 3)
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(channels, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the resolution of ``x``."""
        return self.classifier(self.fuse(torch.cat([x, *(p(x) for p in self.pools)], dim=1)))


class ASPPHead(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al. 2017) and a classifier.

    Args:
        in_channels: feature channels.
        classes: output channels.
        channels: width of each ASPP branch and of the projection.
        rates: dilation rates of the three 3x3 branches (FUSU's code: 12, 24, 36).
        dropout: channel dropout after the projection.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        channels: int = 128,
        rates: Sequence[int] = (12, 24, 36),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_cbr(in_channels, channels)] + [_cbr(in_channels, channels, 3, r) for r in rates]
        )
        self.image_pool = _PooledBranch(in_channels, channels, 1)
        self.project = nn.Sequential(
            _cbr(channels * (len(rates) + 2), channels), nn.Dropout2d(dropout)
        )
        self.classifier = nn.Sequential(
            _cbr(channels, channels, 3), nn.Conv2d(channels, classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the resolution of ``x``."""
        feats = [b(x) for b in self.branches] + [self.image_pool(x)]
        return self.classifier(self.project(torch.cat(feats, dim=1)))


class FCNHead(nn.Module):
    """3x3 conv-BN-ReLU, dropout, 1x1 classifier (the released FUSU code's head).

    Args:
        in_channels: feature channels.
        classes: output channels.
        channels: hidden width.
        dropout: channel dropout.
    """

    def __init__(
        self, in_channels: int, classes: int, channels: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _cbr(in_channels, channels, 3), nn.Dropout2d(dropout), nn.Conv2d(channels, classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the resolution of ``x``."""
        return self.body(x)


_HEADS = {"aspp": ASPPHead, "psp": PSPHead, "fcn": FCNHead}


class _SeriesFusion(nn.Module):
    """U-TAE over the series -> cropped + collapsed features at the HRNet width."""

    def __init__(
        self, series_channels: int, width: int, utae: Mapping[str, Any], fraction: float
    ) -> None:
        super().__init__()
        try:
            self.utae = UTAE(in_channels=series_channels, classes=1, **dict(utae))
        except OptionError as exc:
            raise OptionError(f"utae.{exc.field}", exc.problem) from None
        except TypeError as exc:
            raise OptionError("utae", f"bad U-TAE options: {exc}") from None
        # the U-TAE's own classifier is not used: the series logits come from the shared head
        del self.utae.out_conv
        d = self.utae.feature_channels
        mid = max(d // 2, 4)
        self.fraction = fraction
        self.crop_proj = nn.Conv2d(d, width, 1)
        self.bottleneck = nn.ModuleList(
            [_cbr(d, mid), _cbr(mid, mid, 3, 2), _cbr(mid, mid, 3, 4), nn.Conv2d(mid, d, 1)]
        )
        self.context_proj = nn.Conv2d(d, width, 1)

    def forward(
        self,
        series: torch.Tensor,
        days: torch.Tensor | None,
        mask: torch.Tensor,
        size: Sequence[int],
    ) -> torch.Tensor:
        """Series features (B,width,*size) on the patch's stride-4 grid."""
        u = self.utae.features(series, days, mask)
        crop = _up(self.crop_proj(centre_crop(u, self.fraction)), size)
        z = u
        for layer in self.bottleneck:
            z = layer(z)
        context = self.context_proj((u + z).mean(dim=(-2, -1), keepdim=True))
        return crop + context


class FusuNet(nn.Module):
    """FUSU-Net (``fusu_net``) or its bi-temporal branch alone (``fusu_hrnet``).

    Args:
        in_channels: bands of the high-resolution images.
        series_channels: bands of the series frames (14: S2 B1-B8, B8A, B9, B11, B12,
            S1 VV, VH).
        classes: classes K of the segmentation heads (18 = FUSU's 17 + class 0).
        backbone: a timm HRNet name (``hrnet_w18`` in FUSU; ``hrnet_w18_small`` is the
            smallest).
        seg_head: ``aspp``, ``psp`` or ``fcn``.
        head_channels: width of the segmentation and change heads.
        series_branch: with the U-TAE branch (``fusu_net``) or not (``fusu_hrnet``).
        utae: U-TAE options (``encoder_widths``, ``decoder_widths``, ``n_head``,
            ``d_model``, ``d_k`` ...); the published PASTIS configuration by default.
        footprint_fraction: the patch's share of the series extent per axis (1/5).
        change_series: also add the series features to the change head's input (ours).
        encoder_weights: None (random init) or a local ``.safetensors`` timm HRNet state
            dict.
    """

    output_stride = 32

    def __init__(
        self,
        in_channels: int = 3,
        series_channels: int = SERIES_CHANNELS,
        classes: int = 18,
        backbone: str = "hrnet_w18",
        seg_head: str = "aspp",
        head_channels: int = 128,
        series_branch: bool = True,
        utae: Mapping[str, Any] | None = None,
        footprint_fraction: float = 0.2,
        change_series: bool = False,
        encoder_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        import timm

        if in_channels < 1:
            raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
        if series_channels < 1:
            raise OptionError("series_channels", f"must be >= 1, got {series_channels}")
        if classes < 2:
            raise OptionError("classes", f"must be >= 2, got {classes}")
        if seg_head not in _HEADS:
            raise OptionError("seg_head", f"one of {', '.join(_HEADS)}, got {seg_head!r}")
        if head_channels < 1:
            raise OptionError("head_channels", f"must be >= 1, got {head_channels}")
        if not 0.0 < footprint_fraction <= 1.0:
            raise OptionError("footprint_fraction", f"must be in (0, 1], got {footprint_fraction}")
        names = timm.list_models("hrnet*")
        if backbone not in names:
            raise OptionError("backbone", f"unknown HRNet {backbone!r}; one of {', '.join(names)}")
        encoder = timm.create_model(
            backbone,
            pretrained=False,  # never download
            features_only=True,
            feature_location="",
            out_indices=(1, 2, 3, 4),
            in_chans=in_channels,
        )
        info: Any = encoder.feature_info
        width = int(sum(info.channels()))
        self.encoder = encoder
        self.in_channels = in_channels
        self.series_channels = series_channels
        self.classes = classes
        self.feature_channels = width
        self.change_series = change_series
        self.series: _SeriesFusion | None = (
            _SeriesFusion(series_channels, width, utae or {}, footprint_fraction)
            if series_branch
            else None
        )
        self.seg_head = _HEADS[seg_head](width, classes, head_channels)
        self.change_head = PSPHead(width, 1, head_channels)
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights, in_channels, skip=_HEAD_MODULES)

    @property
    def uses_series(self) -> bool:
        """Whether the model has a series branch (returns ``seg_ts`` when it runs)."""
        return self.series is not None

    @property
    def size_multiple(self) -> int:
        """The high-resolution height and width must be multiples of this."""
        return self.output_stride

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """HRNetV2 stride-4 representation of ``x`` (all branches concatenated)."""
        branches = self.encoder(x)
        size = branches[0].shape[-2:]
        return torch.cat([branches[0], *(_up(b, size) for b in branches[1:])], dim=1)

    def forward(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        series: torch.Tensor | None = None,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Logits ``seg1``, ``seg2`` (B,K,H,W), ``change`` (B,1,H,W) [, ``seg_ts``]."""
        _check_pair(img1, img2, self.in_channels, self.output_stride)
        h, w = img1.shape[-2:]
        f = self.features(torch.cat([img1, img2], dim=0))  # shared weights, one pass
        f1, f2 = f.chunk(2, dim=0)
        s = self._series_features(series, days, series_mask, f1.shape[-2:])
        if s is not None:
            f1, f2 = f1 + s, f2 + s
        diff = (f1 - f2).abs()
        if s is not None and self.change_series:
            diff = diff + s
        seg = self.seg_head(torch.cat([f1, f2], dim=0))
        seg1, seg2 = seg.chunk(2, dim=0)
        out = {
            "seg1": _up(seg1, (h, w)),
            "seg2": _up(seg2, (h, w)),
            "change": _up(self.change_head(diff), (h, w)),
        }
        if s is not None:
            out["seg_ts"] = _up(self.seg_head(s), (h, w))
        return out

    def _series_features(
        self,
        series: torch.Tensor | None,
        days: torch.Tensor | None,
        series_mask: torch.Tensor | None,
        size: Sequence[int],
    ) -> torch.Tensor | None:
        if self.series is None or series is None or series.shape[1] == 0:
            return None
        if series.ndim != 5 or series.shape[2] != self.series_channels:
            raise InputError(
                "series",
                f"expected (B,T,{self.series_channels},h,w), got shape {tuple(series.shape)}",
            )
        mask = series_mask_or_all(series, series_mask)
        has_dates = mask.any(dim=1)
        if not bool(has_dates.any()):
            return None
        s = self.series(series, days, mask, size)
        # a sample without any real date gets no series features (its 0-step output)
        return s * has_dates.to(s.dtype)[:, None, None, None]


def _check_pair(img1: torch.Tensor, img2: torch.Tensor, channels: int, multiple: int) -> None:
    if img1.shape != img2.shape:
        raise InputError(
            "img2", f"shape {tuple(img2.shape)} differs from img1's {tuple(img1.shape)}"
        )
    if img1.ndim != 4 or img1.shape[1] != channels:
        raise InputError("img1", f"expected (B,{channels},H,W), got {tuple(img1.shape)}")
    h, w = img1.shape[-2:]
    if h % multiple or w % multiple:
        raise InputError("model input", f"size {h}x{w} must be a multiple of {multiple}; pad")


register("fusu_net", FusuNet, series_branch=True)
register("fusu_hrnet", FusuNet, series_branch=False)
