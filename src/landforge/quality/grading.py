"""Grade every sample of a labelled dataset into quality levels 0-5 (MSLU-100K).

Three methods, on plain arrays (labels as integers 0..k-1, -1 = no label):

* **softprob** (MSLU): the full model's class probabilities, in-sample by default as in
  the paper (``probabilities="out_of_fold"``: cross-fitted on spatial blocks, not in the
  paper); max p >= 0.99 -> 5, [0.9, 0.99) -> 4, [0.6, 0.9) -> 3, below -> 2
  (:func:`~landforge.quality.levels.softprob_levels`).
* **cascade** (MSLU): tier models trained on growing, less clean subsets (MSLU: 1k
  complete and unmixed samples -> 10k at 95 % accuracy -> all); correct by tier 1 -> 5,
  by tier 2 -> 4, by the full model -> 3, else 2. Our reading of "10k at 95 %
  accuracy": tier 2 trains on the samples whose label tier 1 predicts (rule ``agree``),
  most confident first. A tier's own training samples are judged in-sample (paper) or
  cross-fitted within the tier (``out_of_fold``: not in the paper).
* **cleanlab**: confident learning (Northcutt et al. 2021) on out-of-fold probabilities:
  ``cleanlab.filter.find_label_issues`` flags a sample -> 2; otherwise its
  ``get_label_quality_scores`` (self-confidence) against the same bounds, at least 3
  (the mapping is ours).

Levels 0 and 1 (and a manual 2) are set before any model runs
(:func:`~landforge.quality.levels.prior_levels`); the models train and predict on the
remaining ("gradable") samples only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landforge.errors import InputError, OptionError
from landforge.quality.levels import (
    UNSET,
    check_probabilities,
    score_levels,
    softprob_levels,
)
from landforge.quality.models import (
    ModelFactory,
    block_folds,
    fit_predict_proba,
    out_of_fold_proba,
)
from landforge.quality.options import GradeOptions

__all__ = [
    "Grading",
    "cascade_levels",
    "cleanlab_levels",
    "grade",
    "softprob_levels",
]


@dataclass
class Grading:
    """Result of :func:`grade`, one entry per sample.

    Attributes:
        levels: int8 levels 0-5.
        score: the method's underlying score (softprob: the probability it thresholds;
            cascade: mean probability of the label over the tiers, ours; cleanlab: label
            quality); NaN where a level was set before the model.
        probs: (n, k) probabilities of the full model (NaN rows where not predicted).
        pred: predicted class (-1 where not predicted).
        info: method details (tier sizes, samples flagged by cleanlab, ...).
    """

    levels: np.ndarray
    score: np.ndarray
    probs: np.ndarray
    pred: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1:
        raise InputError("labels", f"expected a 1-D array, got shape {y.shape}")
    bad = (y < -1) | (y >= n_classes)
    if bad.any():
        raise InputError("labels", f"{int(bad.sum())} labels outside 0..{n_classes - 1}")
    return y


def _folds(groups: np.ndarray | None, n: int, o: GradeOptions) -> np.ndarray:
    # without spatial blocks every sample is its own block (plain shuffled k-fold)
    g = np.arange(n) if groups is None else np.asarray(groups, dtype=object)
    return block_folds(g, o.folds, o.seed)


def grade(
    labels: np.ndarray,
    probs: np.ndarray | None = None,
    features: np.ndarray | None = None,
    opts: GradeOptions | None = None,
    *,
    n_classes: int | None = None,
    prior: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    purity: np.ndarray | None = None,
    make_model: ModelFactory | None = None,
    **overrides: Any,
) -> Grading:
    """Quality level of every sample by ``opts.method``.

    Args:
        labels: integer labels 0..k-1, -1 where a sample has none (level 0).
        probs: (n, k) probabilities of a model trained elsewhere (e.g. the fusion
            model); used by softprob and cleanlab (which then assumes they are out of
            fold). Without them the models are trained here on ``features``.
        features: (n, d) feature table for the models trained here (the cascade always).
        opts: :class:`~landforge.quality.options.GradeOptions` (or keywords).
        n_classes: k (default: the columns of ``probs`` or the largest label + 1).
        prior: levels set before the model (:func:`~landforge.quality.levels.prior_levels`);
            default: 0 where the label is missing, else unset.
        groups: spatial block of each sample (folds of out-of-fold probabilities).
        purity: label purity per sample (the cascade's ``clean`` rule).
        make_model: ``make_model(name, seed)`` -> classifier (default scikit-learn).
        **overrides: fields of ``opts``.

    Raises:
        OptionError: a method without the input it needs, a tier larger than the data.
        InputError: probabilities of the wrong shape or not summing to 1.
    """
    o = GradeOptions.build(opts, **overrides)
    if n_classes is None:
        if probs is not None:
            n_classes = int(np.asarray(probs).shape[1]) if np.ndim(probs) == 2 else 0
        else:
            n_classes = int(np.max(labels, initial=-1)) + 1
    y = _labels(labels, n_classes)
    n = len(y)
    if probs is not None:
        probs = check_probabilities(probs, n_classes)
        if len(probs) != n:
            raise InputError("probabilities", f"{len(probs)} rows for {n} samples")
    if features is not None:
        features = np.asarray(features, dtype=np.float64)
        if features.shape[0] != n:
            raise InputError("features", f"{features.shape[0]} rows for {n} samples")
    levels = np.full(n, UNSET, dtype=np.int8) if prior is None else np.array(prior, np.int8)
    levels[(y < 0) & (levels == UNSET)] = 0
    todo = np.flatnonzero(levels == UNSET)
    score = np.full(n, np.nan)
    full_p = np.full((n, n_classes), np.nan)
    pred = np.full(n, -1, dtype=np.int64)
    info: dict[str, Any] = {"method": o.method, "gradable": len(todo)}
    if len(todo) == 0:
        return Grading(levels, score, full_p, pred, info)
    g = None if groups is None else np.asarray(groups, dtype=object)[todo]
    x = None if features is None else features[todo]
    if o.method == "cascade":
        if x is None:
            raise OptionError("method", "the cascade trains tier models: give a feature table")
        pur = None if purity is None else np.asarray(purity, dtype=np.float64)[todo]
        lv, sc, p, inf = cascade_levels(
            x, y[todo], n_classes, o, groups=g, purity=pur, make_model=make_model
        )
        info.update(inf)
    else:
        if probs is not None:
            p = probs[todo]
            info["probabilities"] = "given"
        elif x is None:
            raise OptionError("method", f"{o.method} needs probabilities or a feature table")
        elif o.method == "cleanlab" or o.probabilities == "out_of_fold":
            fold = _folds(g, len(todo), o)
            p = out_of_fold_proba(
                x, y[todo], n_classes, fold, o.tier_models[-1], o.seed, make_model
            )
            info["probabilities"] = "out_of_fold"
        else:
            p = fit_predict_proba(x, y[todo], x, n_classes, o.tier_models[-1], o.seed, make_model)
            info["probabilities"] = "in_sample"
        if o.method == "softprob":
            sc = p.max(axis=1) if o.score == "max" else p[np.arange(len(todo)), y[todo]]
            lv = score_levels(sc, o.thresholds)
        else:
            lv, sc, inf = cleanlab_levels(p, y[todo], o.thresholds)
            info.update(inf)
    levels[todo] = lv
    score[todo] = sc
    full_p[todo] = p
    pred[todo] = np.argmax(p, axis=1)
    return Grading(levels, score, full_p, pred, info)


def cleanlab_levels(
    probs: np.ndarray, labels: np.ndarray, thresholds: Any = (0.6, 0.9, 0.99)
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Confident learning mapped onto levels 2-5 (mapping ours).

    A sample ``cleanlab.filter.find_label_issues`` flags gets 2; the others get their
    ``cleanlab.rank.get_label_quality_scores`` (self-confidence: the probability of the
    given label) against ``thresholds``, but at least 3. Classes no sample is labelled
    with are left out (cleanlab needs every class present); rows are renormalised.

    Returns:
        levels, label quality scores, ``{"label_issues": count}``.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(labels, dtype=np.int64)
    present = np.unique(y)
    p = np.asarray(probs, dtype=np.float64)[:, present]
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / len(present)), where=total > 0)
    yy = np.searchsorted(present, y)
    if len(present) < 2:  # one class: nothing to confuse it with
        quality = np.ones(len(y))
        issues = np.zeros(len(y), dtype=bool)
    else:
        issues = np.asarray(find_label_issues(yy, p, n_jobs=1), dtype=bool)
        quality = np.asarray(get_label_quality_scores(yy, p), dtype=np.float64)
    levels = np.maximum(score_levels(quality, thresholds), 3).astype(np.int8)
    levels[issues] = 2
    return levels, quality, {"label_issues": int(issues.sum())}


def _tier_size(size: float, n: int, tier: int) -> int:
    k = int(round(size * n)) if size < 1 else int(size)
    if k > n:
        raise OptionError(
            "tier_sizes", f"tier {tier + 1} asks for {k} samples; only {n} can be graded"
        )
    return max(k, 1)


def _select(
    rule: str,
    k: int,
    y: np.ndarray,
    prev: np.ndarray | None,
    purity: np.ndarray | None,
    rng: np.random.Generator,
    tier: int,
) -> np.ndarray:
    n = len(y)
    tie = rng.random(n)  # random order among equals
    if rule == "random":
        return np.sort(np.argsort(tie)[:k])
    if rule == "clean":
        pur = np.ones(n) if purity is None else np.nan_to_num(purity, nan=0.0)
        return np.sort(np.lexsort((tie, -pur))[:k])
    # agree: the previous tier predicts the label; most confident first
    if prev is None:
        raise OptionError("tier_rules", f"tier {tier + 1} cannot use agree: no previous tier")
    p_label = prev[np.arange(n), y]
    agree = np.argmax(prev, axis=1) == y
    order = np.lexsort((tie, -p_label))
    return np.sort(order[agree[order]][:k])


def _judge(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    n_classes: int,
    name: str,
    o: GradeOptions,
    groups: np.ndarray | None,
    make_model: ModelFactory | None,
) -> np.ndarray:
    """Probabilities of a tier model trained on ``train`` for every sample."""
    p = fit_predict_proba(x[train], y[train], x, n_classes, name, o.seed, make_model)
    if o.probabilities == "out_of_fold" and len(train) > 1:
        g = None if groups is None else groups[train]
        fold = _folds(g, len(train), o)
        p[train] = out_of_fold_proba(x[train], y[train], n_classes, fold, name, o.seed, make_model)
    return p


def cascade_levels(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    opts: GradeOptions | None = None,
    *,
    groups: np.ndarray | None = None,
    purity: np.ndarray | None = None,
    make_model: ModelFactory | None = None,
    **overrides: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Model cascade on gradable samples: correct by tier 1 -> 5, tier 2 -> 4, full -> 3, else 2.

    Args:
        features: (n, d) features of the gradable samples.
        labels: their labels 0..k-1.
        n_classes: k.
        opts: ``tier_sizes``, ``tier_rules``, ``tier_models``, ``probabilities``, ``seed``.
        groups: spatial blocks (folds when ``probabilities="out_of_fold"``).
        purity: label purity (rule ``clean``: purest first; none: random order).
        make_model: classifier factory.
        **overrides: fields of ``opts``.

    Returns:
        levels, score (mean probability of the label over the tiers and the full
        model), the full model's probabilities, ``{"tiers": [sizes], ...}``.

    Raises:
        OptionError: a tier larger than the data, ``agree`` for tier 1.
    """
    o = GradeOptions.build(opts, **overrides)
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    sizes = [_tier_size(s, n, t) for t, s in enumerate(o.tier_sizes)]
    rng = np.random.default_rng(o.seed)
    levels = np.full(n, 2, dtype=np.int8)
    decided = np.zeros(n, dtype=bool)
    p_label = np.zeros(n)
    prev: np.ndarray | None = None
    used = []
    for t, k in enumerate(sizes):
        train = _select(o.tier_rules[t], k, y, prev, purity, rng, t)
        used.append(len(train))
        p = _judge(x, y, train, n_classes, o.tier_model(t), o, groups, make_model)
        correct = (np.argmax(p, axis=1) == y) & ~decided
        levels[correct] = 5 - t
        decided |= correct
        p_label += p[np.arange(n), y]
        prev = p
    full = _judge(x, y, np.arange(n), n_classes, o.tier_models[-1], o, groups, make_model)
    correct = (np.argmax(full, axis=1) == y) & ~decided
    levels[correct] = 3
    p_label += full[np.arange(n), y]
    score = p_label / (len(sizes) + 1)
    return levels, score, full, {"tiers": used, "tier_rules": o.tier_rules[: len(sizes)]}
