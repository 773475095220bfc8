"""Flip test-time augmentation: predict on flipped copies, un-flip, average.

``"flips"`` uses the identity, a horizontal flip, a vertical flip and the transpose
(the diagonal flip); ``"d4"`` uses all eight symmetries of the square. Probabilities
(not logits) are averaged after each output is mapped back to the original orientation,
so a model that is already equivariant to these flips gives the same result with and
without TTA. Transposing swaps height and width, which a fully convolutional model
accepts when both are multiples of its stride (the predictor pads windows to 32).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from landforge.errors import OptionError

__all__ = ["TTA_MODES", "transforms", "apply_tta"]

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-1, -2)


def _rot180(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1, -2)


def _rot90(x: torch.Tensor) -> torch.Tensor:
    return x.rot90(1, (-2, -1))


def _rot270(x: torch.Tensor) -> torch.Tensor:
    return x.rot90(-1, (-2, -1))


def _antitranspose(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1, -2).transpose(-1, -2)


# (forward, inverse) pairs; flips and transposes are their own inverses.
_FLIPS: list[Transform] = [
    (_identity, _identity),
    (_hflip, _hflip),
    (_vflip, _vflip),
    (_transpose, _transpose),
]
_D4: list[Transform] = [
    *_FLIPS,
    (_rot180, _rot180),
    (_rot90, _rot270),
    (_rot270, _rot90),
    (_antitranspose, _antitranspose),
]

TTA_MODES = {"flips": _FLIPS, "d4": _D4}


def transforms(mode: str | None) -> list[Transform]:
    """The (forward, inverse) transforms of a TTA mode; ``None`` is the identity only.

    Raises:
        OptionError: for an unknown mode (field ``tta``).
    """
    if mode is None or mode == "none":
        return [(_identity, _identity)]
    if mode not in TTA_MODES:
        raise OptionError("tta", f"unknown TTA mode {mode!r}; use one of: none, flips, d4")
    return TTA_MODES[mode]


def apply_tta(
    predict: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    x: torch.Tensor,
    mode: str | None,
) -> dict[str, torch.Tensor]:
    """Average ``predict`` (which returns probabilities per head) over the TTA transforms."""
    pairs = transforms(mode)
    total: dict[str, torch.Tensor] = {}
    for forward, inverse in pairs:
        out = predict(forward(x))
        for name, probs in out.items():
            back = inverse(probs)
            total[name] = back if name not in total else total[name] + back
    return {name: t / len(pairs) for name, t in total.items()}
