"""InceptionTime: a time-series classifier (Ismail Fawaz et al. 2020), in PyTorch.

"InceptionTime: Finding AlexNet for time series classification" (Data Mining and
Knowledge Discovery 34, 2020). One network of the paper's ensemble:

* an **Inception module** = a bottleneck (1x1 convolution to ``bottleneck`` channels,
  skipped when the input has one channel, as in the reference code), three parallel
  convolutions of the bottleneck output with kernel sizes 10, 20 and 40 (``nf`` filters
  each, no bias, "same" padding) and a fourth branch of max pooling (size 3, stride 1)
  followed by a 1x1 convolution; the four outputs are concatenated (``4 * nf``
  channels), batch-normalised and passed through ReLU;
* ``depth`` modules (6), with a **residual connection every three modules** (the
  shortcut: 1x1 convolution + batch norm of the block's input, added before ReLU);
* **global average pooling** over time, then a linear classifier.

"Same" padding keeps the length, so a module sees at most ``max(kernel_sizes) / 2``
steps either side and the network ``depth`` times that: the receptive field of the
paper. The classifier works for any series length (GAP).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from landforge.errors import OptionError
from landforge.models.registry import register

__all__ = ["InceptionModule", "InceptionTime"]


class _SameConv1d(nn.Conv1d):
    """Convolution without bias, padded so the output keeps the input's length.

    An even kernel ``k`` pads ``(k - 1) // 2`` steps on the left and the rest on the
    right (as Keras' "same", which the reference code uses).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__(in_channels, out_channels, kernel, bias=False)
        self.pads = ((kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) -> (N, out_channels, T)."""
        return super().forward(nn.functional.pad(x, self.pads))


class InceptionModule(nn.Module):
    """Bottleneck + convolutions of several lengths + max-pool branch, concatenated."""

    def __init__(
        self,
        in_channels: int,
        nf: int = 32,
        kernel_sizes: Sequence[int] = (10, 20, 40),
        bottleneck: int = 32,
    ) -> None:
        super().__init__()
        use_bottleneck = bottleneck > 0 and in_channels > 1
        self.bottleneck = (
            nn.Conv1d(in_channels, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        )
        mid = bottleneck if use_bottleneck else in_channels
        self.convs = nn.ModuleList(_SameConv1d(mid, nf, k) for k in kernel_sizes)
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = nn.Conv1d(in_channels, nf, 1, bias=False)
        self.bn = nn.BatchNorm1d(nf * (len(kernel_sizes) + 1))
        self.act = nn.ReLU()

    @property
    def out_channels(self) -> int:
        """Channels of the module's output: ``nf`` per branch."""
        return self.bn.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) -> (N, 4 * nf, T)."""
        z = self.bottleneck(x)
        branches = [conv(z) for conv in self.convs] + [self.pool_conv(self.pool(x))]
        return self.act(self.bn(torch.cat(branches, dim=1)))


class _Shortcut(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class InceptionTime(nn.Module):
    """One InceptionTime network: ``depth`` Inception modules, residual every 3, GAP.

    Args:
        in_channels: channels (variables) of the series.
        classes: number of classes; 0 builds the feature extractor only
            (:meth:`features`), as the parcel fusion model uses it.
        nf: filters per branch (32 in the paper).
        depth: Inception modules (6 in the paper).
        kernel_sizes: convolution lengths (10, 20, 40 in the paper).
        bottleneck: bottleneck channels (32; 0 switches it off).
        residual: residual connections every three modules.
    """

    def __init__(
        self,
        in_channels: int = 1,
        classes: int = 2,
        nf: int = 32,
        depth: int = 6,
        kernel_sizes: Sequence[int] = (10, 20, 40),
        bottleneck: int = 32,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise OptionError("in_channels", f"must be at least 1, got {in_channels}")
        if classes < 0:
            raise OptionError("classes", f"must be >= 0, got {classes}")
        if depth < 1 or nf < 1:
            raise OptionError("depth", "depth and nf must be at least 1")
        self.modules_ = nn.ModuleList()
        self.shortcuts = nn.ModuleDict()
        channels, block_in = in_channels, in_channels
        for d in range(depth):
            module = InceptionModule(channels, nf, tuple(kernel_sizes), bottleneck)
            self.modules_.append(module)
            channels = module.out_channels
            if residual and d % 3 == 2:
                self.shortcuts[str(d)] = _Shortcut(block_in, channels)
                block_in = channels
        self.residual = residual
        self.out_features = channels
        self.act = nn.ReLU()
        self.head = nn.Linear(channels, classes) if classes > 0 else None

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) -> (N, 4 * nf, T): the modules with their residual connections."""
        block_in = x
        for d, module in enumerate(self.modules_):
            x = module(x)
            key = str(d)
            if key in self.shortcuts:
                x = self.act(x + self.shortcuts[key](block_in))
                block_in = x
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) -> (N, 4 * nf) after global average pooling over time."""
        return self.sequence(x).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C, T) -> ``{"label": (N, classes)}`` logits."""
        if self.head is None:
            raise RuntimeError("built with classes=0: use features()")
        return {"label": self.head(self.features(x))}


register("inception_time", InceptionTime)
