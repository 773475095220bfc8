"""Accuracy metrics, all derived from one confusion matrix.

Every number here is a function of a single confusion matrix ``x`` whose entry
``x[i, j]`` counts the pixels (or parcels) of true class ``i`` predicted as class ``j``.
OA, kappa, per-class precision/recall/F1/IoU, mIoU and FWIoU therefore always agree with
each other and with the matrix stored next to them in the metrics JSON.

Notation: ``n = sum_ij x_ij``, ``r_i = sum_j x_ij`` (true pixels of class i, "support"),
``c_i = sum_j x_ji`` (pixels predicted as i), ``tp_i = x_ii``.

- OA = sum_i tp_i / n
- kappa = (p_o - p_e) / (1 - p_e), p_o = OA, p_e = sum_i r_i c_i / n^2 (Cohen 1960)
- precision_i = tp_i / c_i, recall_i = tp_i / r_i, F1_i = 2 tp_i / (r_i + c_i)
- IoU_i = tp_i / (r_i + c_i - tp_i)
- mIoU: mean of IoU_i over the classes *present*, i.e. with r_i + c_i > 0 (a class that
  is neither in the truth nor in the prediction has an undefined IoU and is skipped;
  this is the convention of mmsegmentation and of most land-use benchmarks). The
  "all classes" variant (:func:`mean_iou` with ``classes="all"``) averages over every
  class of the class list and counts an absent class as IoU 0, which equals
  scikit-learn's ``jaccard_score(average="macro", labels=all, zero_division=0)``.
- FWIoU = sum_i (r_i / n) IoU_i (frequency-weighted IoU, Long et al. 2015)
- one-vs-rest accuracy_i = (TP_i + TN_i) / n = (n - r_i - c_i + 2 tp_i) / n
- undefined ratios (0 / 0) are NaN in Python and ``null`` in JSON, never a silent 0.

Change detection (:class:`ChangeConfusion`) follows the SECOND protocol (Yang et al.
2021, "Asymmetric Siamese Networks for Semantic Change Detection in Aerial Images",
IEEE TGRS 60), see its docstring for the exact formulas.

This module gathers the public names of three modules: the formulas
(:mod:`~landforge.evaluation.scores`), the accumulating :class:`ConfusionMatrix`
(:mod:`~landforge.evaluation.confusion`) and the change metrics
(:mod:`~landforge.evaluation.change`). Import from here.
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
