"""Segmentation losses: Dice, CE + Dice, and the multi-task footprint + use loss.

Every loss takes logits and an int64 target map and honours ``ignore_index``: ignored
pixels contribute nothing to any sum, and a batch with no valid pixel gives a zero loss
that still has a gradient path (so a training step never produces NaN).

- Binary Dice (building-use paper eq. 5):
  ``L_B = 1 - (2 Σ p_i y_i + eps) / (Σ p_i + Σ y_i + eps)``, ``p = sigmoid(logit)``.
- Multi-class Dice (eq. 6): ``L_U`` = mean over classes of the same per-class Dice loss
  on ``softmax`` probabilities and one-hot targets.
- Multi-task: ``lambda_B * L_B + lambda_U * L_U``, the use loss computed on building
  pixels only (pixels where the footprint target is 1) unless configured otherwise.
- CE + Dice with weights 0.5 / 0.5 (UBGG eq. 5-7); BCE + Dice for a binary head.

Sums run over all valid pixels of the batch (not per image), as in the papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "binary_dice_loss",
    "dice_loss",
    "ce_dice_loss",
    "bce_dice_loss",
    "HeadLoss",
    "MultiTaskLoss",
]

IGNORE_INDEX = -100
"""Target value of pixels that carry no label (same default as ``torch.nn.CrossEntropyLoss``)."""

LossKind = Literal["dice", "ce", "ce_dice", "bce", "bce_dice"]


def _binary_logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim == 4:
        if logits.shape[1] != 1:
            raise ValueError(f"binary logits need one channel, got {logits.shape[1]}")
        return logits[:, 0]
    return logits


def _zero(logits: torch.Tensor) -> torch.Tensor:
    # A zero that keeps the autograd graph, so backward() works on an all-ignored batch.
    return logits.sum() * 0.0


def binary_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    eps: float = 1.0,
) -> torch.Tensor:
    """Binary Dice loss ``L_B`` (building-use paper eq. 5).

    Args:
        logits: (N,1,H,W) or (N,H,W) raw scores.
        target: (N,H,W) with 1 = positive, 0 = negative, ``ignore_index`` = no label.
        ignore_index: target value excluded from every sum.
        eps: smoothing term in numerator and denominator.

    Returns:
        A scalar tensor in [0, 1].
    """
    logits = _binary_logits(logits)
    valid = target != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    p = torch.sigmoid(logits.float())[valid]
    y = target[valid].float()
    return 1.0 - (2.0 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    eps: float = 1.0,
) -> torch.Tensor:
    """Multi-class Dice loss ``L_U``: mean over classes of per-class Dice (eq. 6).

    Args:
        logits: (N,K,H,W) raw scores.
        target: (N,H,W) class indices 0..K-1 or ``ignore_index``.
        ignore_index: target value excluded from every sum.
        eps: smoothing term.
    """
    if logits.shape[1] == 1:
        return binary_dice_loss(logits, target, ignore_index, eps)
    valid = target != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    k = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1).permute(0, 2, 3, 1)[valid]  # (P, K)
    onehot = F.one_hot(target[valid].long(), k).float()  # (P, K)
    inter = (probs * onehot).sum(0)
    denom = probs.sum(0) + onehot.sum(0)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def ce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    ce_weight: float = 0.5,
    dice_weight: float = 0.5,
    eps: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy + Dice, weighted 0.5 / 0.5 by default (UBGG eq. 5-7)."""
    if logits.shape[1] == 1:
        return bce_dice_loss(logits, target, ignore_index, ce_weight, dice_weight, eps)
    valid = target != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    ce = F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index)
    return ce_weight * ce + dice_weight * dice_loss(logits, target, ignore_index, eps)


def _bce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    logits = _binary_logits(logits)
    valid = target != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    return F.binary_cross_entropy_with_logits(logits.float()[valid], target[valid].float())


def bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    bce_weight: float = 0.5,
    dice_weight: float = 0.5,
    eps: float = 1.0,
) -> torch.Tensor:
    """Binary cross-entropy + binary Dice for a one-logit head."""
    return bce_weight * _bce(logits, target, ignore_index) + dice_weight * binary_dice_loss(
        logits, target, ignore_index, eps
    )


def _ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    if logits.shape[1] == 1:
        return _bce(logits, target, ignore_index)
    if not bool((target != ignore_index).any()):
        return _zero(logits)
    return F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index)


@dataclass(frozen=True)
class HeadLoss:
    """How one output head is scored.

    Attributes:
        kind: ``dice`` (eq. 5/6), ``ce_dice`` (0.5/0.5, UBGG), ``ce``; ``bce`` and
            ``bce_dice`` are the binary spellings of ``ce`` and ``ce_dice``.
        weight: the head's lambda in the total loss.
        mask_by: name of another head whose positive target (== 1) marks the pixels
            this head is scored on, e.g. use scored on building pixels only.
    """

    kind: LossKind = "dice"
    weight: float = 1.0
    mask_by: str | None = None


def head_loss(
    kind: LossKind, logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """The loss ``kind`` of one head's logits against its target."""
    if kind == "dice":
        return dice_loss(logits, target, ignore_index)
    if kind in ("ce_dice", "bce_dice"):
        return ce_dice_loss(logits, target, ignore_index)
    if kind in ("ce", "bce"):
        return _ce(logits, target, ignore_index)
    raise ValueError(f"unknown loss {kind!r}")


class MultiTaskLoss(nn.Module):
    """Weighted sum of per-head losses: ``Σ lambda_h * L_h`` (building-use paper eq. 7).

    With heads ``{"footprint": HeadLoss("dice", 1.0), "use": HeadLoss("dice", 1.0,
    mask_by="footprint")}`` this is ``lambda_B * L_B + lambda_U * L_U`` with the use
    loss on building pixels only.
    """

    def __init__(self, heads: Mapping[str, HeadLoss], ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        for name, spec in heads.items():
            if spec.mask_by is not None and spec.mask_by not in heads:
                raise ValueError(f"head {name!r} is masked by unknown head {spec.mask_by!r}")
        self.heads = dict(heads)
        self.ignore_index = ignore_index

    def forward(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (total loss, {head: its unweighted loss})."""
        parts: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for name, spec in self.heads.items():
            target = targets[name]
            if spec.mask_by is not None:
                target = target.masked_fill(targets[spec.mask_by] != 1, self.ignore_index)
            loss = head_loss(spec.kind, outputs[name], target, self.ignore_index)
            parts[name] = loss
            total = spec.weight * loss if total is None else total + spec.weight * loss
        assert total is not None, "MultiTaskLoss needs at least one head"
        return total, parts
