"""The model's forward pass as used for mapping: probabilities per head, with TTA.

Shared by the block computation (:mod:`.blocks`) and by anyone who wants the same
probabilities for a whole image (tests, benchmarks); it knows nothing of rasters.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from landforge.inference.tta import apply_tta

__all__ = ["model_probabilities", "pad_window"]


def model_probabilities(
    model: nn.Module, x: torch.Tensor, tta: str | None = None
) -> dict[str, torch.Tensor]:
    """Probabilities per head for a normalised batch ``x`` (N, C, H, W).

    Heads with one channel get a sigmoid, others a softmax over channels; with ``tta``
    the probabilities are averaged over flipped copies (see :mod:`.tta`).
    """

    def once(inp: torch.Tensor) -> dict[str, torch.Tensor]:
        out = model(inp)
        if isinstance(out, torch.Tensor):
            out = {"out": out}
        return {
            name: (torch.sigmoid(t) if t.shape[1] == 1 else torch.softmax(t, dim=1))
            for name, t in out.items()
        }

    with torch.inference_mode():
        return apply_tta(once, x, tta)


def pad_window(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """A (C, h, w) window padded by ``ph`` rows and ``pw`` columns (reflection)."""
    if not ph and not pw:
        return x
    mode = "reflect" if min(x.shape[1:]) > 1 else "edge"
    return np.pad(x, ((0, 0), (0, ph), (0, pw)), mode=mode)
