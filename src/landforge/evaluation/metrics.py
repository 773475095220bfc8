"""Accuracy metrics, all derived from one confusion matrix: the public names in one place.

The formulas (OA, kappa, per-class precision/recall/F1/IoU, mIoU, FWIoU, one-vs-rest
accuracy, with their conventions) are documented in :mod:`~landforge.evaluation.scores`;
the accumulating :class:`ConfusionMatrix` lives in :mod:`~landforge.evaluation.confusion`
and the change metrics (SECOND protocol, Yang et al. 2021) in
:mod:`~landforge.evaluation.change`. Import from here.
"""

from __future__ import annotations

from landforge.evaluation.change import ChangeConfusion, binary_change_metrics
from landforge.evaluation.confusion import KIND_CONFUSION, ConfusionMatrix
from landforge.evaluation.scores import (
    KIND_METRICS,
    UnknownLabelError,
    cohen_kappa,
    f1_score,
    fwiou,
    iou,
    majority_baseline_matrix,
    mean_iou,
    overall_accuracy,
    ovr_accuracy,
    precision,
    recall,
    summary_metrics,
)

__all__ = [
    "KIND_CONFUSION",
    "KIND_METRICS",
    "ConfusionMatrix",
    "ChangeConfusion",
    "UnknownLabelError",
    "overall_accuracy",
    "cohen_kappa",
    "precision",
    "recall",
    "f1_score",
    "iou",
    "mean_iou",
    "fwiou",
    "ovr_accuracy",
    "majority_baseline_matrix",
    "summary_metrics",
    "binary_change_metrics",
]
