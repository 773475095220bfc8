"""Scores of one confusion matrix: OA, kappa, per-class F1/IoU, mIoU, FWIoU, summary.

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

The functions take a square array (rows = truth) or anything with a ``matrix`` array,
such as :class:`~landforge.evaluation.confusion.ConfusionMatrix`, which accumulates one
block by block. :mod:`landforge.evaluation.metrics` gathers every name in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

__all__ = [
    "KIND_METRICS",
    "MatrixLike",
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
]

KIND_METRICS = "landforge-metrics/1"


class HasMatrix(Protocol):
    """An accumulator holding a square confusion matrix (rows = truth)."""

    matrix: np.ndarray


#: a square array (rows = truth) or an accumulator with a ``matrix`` attribute
MatrixLike = np.ndarray | HasMatrix


class UnknownLabelError(ValueError):
    """A map holds values that are not in a fixed class list.

    Attributes:
        where: ``"truth"`` or ``"pred"``.
        values: the offending values (at most 10).
    """

    def __init__(self, where: str, values: Sequence[int], labels: Sequence[int]) -> None:
        self.where = where
        self.values = [int(v) for v in values][:10]
        shown = ", ".join(str(v) for v in self.values)
        super().__init__(
            f"value(s) {shown} in the {where} are not classes "
            f"(known: {', '.join(str(int(v)) for v in labels)})"
        )


# --------------------------------------------------------------------------------------
# Metrics of a confusion matrix (plain functions on an array, rows = truth)
# --------------------------------------------------------------------------------------


def _as_matrix(x: MatrixLike) -> np.ndarray:
    m = np.asarray(getattr(x, "matrix", x))
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    return m.astype(np.float64)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise ``num / den``, NaN where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def overall_accuracy(x: MatrixLike) -> float:
    """OA = trace(x) / n; NaN for an empty matrix."""
    m = _as_matrix(x)
    n = m.sum()
    return float(np.trace(m) / n) if n else math.nan


def cohen_kappa(x: MatrixLike) -> float:
    """Cohen's kappa (p_o - p_e) / (1 - p_e); NaN when p_e == 1 (one class only)."""
    m = _as_matrix(x)
    n = m.sum()
    if not n:
        return math.nan
    po = np.trace(m) / n
    pe = float(np.dot(m.sum(axis=1), m.sum(axis=0))) / (n * n)
    if pe >= 1.0:
        return math.nan
    return float((po - pe) / (1.0 - pe))


def precision(x: MatrixLike) -> np.ndarray:
    """Per-class precision tp_i / c_i (user's accuracy); NaN for never-predicted classes."""
    m = _as_matrix(x)
    return _div(np.diag(m), m.sum(axis=0))


def recall(x: MatrixLike) -> np.ndarray:
    """Per-class recall tp_i / r_i (producer's accuracy); NaN for classes absent in truth."""
    m = _as_matrix(x)
    return _div(np.diag(m), m.sum(axis=1))


def f1_score(x: MatrixLike) -> np.ndarray:
    """Per-class F1 = 2 tp_i / (r_i + c_i); NaN for classes absent in truth and prediction."""
    m = _as_matrix(x)
    return _div(2.0 * np.diag(m), m.sum(axis=1) + m.sum(axis=0))


def iou(x: MatrixLike) -> np.ndarray:
    """Per-class IoU tp_i / (r_i + c_i - tp_i); NaN for classes absent in both maps."""
    m = _as_matrix(x)
    tp = np.diag(m)
    return _div(tp, m.sum(axis=1) + m.sum(axis=0) - tp)


def mean_iou(x: MatrixLike, classes: Literal["present", "all"] = "present") -> float:
    """Mean IoU.

    Args:
        x: confusion matrix.
        classes: ``"present"`` (default) averages over classes present in the truth or
            the prediction; ``"all"`` averages over every class, an absent class counting
            as IoU 0.

    Returns:
        The mean, NaN when no class is present.
    """
    values = iou(x)
    if classes == "all":
        return float(np.nan_to_num(values, nan=0.0).mean()) if values.size else math.nan
    if classes != "present":
        raise ValueError(f"classes must be 'present' or 'all', not {classes!r}")
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan


def fwiou(x: MatrixLike) -> float:
    """Frequency-weighted IoU: sum_i (r_i / n) IoU_i."""
    m = _as_matrix(x)
    n = m.sum()
    if not n:
        return math.nan
    weights = m.sum(axis=1) / n
    # A class with r_i > 0 always has a defined IoU; NaN only where the weight is 0.
    return float(np.sum(weights * np.nan_to_num(iou(m), nan=0.0)))


def ovr_accuracy(x: MatrixLike) -> np.ndarray:
    """One-vs-rest accuracy per class: (TP_i + TN_i) / n = (n - r_i - c_i + 2 tp_i) / n."""
    m = _as_matrix(x)
    n = m.sum()
    tp = np.diag(m)
    return _div(n - m.sum(axis=1) - m.sum(axis=0) + 2.0 * tp, np.full(tp.shape, n))


def majority_baseline_matrix(x: MatrixLike) -> tuple[np.ndarray, int]:
    """The confusion matrix obtained by predicting the most frequent true class everywhere.

    Returns:
        (matrix, index of the majority class). Ties go to the lower index.
    """
    m = _as_matrix(x)
    support = m.sum(axis=1)
    k = int(np.argmax(support)) if support.size else 0
    base = np.zeros_like(m)
    if support.size:
        base[:, k] = support
    return base, k


def _headline(m: np.ndarray) -> dict[str, float]:
    return {
        "overall_accuracy": overall_accuracy(m),
        "kappa": cohen_kappa(m),
        "miou": mean_iou(m, "present"),
        "miou_all": mean_iou(m, "all"),
        "fwiou": fwiou(m),
        "macro_f1": _nanmean(f1_score(m)),
    }


def _nanmean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def summary_metrics(
    x: MatrixLike,
    names: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    task: str = "segmentation",
) -> dict[str, Any]:
    """The metrics dictionary of the CONTRACTS.md schema (``landforge-metrics/1``).

    Args:
        x: confusion matrix (rows = truth) or a
            :class:`~landforge.evaluation.confusion.ConfusionMatrix`.
        names: class names in matrix order (default: those of ``x`` or the indices).
        labels: label values in matrix order (default: those of ``x`` or the indices).
        task: free text saying what was evaluated.

    Returns:
        A JSON-ready dict (NaN kept as float NaN; :func:`landforge.config.jsonable`
        turns it into null).
    """
    if hasattr(x, "matrix"):  # an accumulator (ConfusionMatrix) knows its classes
        acc: Any = x
        names = list(names) if names is not None else list(acc.names)
        labels = list(labels) if labels is not None else [int(v) for v in acc.labels]
    m = _as_matrix(x)
    k = m.shape[0]
    labels = list(labels) if labels is not None else list(range(k))
    names = list(names) if names is not None else [str(v) for v in labels]
    if len(names) != k or len(labels) != k:
        raise ValueError(f"{len(names)} names / {len(labels)} labels for a {k}x{k} matrix")
    prec, rec, f1, iu, ovr = precision(m), recall(m), f1_score(m), iou(m), ovr_accuracy(m)
    support, predicted = m.sum(axis=1), m.sum(axis=0)
    per_class = {
        name: {
            "value": int(labels[i]),
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
            "iou": float(iu[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "ovr_accuracy": float(ovr[i]),
        }
        for i, name in enumerate(names)
    }
    base, kb = majority_baseline_matrix(m)
    out: dict[str, Any] = {
        "kind": KIND_METRICS,
        "task": task,
        "classes": names,
        "labels": [int(v) for v in labels],
        "confusion_matrix": m.astype(np.int64).tolist(),
        "n": int(m.sum()),
        **_headline(m),
        "per_class": per_class,
        "baseline": {"method": "majority", "class": names[kb] if k else None, **_headline(base)},
        "conventions": {
            "confusion_matrix": "rows = truth, columns = prediction",
            "miou": "mean IoU over classes present in truth or prediction",
            "miou_all": "mean IoU over all classes, absent classes counted as 0",
            "fwiou": "sum_i support_i / n * IoU_i",
            "undefined": "0/0 ratios are null",
        },
    }
    return out
