"""Classifiers behind the grading: scikit-learn models over a parcel feature table.

A *model factory* ``make_model(name, seed)`` returns an unfitted estimator with
``fit(X, y)`` and ``predict_proba(X)`` (scikit-learn's protocol); pass your own to grade
with another classifier (the fusion model's probabilities, a tier of another
architecture). Probabilities always come back as (n, k) over the dataset's k classes,
also when a training subset lacks some of them (zero columns).

Out-of-fold probabilities are cross-fitted over spatial blocks: blocks (e.g. the 300 m
grid cells of :func:`landforge.datasets.splits.feature_blocks`) are shuffled into folds
by seed, so a sample is never scored by a model that saw its neighbours' labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from landforge.quality.options import TIER_MODELS

__all__ = [
    "ModelFactory",
    "block_folds",
    "default_model",
    "fit_predict_proba",
    "out_of_fold_proba",
]


class Classifier(Protocol):
    """What the grading needs of a classifier (scikit-learn's protocol)."""

    classes_: np.ndarray

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any:  # noqa: D102
        ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:  # noqa: D102
        ...


#: ``make_model(name, seed) -> unfitted classifier``
ModelFactory = Callable[[str, int], Classifier]


def default_model(name: str = "hgb", seed: int = 0) -> Classifier:
    """A scikit-learn classifier by name: hgb, logistic or forest.

    ``hgb``: HistGradientBoosting, 100 iterations, ``min_samples_leaf=5`` (sklearn's 20
    leaves sparse POI count columns unused on a few hundred parcels; as in docs/poi.md),
    no early stopping. ``logistic``: standardised features, L2, 1,000 iterations.
    ``forest``: 200 trees, ``min_samples_leaf=2``.
    """
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=100, min_samples_leaf=5, early_stopping=False, random_state=seed
        )
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))  # type: ignore[return-value]
    if name == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1
        )
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(TIER_MODELS)}")


def fit_predict_proba(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    model: str = "hgb",
    seed: int = 0,
    make_model: ModelFactory | None = None,
) -> np.ndarray:
    """Fit on ``(x_train, y_train)`` (labels 0..k-1) and return (n_test, k) probabilities.

    Classes absent from the training labels get probability 0; a training set with one
    class predicts it with probability 1 (no model is fitted).
    """
    y = np.asarray(y_train, dtype=np.int64)
    out = np.zeros((len(x_test), n_classes), dtype=np.float64)
    if len(x_test) == 0:
        return out
    present = np.unique(y)
    if len(present) == 0:
        out[:] = 1.0 / n_classes
        return out
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    from threadpoolctl import threadpool_limits

    est = (make_model or default_model)(model, seed)
    # parcel tables are small: OpenMP threads cost more than they save (and spin for
    # minutes on a loaded machine), so the boosting runs on one thread
    with threadpool_limits(limits=1, user_api="openmp"):
        est.fit(x_train, y)
        p = np.asarray(est.predict_proba(x_test), dtype=np.float64)
    cols = np.asarray(getattr(est, "classes_", present), dtype=np.int64)
    out[:, cols] = p
    return out


def block_folds(groups: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold (0..folds-1) of each sample: its block (group) shuffled into folds by seed.

    With fewer blocks than folds each block is its own fold.
    """
    codes, uniques = _factorize(groups)
    order = np.random.default_rng(seed).permutation(len(uniques))
    fold_of_block = order % max(1, min(folds, len(uniques)))
    return fold_of_block[codes].astype(np.int64)


def _factorize(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(np.asarray(groups, dtype=object)), sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def out_of_fold_proba(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    fold: np.ndarray,
    model: str = "hgb",
    seed: int = 0,
    make_model: ModelFactory | None = None,
) -> np.ndarray:
    """(n, k) probabilities, each row from a model that did not see the row's fold."""
    fold = np.asarray(fold)
    out = np.zeros((len(y), n_classes), dtype=np.float64)
    for f in np.unique(fold):
        te = fold == f
        out[te] = fit_predict_proba(x[~te], y[~te], x[te], n_classes, model, seed, make_model)
    return out
