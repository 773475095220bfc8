"""Change-segmentation baselines: FC-Siam-diff and U-TAE alone.

Both follow the change-model contract of :mod:`~landforge.models.fusu_net`:
``forward(img1, img2, series=None, days=None, series_mask=None) -> dict`` and builders
taking ``in_channels``, ``series_channels`` and ``classes`` (a model that does not use
one of them accepts and ignores it, so training fills all three in for any model).

- ``fc_siam_diff``: the fully convolutional siamese U-Net with difference skips of
  Daudt, Le Saux and Boulch 2018 ("Fully convolutional siamese networks for change
  detection", ICIP; also in torchgeo and open-cd). A shared encoder (stages of 2, 2, 3,
  3 conv3x3-BN-ReLU-dropout layers, widths 16, 32, 64, 128, 2x2 max pooling after each)
  runs on both images; the decoder upsamples with stride-2 transposed convolutions and
  concatenates ``|e1 - e2|`` of each stage's features. It returns ``change`` (B,1,H,W)
  only (one logit for BCE instead of the paper's two-class log-softmax; ``classes`` is
  ignored): the binary-change baseline. Any H, W work (decoder maps are padded by
  replication to the skip's size, as in the paper's code). Published size: 1.35 M
  parameters (3 bands, 2 outputs).
- ``utae_change`` (ours): U-TAE alone, the series-only baseline. The U-TAE decoder
  features over the whole series extent are centre-cropped to the patch footprint (the
  middle 1/5), upsampled bilinearly to the high-resolution size (H,W), and three 1x1
  heads give ``seg1`` (the T1 label), ``seg2`` (the T2 label) and ``change``. The series
  runs from T1 to T2, and the day encoding lets attention heads pick early or late
  dates, so one temporal encoding serves both dates. The high-resolution images are
  used for their size only; a series is required. There is no ``seg_ts`` (``seg1`` is
  already the series' prediction of the T1 label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from landforge.errors import InputError, OptionError
from landforge.models.fusu_net import SERIES_CHANNELS, centre_crop
from landforge.models.registry import register
from landforge.models.utae import UTAE

__all__ = ["FCSiamDiff", "UTAEChange"]


def _layer(cin: int, cout: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


class FCSiamDiff(nn.Module):
    """FC-Siam-diff (Daudt et al. 2018): ``forward(img1, img2, ...) -> {"change": ...}``.

    Args:
        in_channels: bands of each image.
        series_channels: ignored (no series branch).
        classes: ignored (no segmentation heads).
        widths: encoder stage widths (16, 32, 64, 128 in the paper).
        depths: conv layers per stage (2, 2, 3, 3 in the paper).
        dropout: channel dropout after every layer (0.2 in the paper).
        out_channels: change outputs (1: a logit for BCE; 2 reproduces the paper's size).
    """

    def __init__(
        self,
        in_channels: int = 3,
        series_channels: int = SERIES_CHANNELS,
        classes: int | None = None,
        widths: Sequence[int] = (16, 32, 64, 128),
        depths: Sequence[int] = (2, 2, 3, 3),
        dropout: float = 0.2,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        widths, depths = [int(w) for w in widths], [int(d) for d in depths]
        if in_channels < 1:
            raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
        if len(widths) != len(depths) or not widths or min(depths) < 2 or min(widths) < 1:
            raise OptionError("depths", "one depth (>= 2) per width (>= 1)")
        if not 0.0 <= dropout < 1.0:
            raise OptionError("dropout", f"must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.encoder = nn.ModuleList()
        cin = in_channels
        for w, d in zip(widths, depths, strict=True):
            self.encoder.append(
                nn.Sequential(*(_layer(cin if i == 0 else w, w, dropout) for i in range(d)))
            )
            cin = w
        self.upconvs = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(len(widths) - 1, -1, -1):
            w, d = widths[level], depths[level]
            below = widths[level - 1] if level > 0 else None
            self.upconvs.append(nn.ConvTranspose2d(w, w, 3, stride=2, padding=1, output_padding=1))
            layers: list[nn.Module] = [_layer(2 * w, w, dropout)]
            layers += [_layer(w, w, dropout) for _ in range(d - 2)]
            layers.append(
                _layer(w, below, dropout)
                if below is not None
                else nn.Conv2d(w, out_channels, 3, padding=1)
            )
            self.decoder.append(nn.Sequential(*layers))

    uses_series = False
    size_multiple = 1

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return skips + [x]

    def forward(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        series: torch.Tensor | None = None,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Change logits ``{"change": (B,1,H,W)}``; the series arguments are ignored."""
        if img1.shape != img2.shape or img1.ndim != 4 or img1.shape[1] != self.in_channels:
            raise InputError(
                "img1",
                f"expected two (B,{self.in_channels},H,W) images of one shape, got "
                f"{tuple(img1.shape)} and {tuple(img2.shape)}",
            )
        n = len(self.encoder)
        if min(img1.shape[-2:]) < 2**n:
            raise InputError("model input", f"images must be at least {2**n} px on each side")
        feats = self._encode(torch.cat([img1, img2], dim=0))  # shared weights
        halves = [f.chunk(2, dim=0) for f in feats]
        x = halves[-1][1]  # the deepest pooled features of img2 (as the paper's code)
        for i, (up, dec) in enumerate(zip(self.upconvs, self.decoder, strict=True)):
            a, b = halves[n - 1 - i]
            x = up(x)
            x = F.pad(x, (0, a.shape[-1] - x.shape[-1], 0, a.shape[-2] - x.shape[-2]), "replicate")
            x = dec(torch.cat([x, (a - b).abs()], dim=1))
        return {"change": x}


class UTAEChange(nn.Module):
    """U-TAE alone as a change baseline (``utae_change``; design in the module docstring).

    Args:
        in_channels: ignored (the high-resolution images give the output size only).
        series_channels: bands of the series frames.
        classes: classes K of ``seg1`` and ``seg2``.
        utae: U-TAE options (published PASTIS configuration by default).
        footprint_fraction: the patch's share of the series extent per axis (1/5).
    """

    uses_series = True
    size_multiple = 1

    def __init__(
        self,
        in_channels: int = 3,
        series_channels: int = SERIES_CHANNELS,
        classes: int = 18,
        utae: Mapping[str, Any] | None = None,
        footprint_fraction: float = 0.2,
    ) -> None:
        super().__init__()
        if classes < 2:
            raise OptionError("classes", f"must be >= 2, got {classes}")
        if not 0.0 < footprint_fraction <= 1.0:
            raise OptionError("footprint_fraction", f"must be in (0, 1], got {footprint_fraction}")
        try:
            self.utae = UTAE(in_channels=series_channels, classes=1, **dict(utae or {}))
        except OptionError as exc:
            raise OptionError(f"utae.{exc.field}", exc.problem) from None
        except TypeError as exc:
            raise OptionError("utae", f"bad U-TAE options: {exc}") from None
        del self.utae.out_conv  # replaced by the three heads below
        d = self.utae.feature_channels
        self.fraction = footprint_fraction
        self.heads = nn.Conv2d(d, 2 * classes + 1, 1)
        self.classes = classes

    def forward(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        series: torch.Tensor | None = None,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``seg1``, ``seg2`` (B,K,H,W) and ``change`` (B,1,H,W) from the series alone."""
        if series is None or series.shape[1] == 0:
            raise InputError("series", "utae_change needs a series with at least one date")
        u = centre_crop(self.utae.features(series, days, series_mask), self.fraction)
        logits = F.interpolate(
            self.heads(u), size=tuple(img1.shape[-2:]), mode="bilinear", align_corners=False
        )
        k = self.classes
        return {"seg1": logits[:, :k], "seg2": logits[:, k : 2 * k], "change": logits[:, 2 * k :]}


register("fc_siam_diff", FCSiamDiff)
register("utae_change", UTAEChange)
