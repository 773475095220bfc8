"""Tables of a grading, and how well a level finds wrong labels.

Levels by class (MSLU Tables 3/4), train on one level (Table 5), accuracy by level and
parcel size (Table 6).

Every function works on plain arrays (integer labels 0..k-1, -1 = none) and returns
JSON-able dicts of rows, so the stage writes them as JSON and CSV and the report shows
them as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from landforge.quality.models import ModelFactory, fit_predict_proba

__all__ = [
    "LEVELS",
    "accuracy_by_level",
    "level_class_table",
    "size_table",
    "train_by_level",
    "wrong_label_auroc",
    "wrong_label_shares",
]

LEVELS = (0, 1, 2, 3, 4, 5)


def _oa_kappa(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> tuple[float, float]:
    from landforge.evaluation.metrics import ConfusionMatrix, cohen_kappa, overall_accuracy

    cm = ConfusionMatrix(labels=list(range(n_classes)))
    cm.update(np.asarray(truth, dtype=np.int64), np.asarray(pred, dtype=np.int64))
    return float(overall_accuracy(cm)), float(cohen_kappa(cm))


def level_class_table(
    levels: np.ndarray, labels: np.ndarray, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Samples per level and class, count and row % (MSLU Tables 3/4).

    One row per level 0-5 plus ``total``; columns ``<class>`` (count), ``<class>_pct``
    (share of the level's samples, %), ``unlabelled`` and ``total``.
    """
    lv = np.asarray(levels)
    y = np.asarray(labels)
    rows = []
    for level in (*LEVELS, "total"):
        m = np.ones(len(lv), bool) if level == "total" else lv == level
        total = int(m.sum())
        row: dict[str, Any] = {"level": level}
        for k, name in enumerate(classes):
            c = int((m & (y == k)).sum())
            row[name] = c
            row[f"{name}_pct"] = round(100.0 * c / total, 2) if total else None
        row["unlabelled"] = int((m & (y < 0)).sum())
        row["total"] = total
        rows.append(row)
    return rows


def accuracy_by_level(
    levels: np.ndarray, labels: np.ndarray, pred: np.ndarray, n_classes: int
) -> list[dict[str, Any]]:
    """Agreement of (held-out) predictions with the labels per level, and over all."""
    lv, y, p = np.asarray(levels), np.asarray(labels), np.asarray(pred)
    rows = []
    for level in (*LEVELS, "all"):
        m = (y >= 0) & (p >= 0) & (np.ones(len(lv), bool) if level == "all" else lv == level)
        oa, kappa = _oa_kappa(y[m], p[m], n_classes) if m.any() else (None, None)
        rows.append({"level": level, "samples": int(m.sum()), "accuracy": oa, "kappa": kappa})
    return rows


def train_by_level(
    features: np.ndarray,
    labels: np.ndarray,
    levels: np.ndarray,
    gold: np.ndarray,
    n_classes: int,
    *,
    gold_labels: np.ndarray | None = None,
    model: str = "hgb",
    seeds: Sequence[int] = (0,),
    make_model: ModelFactory | None = None,
) -> list[dict[str, Any]]:
    """Train on the samples of one level, test on the gold set (MSLU Table 5).

    Rows: levels 2-5 and ``full`` (every labelled training sample, all levels), each
    with the training size, accuracy and kappa on the gold samples (mean over
    ``seeds``). Gold samples never train. ``gold_labels`` are the gold set's true labels
    (default: ``labels``). The gold set's size and the majority-class accuracy of the
    full training set are in the ``majority`` row.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    lv = np.asarray(levels)
    is_gold = np.asarray(gold, dtype=bool)
    truth_all = y if gold_labels is None else np.asarray(gold_labels, dtype=np.int64)
    test = is_gold & (truth_all >= 0)
    truth = truth_all[test]
    train_ok = ~is_gold & (y >= 0)
    rows = []
    for level in (2, 3, 4, 5, "full"):
        m = train_ok & (lv == level) if level != "full" else train_ok
        row: dict[str, Any] = {"train_level": level, "train_samples": int(m.sum())}
        if m.sum() == 0 or not test.any():
            row.update(accuracy=None, kappa=None)
        else:
            scores = []
            for seed in seeds:
                p = fit_predict_proba(x[m], y[m], x[test], n_classes, model, seed, make_model)
                scores.append(_oa_kappa(truth, np.argmax(p, axis=1), n_classes))
            row["accuracy"] = float(np.mean([s[0] for s in scores]))
            row["kappa"] = float(np.mean([s[1] for s in scores]))
        row["gold_samples"] = int(test.sum())
        rows.append(row)
    if train_ok.any() and test.any():
        major = int(np.bincount(y[train_ok], minlength=n_classes).argmax())
        oa, kappa = _oa_kappa(truth, np.full(len(truth), major), n_classes)
        rows.append(
            {"train_level": "majority", "train_samples": int(train_ok.sum()), "accuracy": oa,
             "kappa": kappa, "gold_samples": int(test.sum())}
        )  # fmt: skip
    return rows


def size_table(
    labels: np.ndarray,
    pred: np.ndarray,
    area_m2: np.ndarray,
    n_classes: int,
    *,
    small_m2: float = 5000.0,
    large_m2: float = 50000.0,
    groups: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Accuracy of small (< small_m2) and large (> large_m2) parcels vs all (MSLU Table 6).

    One row per (group, size class); group ``all`` always, plus one per value of
    ``groups`` (city, district) when given.
    """
    y, p, a = np.asarray(labels), np.asarray(pred), np.asarray(area_m2, dtype=np.float64)
    scored = (y >= 0) & (p >= 0)
    g = np.full(len(y), "all", dtype=object) if groups is None else np.asarray(groups, object)
    names = ["all"] + ([] if groups is None else sorted({str(v) for v in g}))
    rows = []
    for name in names:
        in_g = np.ones(len(y), bool) if name == "all" else np.array([str(v) == name for v in g])
        for size, m in (
            ("all", in_g),
            (f"small (< {small_m2:g} m²)", in_g & (a < small_m2)),
            (f"large (> {large_m2:g} m²)", in_g & (a > large_m2)),
        ):
            m = m & scored
            oa, kappa = _oa_kappa(y[m], p[m], n_classes) if m.any() else (None, None)
            rows.append(
                {"group": name, "size": size, "parcels": int(m.sum()), "accuracy": oa,
                 "kappa": kappa}
            )  # fmt: skip
    return rows


def wrong_label_auroc(is_wrong: np.ndarray, trust: np.ndarray) -> float | None:
    """AUROC of a trust value (level or score: high = trustworthy) for "label is wrong".

    ``roc_auc_score(is_wrong, -trust)``: 1 when every wrong label is trusted less than
    every right one, 0.5 for no information; None when only one kind is present or
    ``trust`` is NaN.
    """
    from sklearn.metrics import roc_auc_score

    w = np.asarray(is_wrong, dtype=bool)
    t = np.asarray(trust, dtype=np.float64)
    keep = np.isfinite(t)
    w, t = w[keep], t[keep]
    if w.all() or not w.any():
        return None
    return float(roc_auc_score(w, -t))


def wrong_label_shares(is_wrong: np.ndarray, levels: np.ndarray) -> dict[str, float | None]:
    """Share of wrong labels in levels <= 2 and of right labels in levels >= 4."""
    w = np.asarray(is_wrong, dtype=bool)
    lv = np.asarray(levels)
    return {
        "wrong_in_le2": float((lv[w] <= 2).mean()) if w.any() else None,
        "right_in_ge4": float((lv[~w] >= 4).mean()) if (~w).any() else None,
    }
