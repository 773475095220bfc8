"""Change metrics of FUSU: binary change, per-date segmentation, semantic change, SeK.

:class:`ChangeMetrics` accumulates, over any number of blocks or batches of true and
predicted maps (class values 0..K-1, class 0 = background / "others"):

- **binary change** (IoU, F1, precision, recall of the changed class) on pixels whose
  change label is known (:func:`~landforge.change.chips.change_label`: a pixel that is
  class 0 at exactly one date is left out);
- **segmentation of each date**: per-class IoU and mIoU over classes 1..K-1 on pixels
  whose true label at that date is not 0 (a prediction of 0 there is an error); mIoU is
  the mean over the classes present in the truth or the prediction;
- **semantic change** (ours; FUSU does not say which pixels): on truly changed pixels
  only, both dates, the true class against the predicted class where the model
  predicts change, and against "no change" (a miss) where it does not; per-class IoU
  over classes 1..K-1 and its mean;
- **SECOND metrics** of :class:`~landforge.evaluation.change.ChangeConfusion`
  (Yang et al. 2021): ``mIoU_scd = (IoU_nochange + IoU_change) / 2`` and the separated
  kappa ``SeK = kappa(Q, q00 = 0) * exp(IoU_change - 1)``, the formula of the SECOND
  and open-cd evaluation code;
- **scores**: FUSU's ``0.5 mIoU + 0.5 SeK`` and open-cd's ``0.3 mIoU + 0.7 SeK`` (both
  with ``mIoU = mIoU_scd``; ours: FUSU does not define its mIoU term further).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from landforge.change.chips import IGNORE, change_label
from landforge.evaluation.change import ChangeConfusion

__all__ = ["ChangeMetrics", "format_metrics"]


def _iou(conf: np.ndarray, classes: range) -> dict[int, float]:
    """IoU of each class in ``classes`` from a (K, >=K) matrix (rows = truth)."""
    out = {}
    for c in classes:
        tp = conf[c, c]
        union = conf[c].sum() + conf[:, c].sum() - tp
        if union > 0:
            out[c] = float(tp / union)
    return out


def _mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


class ChangeMetrics:
    """Accumulates the change metrics of K classes (values 0..K-1; see the module doc)."""

    def __init__(self, classes: int, names: list[str] | None = None) -> None:
        self.k = int(classes)
        self.names = names or [str(v) for v in range(self.k)]
        self.seg = np.zeros((2, self.k, self.k), np.int64)
        self.sc = np.zeros((self.k, self.k + 1), np.int64)  # column K: missed change
        self.second = ChangeConfusion(range(self.k), self.names)

    def update(
        self,
        y1: np.ndarray,
        y2: np.ndarray,
        p1: np.ndarray,
        p2: np.ndarray,
        pc: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> ChangeMetrics:
        """Add true labels ``y1``, ``y2``, predicted classes ``p1``, ``p2`` and change ``pc``.

        Without ``pc`` change is predicted where ``p1 != p2``. ``valid`` (bool) leaves
        out pixels (e.g. nodata).
        """
        y1, y2 = np.asarray(y1).ravel().astype(np.int64), np.asarray(y2).ravel().astype(np.int64)
        p1, p2 = np.asarray(p1).ravel().astype(np.int64), np.asarray(p2).ravel().astype(np.int64)
        pch = (p1 != p2) if pc is None else np.asarray(pc).ravel().astype(bool)
        keep = np.ones(y1.shape, bool) if valid is None else np.asarray(valid).ravel().astype(bool)
        for name, a in (("truth", y1), ("truth", y2), ("pred", p1), ("pred", p2)):
            bad = (a < 0) | (a >= self.k)
            if bad.any():
                raise ValueError(
                    f"{name} value(s) {np.unique(a[bad])[:8].tolist()} outside 0..{self.k - 1}"
                )
        k = self.k
        for d, (y, p) in enumerate(((y1, p1), (y2, p2))):
            m = keep & (y != 0)
            self.seg[d] += np.bincount(y[m] * k + p[m], minlength=k * k).reshape(k, k)
        yc = change_label(y1, y2)
        known = keep & (yc != IGNORE)
        self.second.update(y1[known], y2[known], p1[known], p2[known], pch[known])
        changed = known & (yc == 1)
        for y, p in ((y1, p1), (y2, p2)):
            col = np.where(pch[changed], p[changed], k)
            self.sc += np.bincount(y[changed] * (k + 1) + col, minlength=k * (k + 1)).reshape(
                k, k + 1
            )
        return self

    def summary(self) -> dict[str, Any]:
        """All metrics as a JSON-able dict (see the module doc)."""
        cls = range(1, self.k)
        seg: list[dict[str, Any]] = []
        for d in range(2):
            iou = _iou(self.seg[d], cls)
            seg.append({"miou": _mean(iou), "iou": {self.names[c]: v for c, v in iou.items()}})
        sc_iou = _iou(self.sc, cls)
        s = self.second.summary()
        miou_scd, sek = s["second"]["miou"], s["second"]["sek"]
        dates = [float(x["miou"]) for x in seg]
        return {
            "binary": {
                k: s["binary"][k]
                for k in ("change_iou", "change_f1", "change_precision", "change_recall")
            },
            "seg_t1": seg[0],
            "seg_t2": seg[1],
            "seg_miou": float(np.nanmean(dates))
            if not all(math.isnan(x) for x in dates)
            else math.nan,
            "semantic_change": {
                "miou": _mean(sc_iou),
                "iou": {self.names[c]: v for c, v in sc_iou.items()},
            },
            "miou_scd": miou_scd,
            "sek": sek,
            "fusu_score": 0.5 * miou_scd + 0.5 * sek,
            "opencd_score": 0.3 * miou_scd + 0.7 * sek,
            "pixels": {
                "changed": int(self.sc.sum() // 2),
                "change_known": int(np.asarray(s["change_matrix"]).sum()),
            },
            "conventions": {
                "class0": "ignored in segmentation; change unknown where 0 at one date only",
                "semantic_change": "truly changed pixels, both dates; missed change = error",
                "fusu_score": "0.5 miou_scd + 0.5 sek",
                "opencd_score": "0.3 miou_scd + 0.7 sek",
            },
        }


def format_metrics(m: dict[str, Any]) -> list[str]:
    """Short lines for the CLI."""

    def pct(v: float) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"

    b = m["binary"]
    return [
        f"change IoU {pct(b['change_iou'])}  F1 {pct(b['change_f1'])}  "
        f"(P {pct(b['change_precision'])}, R {pct(b['change_recall'])})",
        f"segmentation mIoU T1 {pct(m['seg_t1']['miou'])}  T2 {pct(m['seg_t2']['miou'])}",
        f"semantic-change mIoU {pct(m['semantic_change']['miou'])}  "
        f"mIoU_scd {pct(m['miou_scd'])}  SeK {pct(m['sek'])}",
        f"score FUSU (0.5/0.5) {pct(m['fusu_score'])}  open-cd (0.3/0.7) {pct(m['opencd_score'])}",
    ]
