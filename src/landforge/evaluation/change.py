"""Semantic-change metrics of bi-temporal class maps (SECOND protocol, transitions).

Change detection (:class:`ChangeConfusion`) follows the SECOND protocol (Yang et al.
2021, "Asymmetric Siamese Networks for Semantic Change Detection in Aerial Images",
IEEE TGRS 60), see its docstring for the exact formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from landforge.evaluation.scores import (
    KIND_METRICS,
    UnknownLabelError,
    _as_matrix,
    _div,
    cohen_kappa,
    f1_score,
    iou,
    overall_accuracy,
    precision,
    recall,
)

__all__ = ["ChangeConfusion", "binary_change_metrics"]


def binary_change_metrics(x: np.ndarray) -> dict[str, float]:
    """Metrics of a 2x2 change matrix (index 0 = no change, 1 = change).

    Returns change IoU (IoU of the change class), its precision, recall and F1, the
    no-change IoU, their mean, OA and kappa.
    """
    m = _as_matrix(x)
    if m.shape != (2, 2):
        raise ValueError(f"a binary change matrix is 2x2, got {m.shape}")
    iu = iou(m)
    return {
        "change_iou": float(iu[1]),
        "change_precision": float(precision(m)[1]),
        "change_recall": float(recall(m)[1]),
        "change_f1": float(f1_score(m)[1]),
        "nochange_iou": float(iu[0]),
        "binary_miou": float(np.nanmean(iu)) if not np.all(np.isnan(iu)) else math.nan,
        "overall_accuracy": overall_accuracy(m),
        "kappa": cohen_kappa(m),
    }


class ChangeConfusion:
    """Accumulates semantic-change metrics from bi-temporal class maps.

    Inputs per block are the true class maps at both dates (``truth1``, ``truth2``), the
    predicted class maps (``pred1``, ``pred2``) and optionally a predicted binary change
    map (models with a change head); without it a pixel is predicted changed where
    ``pred1 != pred2``. A pixel truly changed where ``truth1 != truth2``.

    Two matrices are kept:

    **SECOND matrix** ``Q`` ((K+1) x (K+1), rows = truth): index 0 is "no change", index
    k >= 1 is class ``labels[k-1]``. Following SECOND (Yang et al. 2021), each date
    contributes one entry per pixel: the semantic change label of date d is the class at
    d where the pixel changed and 0 elsewhere. With ``n = sum Q``:

    - IoU_nc = q_00 / (sum_i q_i0 + sum_j q_0j - q_00)
    - IoU_c = sum_{i,j>=1} q_ij / (n - q_00)  (= binary IoU of the change class)
    - mIoU_scd = (IoU_nc + IoU_c) / 2
    - SeK = kappa(Q with q_00 set to 0) * exp(IoU_c - 1)  ("separated kappa")
    - Score = 0.3 mIoU_scd + 0.7 SeK
    - F_scd: P = sum_{i>=1} q_ii / sum_{i, j>=1} q_ij, R = sum_{i>=1} q_ii / sum_{i>=1, j} q_ij,
      F_scd = 2PR / (P + R)
    - OA_scd = trace(Q) / n

    **Transition matrix** ``T`` (K^2 x K^2): over truly changed pixels only, the true
    "from->to" transition (truth1 -> truth2) against the predicted one (pred1 -> pred2).
    A prediction "a->a" on a truly changed pixel is a missed change: it counts against the
    true transition's recall but "a->a" is not itself a class.
    ``transition_miou`` = mean IoU over the transitions a->b (a != b) present in the truth
    or the prediction (restricted to truly changed pixels), where IoU is computed from
    ``T`` as for any confusion matrix. ``semantic_change_miou`` = (IoU_c +
    transition_miou) / 2, the mean of "where did it change" and "into what, from what".

    The binary change matrix (2x2) is kept too: ``change_iou`` etc. via
    :func:`binary_change_metrics`.
    """

    def __init__(
        self,
        labels: Iterable[int],
        names: Sequence[str] | None = None,
        ignore: Iterable[int] = (),
    ) -> None:
        lab = [int(v) for v in labels]
        self.labels = np.asarray(sorted(lab), np.int64)
        if names is not None:
            by_value = dict(zip(lab, names, strict=True))
            self.names = [by_value[int(v)] for v in self.labels]
        else:
            self.names = [str(int(v)) for v in self.labels]
        self.ignore = tuple(sorted({int(v) for v in ignore}))
        k = self.labels.size
        self.second = np.zeros((k + 1, k + 1), np.int64)
        self.transitions = np.zeros((k * k, k * k), np.int64)
        self.binary = np.zeros((2, 2), np.int64)

    def _index(self, values: np.ndarray, where: str) -> np.ndarray:
        pos = np.clip(np.searchsorted(self.labels, values), 0, max(self.labels.size - 1, 0))
        ok = self.labels[pos] == values
        if not ok.all():
            raise UnknownLabelError(where, np.unique(values[~ok]).tolist(), self.labels.tolist())
        return pos.astype(np.int64)

    def update(
        self,
        truth1: np.ndarray,
        truth2: np.ndarray,
        pred1: np.ndarray,
        pred2: np.ndarray,
        pred_change: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> ChangeConfusion:
        """Add one block of bi-temporal maps (all the same shape)."""
        arrays = [np.asarray(a).ravel() for a in (truth1, truth2, pred1, pred2)]
        keep = np.ones(arrays[0].shape, bool) if valid is None else np.asarray(valid).ravel()
        for a in arrays:
            if a.shape != arrays[0].shape:
                raise ValueError("all maps of a change evaluation must have the same shape")
            for v in self.ignore:
                keep = keep & (a != v)
        t1, t2, p1, p2 = (a[keep] for a in arrays)
        i_t1, i_t2 = self._index(t1, "truth"), self._index(t2, "truth")
        i_p1, i_p2 = self._index(p1, "pred"), self._index(p2, "pred")
        true_chg = i_t1 != i_t2
        if pred_change is None:
            pred_chg = i_p1 != i_p2
        else:
            pred_chg = np.asarray(pred_change).ravel()[keep].astype(bool)
        k = self.labels.size
        self.binary += np.bincount(true_chg.astype(np.int64) * 2 + pred_chg, minlength=4).reshape(
            2, 2
        )
        for ti, pi in ((i_t1, i_p1), (i_t2, i_p2)):
            s_t = np.where(true_chg, ti + 1, 0)
            s_p = np.where(pred_chg, pi + 1, 0)
            self.second += np.bincount(s_t * (k + 1) + s_p, minlength=(k + 1) ** 2).reshape(
                k + 1, k + 1
            )
        tr_t = (i_t1 * k + i_t2)[true_chg]
        tr_p = np.where(pred_chg, i_p1 * k + i_p2, i_p1 * k + i_p1)[true_chg]
        self.transitions += np.bincount(tr_t * k * k + tr_p, minlength=k**4).reshape(k * k, k * k)
        return self

    def merge(self, other: ChangeConfusion) -> ChangeConfusion:
        """A new accumulator holding the counts of both (same classes and ignore)."""
        if not np.array_equal(self.labels, other.labels) or self.ignore != other.ignore:
            raise ValueError("cannot merge change matrices with different classes or ignore")
        out = ChangeConfusion(self.labels, self.names, self.ignore)
        out.second = self.second + other.second
        out.transitions = self.transitions + other.transitions
        out.binary = self.binary + other.binary
        return out

    __add__ = merge

    def transition_names(self) -> list[str]:
        """``"a->b"`` for every pair of classes, in the order of the transition matrix."""
        return [f"{a}->{b}" for a in self.names for b in self.names]

    def summary(self) -> dict[str, Any]:
        """Binary, SECOND and transition metrics (see the class docstring)."""
        q = self.second.astype(np.float64)
        n = q.sum()
        out: dict[str, Any] = {"kind": KIND_METRICS, "task": "semantic-change"}
        out["binary"] = binary_change_metrics(self.binary)
        iou_nc = float(_div(q[0, 0], q[0, :].sum() + q[:, 0].sum() - q[0, 0]))
        iou_c = float(_div(q[1:, 1:].sum(), n - q[0, 0]))
        miou_scd = (iou_nc + iou_c) / 2.0
        q_sep = q.copy()
        q_sep[0, 0] = 0.0
        kappa_sep = cohen_kappa(q_sep)
        sek = kappa_sep * math.exp(iou_c - 1.0) if not math.isnan(iou_c) else math.nan
        sc_tp = float(np.trace(q[1:, 1:]))
        p_scd = float(_div(sc_tp, q[:, 1:].sum()))
        r_scd = float(_div(sc_tp, q[1:, :].sum()))
        f_scd = float(_div(2 * p_scd * r_scd, p_scd + r_scd)) if p_scd + r_scd else math.nan
        out["second"] = {
            "overall_accuracy": overall_accuracy(q),
            "iou_nochange": iou_nc,
            "iou_change": iou_c,
            "miou": miou_scd,
            "sek": sek,
            "score": 0.3 * miou_scd + 0.7 * sek,
            "fscd": f_scd,
            "precision_scd": p_scd,
            "recall_scd": r_scd,
        }
        k = self.labels.size
        t = self.transitions.astype(np.float64)
        tp = np.diag(t)
        rows, cols = t.sum(axis=1), t.sum(axis=0)
        change_idx = np.array([a * k + b for a in range(k) for b in range(k) if a != b], int)
        tiou = _div(tp, rows + cols - tp)[change_idx] if k > 1 else np.array([])
        tnames = self.transition_names()
        present = ~np.isnan(tiou)
        t_miou = float(tiou[present].mean()) if present.any() else math.nan
        out["transition_miou"] = t_miou
        out["semantic_change_miou"] = (
            (iou_c + t_miou) / 2.0 if not (math.isnan(iou_c) or math.isnan(t_miou)) else math.nan
        )
        out["transitions"] = {
            tnames[i]: {"iou": float(v), "support": int(rows[i])}
            for i, v in zip(change_idx, tiou, strict=True)
            if not math.isnan(v)
        }
        out["classes"] = self.names
        out["labels"] = self.labels.tolist()
        out["second_matrix"] = self.second.tolist()
        out["change_matrix"] = self.binary.tolist()
        out["conventions"] = {
            "second": "Yang et al. 2021 (SECOND): index 0 = no change, both dates counted",
            "transition_miou": "mean IoU of a->b (a!=b) transitions on truly changed pixels",
            "semantic_change_miou": "(change IoU + transition mIoU) / 2",
        }
        return out
