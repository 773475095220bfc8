"""U-TAE: U-Net with a temporal attention encoder for satellite image time series.

Garnot and Landrieu 2021, "Panoptic Segmentation of Satellite Image Time Series with
Convolutional Temporal Attention Networks" (ICCV). Reference implementation:
github.com/VSainteuf/utae-paps (read to check the formulas; this code is ours).

1. A convolutional U-Net encoder is shared over time: every date ``t`` of a series
   ``X`` (B,T,C,H,W) goes through the same stages (3x3 conv blocks, then 4x4 stride-2
   down-convolutions with a residual 3x3 block), giving feature maps at strides
   1, 2, 4, 8 for the published four stages.
2. At the lowest resolution a lightweight temporal attention encoder (L-TAE, Garnot and
   Landrieu 2020) collapses the time axis per pixel: the features are group-normalised,
   projected to ``d_model``, summed with a sinusoidal encoding of the acquisition day
   ``p(d)_i = sin/cos(d / 1000^(2 floor(i/2) / (d_model/H)))`` (repeated for the ``H``
   heads), and each head ``h`` has a learnt master query ``q_h`` (size ``d_k``):
   ``a_h = softmax_t(q_h . k_h(t) / sqrt(d_k))`` with keys ``k_h(t) = W_h e(t)``; the
   head output is ``sum_t a_h(t) v_h(t)`` with ``v_h`` the ``h``-th channel group of the
   projected input. The heads are concatenated and pass an MLP (Linear-BN-ReLU) and a
   group norm.
3. The attention masks ``a_h`` (H,B,T,h,w) are upsampled bilinearly to each skip
   connection and applied to the same channel groups of the skip features ("att_group"
   aggregation); the decoder (transposed 4x4 stride-2 convolutions, 1x1-conv'd skips,
   residual 3x3 blocks) then works on single feature maps, without time.
4. An output block (3x3 conv-BN-ReLU, then a 3x3 conv to the K classes) gives logits.

Padded or missing dates are given by a mask (``series_mask`` (B,T), True for a real
date): the encoder runs on real dates only, padded dates get zero features, their
attention score is ``-inf`` (``finfo.min``) before the softmax and their weight 0
after it, so whatever a padded frame holds (zeros, garbage, NaN) does not change the
output, and a sample without any real date gets zero temporal features.

Departures (ours): the L-TAE's input group norm takes its statistics over the real dates
only (the reference normalises over all T positions, so padding changes the result);
the output block ends with a plain convolution (the reference puts BN + ReLU on the
logits too: 40 parameters less at 20 classes); the reference derives the padding mask
from frames equal to a pad value, we take it as an input; series whose height or width
is not a multiple of ``2**(stages-1)`` are padded by replication and the output
cropped back; ``days`` default to monthly steps ``0, 30, 60, ...`` when not given.

Published PASTIS configuration (``UTAE(in_channels=10, classes=20)``, the defaults
below except the band and class counts): encoder widths (64, 64, 64, 128), decoder
(32, 32, 64, 128), 16 heads, ``d_model`` 256, ``d_k`` 4: 1.09 M parameters (paper:
1.1 M, 63.1 mIoU on PASTIS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from landforge.errors import InputError, OptionError
from landforge.models.registry import register

__all__ = [
    "UTAE",
    "LTAE2d",
    "PositionalEncoding",
    "series_mask_or_all",
    "default_days",
]

_NORM_GROUPS = 4  # group norm groups in the encoder (reference: 4)


def default_days(series: torch.Tensor) -> torch.Tensor:
    """Monthly acquisition day offsets ``0, 30, 60, ...`` (B,T) for a series (B,T,...)."""
    b, t = series.shape[:2]
    return (torch.arange(t, device=series.device) * 30).expand(b, t)


def series_mask_or_all(series: torch.Tensor, series_mask: torch.Tensor | None) -> torch.Tensor:
    """``series_mask`` as a (B,T) bool tensor; all dates real when it is None.

    Raises:
        InputError: if the mask's shape is not (B,T) of the series.
    """
    b, t = series.shape[:2]
    if series_mask is None:
        return torch.ones(b, t, dtype=torch.bool, device=series.device)
    if tuple(series_mask.shape) != (b, t):
        raise InputError(
            "series_mask",
            f"shape {tuple(series_mask.shape)} does not match the series (B,T)=({b},{t})",
        )
    return series_mask.to(device=series.device, dtype=torch.bool)


class PositionalEncoding(nn.Module):
    """Sinusoidal encoding of acquisition days (Vaswani et al. 2017, days as positions).

    ``p(d)_{2i} = sin(d / T^(2i/c))``, ``p(d)_{2i+1} = cos(d / T^(2i/c))`` over ``c``
    channels, repeated ``repeat`` times (once per attention head).

    Args:
        channels: encoding width per head ``c``.
        period: the constant ``T`` (1000 in L-TAE).
        repeat: number of copies concatenated along the channels.
    """

    denom: torch.Tensor

    def __init__(self, channels: int, period: float = 1000.0, repeat: int = 1) -> None:
        super().__init__()
        self.repeat = repeat
        exponent = 2 * torch.div(torch.arange(channels), 2, rounding_mode="floor") / channels
        self.register_buffer("denom", torch.pow(float(period), exponent.float()), persistent=False)

    def forward(self, days: torch.Tensor) -> torch.Tensor:
        """(..., repeat * channels) encoding of ``days`` (...)."""
        angle = days.to(self.denom.dtype)[..., None] / self.denom
        enc = torch.empty_like(angle)
        enc[..., 0::2] = torch.sin(angle[..., 0::2])
        enc[..., 1::2] = torch.cos(angle[..., 1::2])
        return enc.repeat(*([1] * (enc.ndim - 1)), self.repeat)


def _masked_group_norm(
    x: torch.Tensor, mask: torch.Tensor, norm: nn.GroupNorm, eps: float = 1e-5
) -> torch.Tensor:
    """Group norm of ``x`` (N,T,C) with statistics over the real dates only (ours).

    Args:
        x: per-pixel sequences (N,T,C).
        mask: (N,T) bool, True for real dates.
        norm: the affine parameters and group count.
        eps: variance floor.
    """
    n, t, c = x.shape
    g = norm.num_groups
    xg = x.reshape(n, t, g, c // g)
    w = mask.to(x.dtype)[:, :, None, None]
    count = (w.sum(dim=1, keepdim=True) * (c // g)).clamp_min(1.0)
    mean = (xg * w).sum(dim=(1, 3), keepdim=True) / count
    var = (((xg - mean) ** 2) * w).sum(dim=(1, 3), keepdim=True) / count
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(n, t, c)
    return out * norm.weight + norm.bias


class LTAE2d(nn.Module):
    """Lightweight temporal attention encoder applied to every pixel of a feature map.

    Args:
        in_channels: channels of the input feature maps (a multiple of ``n_head``).
        n_head: attention heads ``H``.
        d_k: width of the keys and master queries.
        d_model: width of the projected input (a multiple of ``n_head``).
        out_channels: width of the output (the MLP's last layer).
        dropout: dropout after the MLP.
        period: period ``T`` of the positional encoding.
    """

    def __init__(
        self,
        in_channels: int = 128,
        n_head: int = 16,
        d_k: int = 4,
        d_model: int = 256,
        out_channels: int = 128,
        dropout: float = 0.2,
        period: float = 1000.0,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_k
        self.in_norm = nn.GroupNorm(n_head, in_channels)
        self.inconv = nn.Linear(in_channels, d_model)
        self.positional = PositionalEncoding(d_model // n_head, period, repeat=n_head)
        self.query = nn.Parameter(torch.empty(n_head, d_k))
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_model, n_head * d_k)
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.attn_dropout = nn.Dropout(0.1)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, out_channels), nn.BatchNorm1d(out_channels), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.GroupNorm(n_head, out_channels)

    def forward(
        self, x: torch.Tensor, days: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``x`` (B,T,C,h,w) into (B,out,h,w) and the attention (H,B,T,h,w).

        Args:
            x: feature maps of the dates (padded dates may hold anything finite).
            days: (B,T) acquisition day offsets.
            mask: (B,T) bool, True for real dates.
        """
        b, t, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        pix_mask = mask[:, None, :].expand(b, h * w, t).reshape(b * h * w, t)
        seq = _masked_group_norm(seq, pix_mask, self.in_norm)
        seq = self.inconv(seq)  # (N,T,d_model)
        pos = self.positional(days)  # (B,T,d_model)
        seq = seq + pos[:, None].expand(b, h * w, t, -1).reshape(b * h * w, t, -1)
        seq = seq.masked_fill(~pix_mask[..., None], 0.0)

        keys = self.key(seq).reshape(b * h * w, t, self.n_head, self.d_k)
        scores = torch.einsum("ntkd,kd->nkt", keys, self.query) / math.sqrt(self.d_k)
        scores = scores.masked_fill(~pix_mask[:, None, :], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1) * pix_mask[:, None, :].to(scores.dtype)
        attn = self.attn_dropout(attn)  # (N,H,T)

        values = seq.reshape(b * h * w, t, self.n_head, -1)  # channel groups per head
        heads = torch.einsum("nkt,ntkd->nkd", attn, values).reshape(b * h * w, -1)
        out = self.out_norm(self.dropout(self.mlp(heads)))
        out = out.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        attn_maps = attn.reshape(b, h, w, self.n_head, t).permute(3, 0, 4, 1, 2)
        return out, attn_maps


def _conv_layer(
    widths: Sequence[int], norm: str = "batch", kernel: int = 3, stride: int = 1, padding: int = 1
) -> nn.Sequential:
    """Conv-norm-ReLU layers through ``widths`` (reflect padding, as the reference)."""
    layers: list[nn.Module] = []
    for cin, cout in zip(widths[:-1], widths[1:], strict=False):
        layers.append(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, padding_mode="reflect")
        )
        layers.append(nn.GroupNorm(_NORM_GROUPS, cout) if norm == "group" else nn.BatchNorm2d(cout))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _DownBlock(nn.Module):
    """4x4 stride-2 conv, then a 3x3 conv and a residual 3x3 conv (shared over time)."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.down = _conv_layer([cin, cin], norm, kernel=4, stride=2, padding=1)
        self.conv1 = _conv_layer([cin, cout], norm)
        self.conv2 = _conv_layer([cout, cout], norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Half-resolution features of ``x`` (N,cin,H,W)."""
        out = self.conv1(self.down(x))
        return out + self.conv2(out)


class _UpBlock(nn.Module):
    """Transposed 4x4 stride-2 conv, 1x1-conv'd skip concatenated, residual 3x3 block."""

    def __init__(self, cin: int, cout: int, skip: int) -> None:
        super().__init__()
        self.skip_conv = nn.Sequential(nn.Conv2d(skip, skip, 1), nn.BatchNorm2d(skip), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()
        )
        self.conv1 = _conv_layer([cout + skip, cout])
        self.conv2 = _conv_layer([cout, cout])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Double-resolution features of ``x`` fused with ``skip``."""
        out = self.conv1(torch.cat([self.up(x), self.skip_conv(skip)], dim=1))
        return out + self.conv2(out)


def _aggregate(skip: torch.Tensor, attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply the L-TAE attention (H,B,T,h,w) to ``skip`` (B,T,C,H',W') per channel group."""
    n_head, b, t = attn.shape[:3]
    size = skip.shape[-2:]
    maps = attn.reshape(n_head * b, t, *attn.shape[-2:])
    if tuple(size) != tuple(attn.shape[-2:]):
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    maps = maps.reshape(n_head, b, t, *size) * mask.to(maps.dtype)[None, :, :, None, None]
    groups = skip.reshape(b, t, n_head, -1, *size)  # channel groups, as the L-TAE heads
    out = torch.einsum("kbtxy,btkcxy->bkcxy", maps, groups)
    return out.reshape(b, -1, *size)


class UTAE(nn.Module):
    """U-TAE series segmenter: ``forward(series, days, series_mask=None) -> (B,K,h,w)``.

    Args:
        in_channels: bands of the series frames (14 for landforge's S2 + S1 stack; 10 in
            the published PASTIS configuration).
        classes: classes K of the output logits.
        encoder_widths: encoder stage widths, top (full resolution) first; multiples of 4.
        decoder_widths: decoder widths, same length; the last equals the encoder's last.
        out_channels: width of the output block's hidden conv.
        n_head: L-TAE heads (divide the last encoder width and ``d_model``).
        d_model: L-TAE projection width.
        d_k: L-TAE key and query width.
        encoder_norm: ``group`` (reference) or ``batch``.
        dropout: dropout after the L-TAE MLP.
        period: period of the day positional encoding.
    """

    def __init__(
        self,
        in_channels: int = 14,
        classes: int = 18,
        encoder_widths: Sequence[int] = (64, 64, 64, 128),
        decoder_widths: Sequence[int] = (32, 32, 64, 128),
        out_channels: int = 32,
        n_head: int = 16,
        d_model: int = 256,
        d_k: int = 4,
        encoder_norm: str = "group",
        dropout: float = 0.2,
        period: float = 1000.0,
    ) -> None:
        super().__init__()
        enc, dec = [int(c) for c in encoder_widths], [int(c) for c in decoder_widths]
        _check_options(in_channels, classes, enc, dec, n_head, d_model, encoder_norm)
        self.in_channels = in_channels
        self.classes = classes
        self.n_stages = len(enc)
        self.feature_channels = dec[0]
        self.in_conv = _conv_layer([in_channels, enc[0], enc[0]], encoder_norm)
        self.down = nn.ModuleList(
            _DownBlock(enc[i], enc[i + 1], encoder_norm) for i in range(self.n_stages - 1)
        )
        self.temporal = LTAE2d(enc[-1], n_head, d_k, d_model, enc[-1], dropout, period)
        self.up = nn.ModuleList(
            _UpBlock(dec[i], dec[i - 1], enc[i - 1]) for i in range(self.n_stages - 1, 0, -1)
        )
        self.out_conv = nn.Sequential(
            _conv_layer([dec[0], out_channels]),
            nn.Conv2d(out_channels, classes, 3, padding=1, padding_mode="reflect"),
        )

    @property
    def size_multiple(self) -> int:
        """Series height and width are padded to a multiple of this."""
        return int(2 ** (self.n_stages - 1))

    def features(
        self,
        series: torch.Tensor,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder features (B, decoder_widths[0], h, w) of a series (B,T,C,h,w)."""
        if series.ndim != 5 or series.shape[2] != self.in_channels:
            raise InputError(
                "series",
                f"expected (B,T,{self.in_channels},h,w), got shape {tuple(series.shape)}",
            )
        b, t, c, h, w = series.shape
        if t == 0:
            raise InputError("series", "U-TAE needs at least one date (T = 0)")
        mask = series_mask_or_all(series, series_mask)
        days = default_days(series) if days is None else days.to(series.device)
        if tuple(days.shape) != (b, t):
            raise InputError("days", f"shape {tuple(days.shape)} does not match (B,T)=({b},{t})")
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        # Encoder on the real dates only: padded frames never enter a convolution.
        real = mask.reshape(-1)
        frames = series.reshape(b * t, c, h, w)[real]
        if ph or pw:
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        feats = [self.in_conv(frames)]
        for block in self.down:
            feats.append(block(feats[-1]))
        maps = [_scatter_dates(f, real, b, t) for f in feats]
        out, attn = self.temporal(maps[-1], days, mask)
        for i, block in enumerate(self.up):
            out = block(out, _aggregate(maps[-(i + 2)], attn, mask))
        return out[..., :h, :w]

    def forward(
        self,
        series: torch.Tensor,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits (B,K,h,w) of a series (B,T,C,h,w) with day offsets (B,T)."""
        return self.out_conv(self.features(series, days, series_mask))


def _scatter_dates(frames: torch.Tensor, real: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """(B,T,C,H,W) with the real dates' ``frames`` in place and zeros for padded dates."""
    out = frames.new_zeros((b * t, *frames.shape[1:]))
    out[real] = frames
    return out.reshape(b, t, *frames.shape[1:])


def _check_options(
    in_channels: int,
    classes: int,
    enc: list[int],
    dec: list[int],
    n_head: int,
    d_model: int,
    encoder_norm: str,
) -> None:
    if in_channels < 1:
        raise OptionError("in_channels", f"must be >= 1, got {in_channels}")
    if classes < 1:
        raise OptionError("classes", f"must be >= 1, got {classes}")
    if len(enc) < 2 or len(enc) != len(dec):
        raise OptionError(
            "decoder_widths", "give as many decoder as encoder widths (at least two stages)"
        )
    if enc[-1] != dec[-1]:
        raise OptionError("decoder_widths", "the last decoder width must equal the encoder's")
    if encoder_norm not in ("group", "batch"):
        raise OptionError("encoder_norm", f"'group' or 'batch', got {encoder_norm!r}")
    if encoder_norm == "group" and any(c % _NORM_GROUPS for c in enc):
        raise OptionError("encoder_widths", f"must be multiples of {_NORM_GROUPS} (group norm)")
    if n_head < 1 or any(c % n_head for c in enc) or d_model % n_head:
        raise OptionError("n_head", f"{n_head} heads must divide every encoder width and d_model")


register("utae", UTAE)
