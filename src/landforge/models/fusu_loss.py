"""FUSU-Net loss: ``L = L_1s + L_2s + L_Ts + 2 L_c`` (Yuan et al. 2024, §4).

``L_1s``, ``L_2s``: cross-entropy of ``seg1`` against the T1 label and of ``seg2``
against the T2 label; ``L_Ts``: cross-entropy of the series branch's ``seg_ts`` against
the T1 label; ``L_c``: binary cross-entropy of the ``change`` logits against the binary
change label ``y_c``. Each term is a mean over its valid pixels (target not equal to
``ignore_index``); a term whose output the model does not return (``seg_ts`` of a model
without a series branch, the segmentations of ``fc_siam_diff``) is skipped, and a term
without any valid pixel is a zero that keeps the graph (no NaN).

The weights are options (``seg_weight``, ``ts_weight``, ``change_weight``; 1, 1, 2 as
in the paper). Note: the released FUSU training script differs from the paper's
formula (``L_c + 0.5 (L_1s + L_2s) + L_Ts`` with changed pixels weighted 2 inside a
BCE on probabilities); ``changed_pixel_weight=2`` and ``seg_weight=0.5``,
``change_weight=1`` reproduce that variant.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from landforge.errors import OptionError

__all__ = ["FusuLoss", "IGNORE_INDEX"]

IGNORE_INDEX = -100
"""Target value of unlabelled pixels (as :mod:`landforge.training.losses`)."""


def _ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), ignore_index=ignore_index)


def _bce(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, changed_weight: float
) -> torch.Tensor:
    if logits.ndim == 4:
        logits = logits[:, 0]
    if target.ndim == 4:
        target = target[:, 0]
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    y = target[valid].to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits[valid], y, reduction="none")
    if changed_weight != 1.0:
        per_pixel = per_pixel * torch.where(y > 0.5, changed_weight, 1.0)
    return per_pixel.mean()


class FusuLoss(nn.Module):
    """``seg_weight (L_1s + L_2s) + ts_weight L_Ts + change_weight L_c``.

    Args:
        ignore_index: target value excluded from every term (segmentation and change).
        seg_weight: weight of each date's segmentation loss.
        ts_weight: weight of the series branch's segmentation loss (against T1).
        change_weight: weight of the change loss (2 in the paper).
        changed_pixel_weight: extra weight of changed pixels inside ``L_c`` (1: plain
            mean; 2: the released code).
    """

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        seg_weight: float = 1.0,
        ts_weight: float = 1.0,
        change_weight: float = 2.0,
        changed_pixel_weight: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("seg_weight", seg_weight),
            ("ts_weight", ts_weight),
            ("change_weight", change_weight),
            ("changed_pixel_weight", changed_pixel_weight),
        ):
            if value < 0:
                raise OptionError(name, f"must be >= 0, got {value}")
        self.ignore_index = ignore_index
        self.weights = {"seg1": seg_weight, "seg2": seg_weight, "seg_ts": ts_weight}
        self.change_weight = change_weight
        self.changed_pixel_weight = changed_pixel_weight

    def terms(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted loss terms of the outputs present: ``seg1``, ``seg2``, ``seg_ts``, ``change``.

        Args:
            outputs: the model's logits (any of ``seg1``, ``seg2``, ``seg_ts`` (B,K,H,W),
                ``change`` (B,1,H,W)).
            targets: ``seg1``, ``seg2`` (B,H,W) int class labels of T1 and T2 and
                ``change`` (B,H,W) 0/1 (``ignore_index`` where unlabelled).

        Raises:
            KeyError: if an output is present but its target is not.
        """
        out: dict[str, torch.Tensor] = {}
        label_of = {"seg1": "seg1", "seg2": "seg2", "seg_ts": "seg1"}
        for name, label in label_of.items():
            if name in outputs:
                out[name] = _ce(outputs[name], targets[label], self.ignore_index)
        if "change" in outputs:
            out["change"] = _bce(
                outputs["change"], targets["change"], self.ignore_index, self.changed_pixel_weight
            )
        return out

    def forward(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The total ``loss`` and each unweighted term (``seg1``, ``seg2``, ``seg_ts``, ``change``).

        Raises:
            ValueError: if ``outputs`` holds none of the four outputs.
        """
        terms = self.terms(outputs, targets)
        if not terms:
            raise ValueError(
                "FusuLoss: the model returned none of seg1, seg2, seg_ts, change; "
                f"got {', '.join(outputs) or 'nothing'}"
            )
        total = sum(
            (self.weights.get(k, self.change_weight) * v for k, v in terms.items()),
            start=torch.zeros((), device=next(iter(terms.values())).device),
        )
        return {"loss": total, **terms}
