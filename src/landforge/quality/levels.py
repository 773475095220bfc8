"""Quality levels on plain arrays: the rules set before any model, soft probability.

Levels run from 0 (no information) to 5 (most trustworthy), as in MSLU-100K (Tables 3-5).
:func:`prior_levels` sets 0, 1 and the manual level 2 before any model runs;
:func:`softprob_levels` maps class probabilities onto 2-5. Precedence (ours: the paper
does not say): level 0 beats 1, 1 beats a manual ``poor`` (2), and any of them beats the
model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from landforge.errors import InputError, OptionError
from landforge.quality.options import MANUAL_FLAGS

__all__ = [
    "UNSET",
    "check_probabilities",
    "manual_flags",
    "prior_levels",
    "score_levels",
    "softprob_levels",
]

#: level not set by the rules before the model (the model decides)
UNSET = -1


def check_probabilities(
    probs: np.ndarray,
    n_classes: int | None = None,
    source: str = "probabilities",
    atol: float = 1e-3,
) -> np.ndarray:
    """An (n, k) float array of class probabilities, or one clear error.

    Raises:
        InputError: not 2-D, a wrong class count, values outside [0, 1], NaN, or rows
            that do not sum to 1 (within ``atol``; the worst row is named).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(source, f"expected an (n, classes) array, got shape {p.shape}")
    if n_classes is not None and p.shape[1] != n_classes:
        raise InputError(source, f"{p.shape[1]} probability columns for {n_classes} classes")
    if p.shape[0] == 0:
        return p
    if not np.isfinite(p).all():
        raise InputError(source, f"{int((~np.isfinite(p)).any(axis=1).sum())} rows have NaN")
    if (p < -atol).any() or (p > 1 + atol).any():
        raise InputError(source, "probabilities outside [0, 1]")
    dev = np.abs(p.sum(axis=1) - 1.0)
    if (dev > atol).any():
        i = int(np.argmax(dev))
        raise InputError(
            source,
            f"{int((dev > atol).sum())} rows do not sum to 1 (row {i}: {p[i].sum():.4f})",
        )
    return p


def score_levels(score: np.ndarray, thresholds: Sequence[float] = (0.6, 0.9, 0.99)) -> np.ndarray:
    """Levels 2-5 of a score in [0, 1]: >= t5 -> 5, [t4, t5) -> 4, [t3, t4) -> 3, else 2."""
    t3, t4, t5 = (float(t) for t in thresholds)
    if not t3 < t4 < t5:
        raise OptionError("thresholds", "bounds must increase, e.g. 0.6,0.9,0.99")
    s = np.asarray(score, dtype=np.float64)
    return (2 + (s >= t3).astype(np.int8) + (s >= t4) + (s >= t5)).astype(np.int8)


def softprob_levels(
    probs: np.ndarray,
    thresholds: Sequence[float] = (0.6, 0.9, 0.99),
    *,
    labels: np.ndarray | None = None,
    check: bool = True,
) -> np.ndarray:
    """Soft-probability levels (MSLU): 5 if max p >= 0.99, 4 in [0.9, 0.99), 3 in [0.6, 0.9), 2 below.

    Args:
        probs: (n, k) class probabilities, rows summing to 1.
        thresholds: the bounds of levels 3, 4 and 5.
        labels: integer labels (0..k-1): score each sample by the probability of its
            own label instead of the largest one (not in the paper; a model that
            disagrees with the label then gives level 2).
        check: validate ``probs`` (rows sum to 1, values in [0, 1]).

    Returns:
        int8 levels 2-5, one per row.
    """
    p = check_probabilities(probs) if check else np.asarray(probs, dtype=np.float64)
    if labels is None:
        score = p.max(axis=1) if len(p) else np.zeros(0)
    else:
        y = np.asarray(labels, dtype=np.int64)
        score = p[np.arange(len(p)), y]
    return score_levels(score, thresholds)


def manual_flags(values: Sequence[object] | pd.Series, source: str = "manual_col") -> np.ndarray:
    """Manual flags as ``ok`` / ``cannot_judge`` / ``poor`` (case-insensitive; empty = ok).

    Raises:
        InputError: unknown values (named, with how many rows hold them).
    """
    s = pd.Series(values, dtype=object)
    text = s.where(s.notna(), "").astype(str).str.strip().str.lower()
    mapped = text.map(MANUAL_FLAGS)
    bad = text[mapped.isna()]
    if len(bad):
        counts = bad.value_counts()
        shown = ", ".join(f"{k!r} ({v})" for k, v in counts.head(5).items())
        raise InputError(
            source, f"unknown manual flag value(s) {shown}; use ok, cannot_judge or poor"
        )
    return mapped.to_numpy(dtype=object)


def prior_levels(
    n: int,
    *,
    missing: np.ndarray | None = None,
    cannot_judge: np.ndarray | None = None,
    poor: np.ndarray | None = None,
) -> np.ndarray:
    """Levels set before any model: 0 (missing information), 1 (cannot judge), 2 (poor).

    Args:
        n: number of samples.
        missing: True where the label or a required modality is missing -> 0.
        cannot_judge: True where the sample cannot be judged (manual flag, or area above
            the threshold) -> 1.
        poor: True where a manual flag says poor -> 2.

    Returns:
        int8 array: 0, 1, 2 where set, :data:`UNSET` (-1) where the model decides.
    """
    out = np.full(n, UNSET, dtype=np.int8)
    for mask, level in ((poor, 2), (cannot_judge, 1), (missing, 0)):  # later wins
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            if m.shape != (n,):
                raise ValueError(f"mask of shape {m.shape} for {n} samples")
            out[m] = level
    return out
