"""LightningModule for dict-output segmentation models (single- or multi-task).

The module turns raw label rasters into per-head targets (see
:class:`~landforge.training.options.HeadConfig`), scores the model's dict of logits with
:class:`~landforge.training.losses.MultiTaskLoss`, and counts one confusion matrix per
head during validation (a ``bincount`` on the device per batch, folded into a
:class:`~landforge.evaluation.metrics.ConfusionMatrix` at the end of the epoch), from
which IoU / mIoU / overall accuracy are logged.
A model with an auxiliary output ``aux`` (e.g. HRNet-OCR's soft object regions) and an
``aux_weight`` attribute gets ``aux_weight x`` its main head's loss on that output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn as nn
from lightning.pytorch.callbacks import Timer

from landforge.errors import OptionError
from landforge.evaluation.metrics import ConfusionMatrix
from landforge.training.losses import IGNORE_INDEX, HeadLoss, MultiTaskLoss
from landforge.training.options import HeadConfig, TrainOptions, main_head

__all__ = [
    "SegmentationTask",
    "add_counts",
    "confusion_counts",
    "head_matrix",
    "head_prediction",
    "make_targets",
]


def make_targets(
    batch: Mapping[str, torch.Tensor],
    heads: Mapping[str, HeadConfig],
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, torch.Tensor]:
    """Per-head int64 targets from the raw label rasters of a batch.

    Binary head: 1 where the label is one of the positive values, 0 elsewhere. K-class
    head: class k where the label equals ``values[k]``, ignored elsewhere (so rci 0 =
    background carries no use label). ``ignore_values`` and nodata stay ignored.
    """
    out: dict[str, torch.Tensor] = {}
    for name, head in heads.items():
        if head.label not in batch:
            raise OptionError(
                f"heads.{name}.label",
                f"the chip store has no label {head.label!r} "
                f"(labels: {', '.join(k for k in batch if k != 'image')})",
            )
        label = batch[head.label]
        values = head.label_values()
        if head.binary:
            target = torch.isin(label, torch.tensor(values, device=label.device)).long()
        else:
            target = torch.full_like(label, ignore_index)
            for k, v in enumerate(values):
                target[label == v] = k
        drop = label == ignore_index
        for v in head.ignore_values:
            drop |= label == v
        out[name] = target.masked_fill(drop, ignore_index)
    return out


def head_prediction(head: HeadConfig, logits: torch.Tensor) -> torch.Tensor:
    """Class index per pixel: ``logit > 0`` for a binary head, the argmax otherwise."""
    return (logits[:, 0] > 0).long() if head.binary else logits.argmax(1)


def head_matrix(head: HeadConfig) -> ConfusionMatrix:
    """An empty confusion matrix over the head's class indices (binary: not / the class)."""
    if head.binary:
        labels, names = [0, 1], [f"not_{head.classes[0]}", head.classes[0]]
    else:
        labels, names = list(range(len(head.classes))), list(head.classes)
    return ConfusionMatrix(labels=labels, names=names, ignore=[IGNORE_INDEX])


def confusion_counts(
    pred: torch.Tensor, target: torch.Tensor, n: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """(n, n) counts on the tensors' device, rows = reference, columns = prediction."""
    valid = target != ignore_index
    idx = target[valid].long() * n + pred[valid].long()
    return torch.bincount(idx, minlength=n * n).reshape(n, n)


def add_counts(cm: ConfusionMatrix, counts: torch.Tensor, ignored: int = 0) -> ConfusionMatrix:
    """Add (n, n) :func:`confusion_counts` (over class indices 0..n-1) to ``cm``."""
    if tuple(counts.shape) != (cm.n_classes, cm.n_classes):
        raise ValueError(f"counts of shape {tuple(counts.shape)} for {cm.n_classes} classes")
    cm.matrix += counts.detach().cpu().numpy().astype(np.int64)
    cm.n_ignored += int(ignored)
    return cm


AUX = "aux"
"""Model output trained with the main head's target and loss, weighted by the model's
``aux_weight`` (e.g. OCRNet's soft object regions at 0.4), unless a head is so named."""


def _aux_main_head(model: nn.Module, heads: Mapping[str, HeadConfig]) -> str | None:
    """The head whose target and loss the model's auxiliary output copies, or None.

    A model asks for an auxiliary loss by carrying ``aux_weight > 0`` (an attribute, not
    a config field: it belongs to the architecture). Its ``aux`` output then takes the
    loss of the single multi-class head (or of the only head), weighted by
    ``aux_weight``. A configured head named ``aux`` is an ordinary head; any other
    model output without a configured head is ignored.
    """
    weight = float(getattr(model, "aux_weight", 0.0) or 0.0)
    if weight <= 0 or AUX in heads:
        return None
    main = main_head(dict(heads))
    if main is None:
        multi = [name for name, head in heads.items() if not head.binary]
        raise OptionError(
            "heads",
            f"the model's auxiliary output {AUX!r} needs one multi-class head to copy its "
            f"target and loss from; found {len(multi)} ({', '.join(multi) or 'none'})",
        )
    return main[0]


class SegmentationTask(L.LightningModule):
    """Train a registry model whose forward returns a dict of logits per head.

    Args:
        model: the network (``forward(x) -> {head: logits}``).
        heads: head name -> :class:`HeadConfig`.
        opts: the training options (:class:`TrainOptions` or a model holding them, e.g.
            a :class:`~landforge.training.options.TrainConfig`); it uses ``optimizer``,
            ``lr``, ``weight_decay``, ``schedule`` (``cosine`` to 0 over
            ``total_steps``, ``poly`` ``(1 - t)^poly_power`` or ``constant``, stepped
            every batch) and ``channels_last`` (only on a GPU).
        total_steps: steps the schedule spans.
        max_seconds: time budget of the run; the schedule ends with whichever of
            ``total_steps`` and ``max_seconds`` comes first.
        **overrides: options replacing those of ``opts`` (``lr=0.01``).
    """

    def __init__(
        self,
        model: nn.Module,
        heads: Mapping[str, HeadConfig],
        opts: Any = None,
        *,
        total_steps: int = 1000,
        max_seconds: float | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        o = TrainOptions.build(opts, **overrides)
        self.model = model
        self.heads = dict(heads)
        losses = {n: HeadLoss(h.loss, h.weight, h.mask_by) for n, h in self.heads.items()}
        self.aux_of = _aux_main_head(model, self.heads)
        if self.aux_of is not None:
            main = self.heads[self.aux_of]
            losses[AUX] = HeadLoss(main.loss, float(model.aux_weight), main.mask_by)
        self.loss = MultiTaskLoss(losses)
        self.optimizer_name = o.optimizer
        self.lr = o.lr
        self.weight_decay = o.weight_decay
        self.schedule = o.schedule
        self.total_steps = max(1, int(total_steps))
        self.max_seconds = max_seconds
        self.poly_power = o.poly_power
        self.channels_last = o.channels_last
        self._checked_outputs = False
        self._counts: dict[str, torch.Tensor] = {}
        self._ignored: dict[str, torch.Tensor] = {}
        self.matrices: dict[str, ConfusionMatrix] = {}

    # -- forward -----------------------------------------------------------------------

    def _use_channels_last(self) -> bool:
        return self.channels_last and self.device.type == "cuda"

    def on_fit_start(self) -> None:
        """Switch the model to channels-last memory when asked and on a GPU."""
        if self._use_channels_last():
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's logits per head."""
        if self._use_channels_last():
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def _check_outputs(self, outputs: Mapping[str, torch.Tensor]) -> None:
        if self._checked_outputs:
            return
        for name, head in self.heads.items():
            if name not in outputs:
                raise OptionError(
                    f"heads.{name}",
                    f"the model has no output {name!r} (outputs: {', '.join(outputs)})",
                )
            channels = outputs[name].shape[1]
            want = 1 if head.binary else len(head.classes)
            if channels != want:
                raise OptionError(
                    f"heads.{name}.classes",
                    f"{len(head.classes)} classes need {want} output channels, "
                    f"the model gives {channels}",
                )
        if self.aux_of is not None:
            if AUX not in outputs:
                raise OptionError("model", f"the model sets aux_weight but has no {AUX!r} output")
            if outputs[AUX].shape[1] != outputs[self.aux_of].shape[1]:
                raise OptionError(
                    "model",
                    f"its {AUX!r} output has {outputs[AUX].shape[1]} channels, its "
                    f"{self.aux_of!r} head {outputs[self.aux_of].shape[1]}",
                )
        self._checked_outputs = True

    def _step(self, batch: Mapping[str, torch.Tensor]) -> tuple[Any, ...]:
        outputs = self(batch["image"])
        self._check_outputs(outputs)
        targets = make_targets(batch, self.heads)
        if self.aux_of is not None:
            targets[AUX] = targets[self.aux_of]
        total, parts = self.loss(outputs, targets)
        return total, parts, outputs, targets

    # -- training ----------------------------------------------------------------------

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss of one batch; logs the total and each head's part."""
        total, parts, _, _ = self._step(batch)
        n = batch["image"].shape[0]
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True, batch_size=n)
        for name, value in parts.items():
            self.log(f"train/{name}_loss", value, on_step=False, on_epoch=True, batch_size=n)
        return total

    def on_validation_epoch_start(self) -> None:
        """Start new confusion counts."""
        self._counts, self._ignored = {}, {}

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        """Log the losses and add the batch's confusion counts (on the device)."""
        total, parts, outputs, targets = self._step(batch)
        n = batch["image"].shape[0]
        self.log("val/loss", total, prog_bar=True, on_epoch=True, batch_size=n)
        for name, value in parts.items():
            self.log(f"val/{name}_loss", value, on_epoch=True, batch_size=n)
        for name, head in self.heads.items():
            target = targets[name]
            if head.mask_by is not None:
                target = target.masked_fill(targets[head.mask_by] != 1, IGNORE_INDEX)
            k = 2 if head.binary else len(head.classes)
            counts = confusion_counts(head_prediction(head, outputs[name]), target, k)
            ignored = (target == IGNORE_INDEX).sum()
            # summed on the device: no host synchronisation per batch
            if name in self._counts:
                counts, ignored = counts + self._counts[name], ignored + self._ignored[name]
            self._counts[name], self._ignored[name] = counts, ignored

    def on_validation_epoch_end(self) -> None:
        """Fold the counts into :attr:`matrices`; log IoU (binary) or OA and mIoU."""
        self.matrices = {}
        for name, head in self.heads.items():
            if name not in self._counts:
                continue
            cm = add_counts(head_matrix(head), self._counts[name], int(self._ignored[name]))
            self.matrices[name] = cm
            if head.binary:
                value = float(cm.iou()[1])
                if not math.isnan(value):
                    self.log(f"val/{name}_iou", value)
            else:
                for key, value in (("oa", cm.overall_accuracy()), ("miou", cm.miou())):
                    if not math.isnan(value):
                        self.log(f"val/{name}_{key}", value)

    # -- optimisation ------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        """Adam or AdamW over the model's parameters."""
        cls = torch.optim.AdamW if self.optimizer_name == "adamw" else torch.optim.Adam
        return cls(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def schedule_progress(self) -> float:
        """Fraction of training done: by steps, or by the time budget if that is ahead.

        A time-budgeted run therefore still anneals to the end of its schedule when
        the clock, not the epoch count, ends it. Lightning's Timer is restored on
        resume, so the fraction carries over too.
        """
        progress = self.global_step / self.total_steps
        if self.max_seconds:
            timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
            if timer is not None:
                progress = max(progress, timer.time_elapsed() / self.max_seconds)
        return min(progress, 1.0)

    def lr_factor(self, progress: float) -> float:
        """LR multiplier at ``progress`` in [0, 1]: cosine, poly ``(1 - t)^power`` or 1."""
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.schedule == "poly":
            return (1.0 - progress) ** self.poly_power
        return 1.0

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Set the scheduled learning rate of this step."""
        # The schedule is set here rather than by an LR scheduler so it can follow the
        # time budget; it is a pure function of (step, elapsed time), so resuming needs
        # no scheduler state.
        lr = self.lr * self.lr_factor(self.schedule_progress())
        optimizer = self.optimizers()
        for group in optimizer.param_groups:  # type: ignore[union-attr]
            group["lr"] = lr
        self.log("train/lr", lr, on_step=True, on_epoch=False)
