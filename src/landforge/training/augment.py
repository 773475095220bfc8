"""Geometric augmentation that keeps image and masks in step.

The eight symmetries of a square (identity, three 90° rotations, two flips, transpose
and anti-transpose) applied to the last two axes of every array of a sample with the
same choice, so a label pixel always stays under the image pixel it describes.
Radiometric augmentation is left out on purpose: stats-normalised multi-source bands
(POI maps, NIR) have no single meaning of "brightness".
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["dihedral", "random_dihedral"]


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
