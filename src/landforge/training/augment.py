"""Geometric augmentation that keeps image and masks in step.

The eight symmetries of a square (identity, three 90° rotations, two flips, transpose
and anti-transpose) applied to the last two axes of every array of a sample with the
same choice, so a label pixel always stays under the image pixel it describes.

A random rescale (:func:`random_rescale`, the "random scaling" the building-use paper
lists beside flips and rotations; off unless a scale range is given) zooms every array
of a sample by one factor drawn uniformly in ``(lo, hi)``: floating-point arrays (the
image) bilinearly (antialiased when shrinking), integer arrays (labels) by nearest
neighbour, both on the same pixel-centre grid; the result is then cropped (zoom in) or
padded (zoom out) back to the input size at one random offset, so batch shapes do not
change. Padding is ``fill`` (0) in the image, which after per-band normalisation is the
band mean, as nodata pixels are, and ``ignore_index`` in the labels, so the loss skips
it.

Radiometric augmentation is left out on purpose: stats-normalised multi-source bands
(POI maps, NIR) have no single meaning of "brightness".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

__all__ = ["dihedral", "random_dihedral", "random_rescale", "rescale"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` (0..7) of the square on the last two axes of ``x``.

    ``k % 4`` quarter turns counter-clockwise, then a transpose when ``k >= 4``
    (k=4 is the transpose, k=5 a left-right flip, k=6 the anti-transpose, k=7 an
    up-down flip). k=0 returns ``x`` unchanged.
    """
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    out = torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x
    if k >= 4:
        out = out.transpose(-2, -1)
    return out.contiguous()


def random_dihedral(
    sample: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Apply one random symmetry (same for all entries) to every tensor of ``sample``.

    Chips are square, so every symmetry keeps the shape. The draw uses torch's RNG,
    which Lightning's ``seed_everything(workers=True)`` seeds per worker.
    """
    k = int(torch.randint(8, (1,), generator=generator))
    return {name: dihedral(t, k) for name, t in sample.items()}


def rescale(
    sample: Mapping[str, torch.Tensor],
    scale: float,
    position: tuple[float, float] = (0.5, 0.5),
    *,
    ignore_index: int = -100,
    fill: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Zoom every tensor of ``sample`` by ``scale``, then crop or pad back to its size.

    Args:
        sample: tensors sharing their last two axes (H, W), e.g. an image (C, H, W) and
            labels (H, W). Floating-point tensors are resampled bilinearly (antialiased
            when ``scale < 1``), others by nearest neighbour (label values never mix).
        scale: zoom factor; the zoomed size is ``round(H * scale)`` x ``round(W * scale)``.
        position: where the H x W window sits in the zoomed array (zoom in) or the zoomed
            array in the H x W window (zoom out), per axis (rows, columns): 0 = top/left,
            0.5 = centred, 1 = bottom/right.
        ignore_index: padding of the non-float tensors.
        fill: padding of the float tensors.

    Returns:
        The rescaled tensors, each of its input shape and dtype.

    Raises:
        ValueError: a scale that is not a positive number, or tensors of differing size.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    sizes = {tuple(t.shape[-2:]) for t in sample.values()}
    if len(sizes) > 1:
        raise ValueError(f"the tensors differ in size: {sorted(sizes)}")
    if not sizes:
        return {}
    h, w = next(iter(sizes))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) == (h, w):
        return dict(sample)
    rows = _window(nh, h, position[0])
    cols = _window(nw, w, position[1])
    out: dict[str, torch.Tensor] = {}
    for name, t in sample.items():
        if t.is_floating_point():
            zoomed = _bilinear(t, nh, nw, antialias=nh < h or nw < w)
            pad: float | int = fill
        else:
            zoomed = _nearest(t, nh, nw)
            pad = ignore_index
        res = torch.full(t.shape, pad, dtype=t.dtype)
        res[..., rows[1], cols[1]] = zoomed[..., rows[0], cols[0]]
        out[name] = res
    return out


def random_rescale(
    sample: Mapping[str, torch.Tensor],
    scale_range: tuple[float, float],
    *,
    ignore_index: int = -100,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`rescale` by a factor drawn uniformly in ``scale_range``, at a random offset.

    One draw of three uniform numbers from torch's RNG (scale, row and column offset),
    shared by every tensor of the sample; seeded like :func:`random_dihedral`.
    """
    lo, hi = (float(v) for v in scale_range)
    u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    scale = lo + (hi - lo) * u[0]
    return rescale(sample, scale, (u[1], u[2]), ignore_index=ignore_index, fill=fill)


def _window(n: int, size: int, position: float) -> tuple[slice, slice]:
    """(source, destination) slices fitting ``n`` zoomed pixels into ``size``."""
    p = min(max(float(position), 0.0), 1.0)
    if n >= size:  # crop
        start = round(p * (n - size))
        return slice(start, start + size), slice(0, size)
    start = round(p * (size - n))  # pad
    return slice(0, n), slice(start, start + n)


def _bilinear(t: torch.Tensor, nh: int, nw: int, antialias: bool) -> torch.Tensor:
    """Bilinear resize of the last two axes (pixel centres aligned, as ``_nearest``)."""
    lead, (h, w) = t.shape[:-2], t.shape[-2:]
    x = t.reshape(1, -1, h, w)
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    y = F.interpolate(
        x.to(dtype), size=(nh, nw), mode="bilinear", align_corners=False, antialias=antialias
    )
    return y.to(t.dtype).reshape(*lead, nh, nw)


def _nearest(t: torch.Tensor, nh: int, nw: int) -> torch.Tensor:
    """Nearest-neighbour resize of the last two axes (pixel centres aligned).

    Output pixel ``i`` takes input pixel ``floor((i + 0.5) * H / nh)``, torch's
    ``nearest-exact`` (plain ``nearest`` is shifted by up to half a pixel).
    """
    h, w = t.shape[-2:]
    rows = ((torch.arange(nh, dtype=torch.float64) + 0.5) * (h / nh)).floor().long()
    cols = ((torch.arange(nw, dtype=torch.float64) + 0.5) * (w / nw)).floor().long()
    return t[..., rows.clamp(max=h - 1)[:, None], cols.clamp(max=w - 1)[None, :]]
