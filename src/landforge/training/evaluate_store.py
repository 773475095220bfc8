"""Score a trained model on one split of a chip store, as a confusion matrix.

Used by the region-sequence and cross-domain drivers: the model sees the store's chips
normalised with *its own* model card's statistics (as ``landforge predict`` would), and
its predictions for one head are compared with the targets that head's
:class:`~landforge.training.options.HeadConfig` derives from the store's labels
(``values`` -> classes, ``ignore_values`` and nodata ignored, ``mask_by`` honoured).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from landforge.errors import InputError, OptionError
from landforge.evaluation.metrics import ConfusionMatrix
from landforge.models.checkpoint import ModelCard
from landforge.training.losses import IGNORE_INDEX
from landforge.training.options import HeadConfig

__all__ = ["evaluate_on_store", "headline", "pick_eval_head", "store_eval_split"]


def pick_eval_head(
    heads: Mapping[str, HeadConfig], name: str | None = None
) -> tuple[str, HeadConfig, HeadConfig | None]:
    """(name, head, mask head) of the head to score.

    The head is ``name``, else the first K-class head, else the first head.
    """
    if name is None:
        name = next((n for n, h in heads.items() if not h.binary), next(iter(heads)))
    if name not in heads:
        raise OptionError("eval_head", f"no head {name!r} (heads: {', '.join(heads)})")
    head = heads[name]
    return name, head, heads[head.mask_by] if head.mask_by else None


def store_eval_split(store: str | os.PathLike[str], split: str, fallback: str = "val") -> str:
    """``split`` when the store has chips there, else ``fallback``; InputError if neither."""
    from landforge.datasets.chips import read_meta

    counts = read_meta(store)["splits"]
    for name in (split, fallback):
        if counts.get(name, 0) > 0:
            return name
    raise InputError(
        store,
        f"no chips in split {split!r} or {fallback!r} to evaluate on "
        f"(splits: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})",
    )


def evaluate_on_store(
    model: nn.Module,
    card: ModelCard,
    store: str | os.PathLike[str],
    split: str | None,
    head: HeadConfig,
    name: str | None = None,
    mask_by: HeadConfig | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> ConfusionMatrix:
    """Confusion matrix of ``model``'s head ``name`` on ``split`` of a chip store.

    Args:
        model: a network returning ``{head: logits}`` (e.g. from ``load_checkpoint``).
        card: its model card (bands and normalisation).
        store: chip store directory.
        split: split name, or None for every chip.
        head: how the store's label becomes this head's classes.
        name: the model output to score (default: the card head with ``head.label``'s
            name, else the card's only head).
        mask_by: a binary head whose positive pixels alone are scored (``head.mask_by``).
        batch_size: chips per forward pass.
        device: where to run the model.

    Returns:
        A :class:`ConfusionMatrix` over class indices 0..K-1 (binary: 0 = not, 1 = the
        class), named after ``head.classes``; ignored pixels are left out.

    Raises:
        InputError: bands of the store differ from the card's, no such output, or an
            empty split.
    """
    from torch.utils.data import DataLoader

    from landforge.training.module import (
        add_counts,
        confusion_counts,
        head_matrix,
        head_prediction,
        make_targets,
    )

    if name is None:
        if head.label in card.heads:
            name = head.label
        elif len(card.heads) == 1:
            name = next(iter(card.heads))
        else:
            raise OptionError("eval_head", f"say which of {', '.join(card.heads)} to evaluate")
    if name not in card.heads:
        raise OptionError("eval_head", f"the model has no head {name!r} ({', '.join(card.heads)})")
    ds = card_dataset(store, split, card)
    heads = {name: head}
    if mask_by is not None:
        heads["__mask__"] = mask_by
    cm = head_matrix(head)
    k = cm.n_classes
    was_training = model.training
    model.eval()
    model.to(device)
    try:
        with torch.no_grad():
            for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
                logits = model(batch["image"].to(device))[name]
                targets = make_targets(batch, heads)
                target = targets[name]
                if mask_by is not None:
                    target = target.masked_fill(targets["__mask__"] != 1, IGNORE_INDEX)
                target = target.to(logits.device)
                counts = confusion_counts(head_prediction(head, logits), target, k)
                add_counts(cm, counts, int((target == IGNORE_INDEX).sum()))
    finally:
        model.train(was_training)
    return cm


def headline(cm: ConfusionMatrix) -> dict[str, Any]:
    """OA, mIoU (classes present) and kappa of ``cm`` (None where undefined), + pixels."""

    def num(v: float) -> float | None:
        return None if math.isnan(v) else round(float(v), 6)

    return {
        "oa": num(cm.overall_accuracy()),
        "miou": num(cm.miou()),
        "kappa": num(cm.kappa()),
        "pixels": cm.total,
    }


def card_dataset(store: Any, split: str, card: Any, **kwargs: Any) -> Any:
    """A :class:`ChipDataset` of ``split`` normalised with the model card's statistics.

    Raises:
        InputError: the store's bands differ from the card's, or the split is empty.
    """
    from landforge.datasets.chips import ChipDataset

    ds = ChipDataset(store, split, mean_std=(card.mean, card.std), **kwargs)
    if ds.band_names != list(card.bands):
        raise InputError(
            store,
            f"chip store bands [{', '.join(ds.band_names)}] differ from the model's "
            f"bands [{', '.join(card.bands)}]",
        )
    if len(ds) == 0:
        raise InputError(store, f"split {split!r} has no chips")
    return ds
