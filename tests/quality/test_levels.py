"""Quality levels on arrays: soft-probability bounds, the rules before the model,
the cascade, cleanlab against cleanlab itself, AUROC of a level for wrong labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from landforge.errors import InputError, OptionError
from landforge.quality import (
    cascade_levels,
    cleanlab_levels,
    grade,
    manual_flags,
    prior_levels,
    softprob_levels,
    wrong_label_auroc,
    wrong_label_shares,
)
from landforge.quality.models import default_model


def _rows(top: np.ndarray, k: int = 3) -> np.ndarray:
    """Probability rows whose largest entry is ``top`` (the rest shared evenly)."""
    rest = (1 - top) / (k - 1)
    p = np.repeat(rest[:, None], k, axis=1)
    p[:, 0] = top
    return p


def test_softprob_bounds_are_inclusive_below() -> None:
    top = np.array([1.0, 0.99, 0.98999, 0.9, 0.89999, 0.6, 0.59999, 0.5])
    assert softprob_levels(_rows(top)).tolist() == [5, 5, 4, 4, 3, 3, 2, 2]
    # configurable bounds
    assert softprob_levels(_rows(top), (0.5, 0.95, 0.999)).tolist() == [5, 4, 4, 3, 3, 3, 3, 3]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)),
              elements=st.floats(0.001, 1.0)))  # fmt: skip
def test_softprob_matches_the_rule(raw: np.ndarray) -> None:
    p = raw / raw.sum(axis=1, keepdims=True)
    m = p.max(axis=1)
    expected = np.select([m >= 0.99, m >= 0.9, m >= 0.6], [5, 4, 3], 2)
    assert softprob_levels(p).tolist() == expected.tolist()
    # scoring by the label's probability never gives a higher level than by the maximum
    y = np.zeros(len(p), dtype=int)
    assert (softprob_levels(p, labels=y) <= softprob_levels(p)).all()


def test_softprob_rejects_bad_probabilities() -> None:
    with pytest.raises(InputError, match="do not sum to 1"):
        softprob_levels(np.array([[0.5, 0.6]]))
    with pytest.raises(InputError, match="4 probability columns for 3 classes"):
        grade(np.array([0, 1]), np.full((2, 4), 0.25), n_classes=3)
    with pytest.raises(OptionError, match="thresholds"):
        grade(np.array([0, 1]), np.full((2, 2), 0.5), thresholds=[0.9, 0.6, 0.99])


def test_levels_before_the_model_take_precedence() -> None:
    missing = np.array([1, 1, 0, 0, 0, 0], bool)
    cannot = np.array([1, 0, 1, 1, 0, 0], bool)
    poor = np.array([1, 0, 1, 0, 1, 0], bool)
    prior = prior_levels(6, missing=missing, cannot_judge=cannot, poor=poor)
    assert prior.tolist() == [0, 0, 1, 1, 2, -1]
    # the model decides only the last sample; a confident model cannot lift the others
    probs = np.tile([[1.0, 0.0]], (6, 1))
    g = grade(np.zeros(6, int), probs, prior=prior)
    assert g.levels.tolist() == [0, 0, 1, 1, 2, 5]
    assert np.isnan(g.score[:5]).all()
    # a missing label is level 0 without a prior
    assert grade(np.array([-1, 0]), np.tile([[1.0, 0.0]], (2, 1))).levels.tolist() == [0, 5]


def test_manual_flags_accept_known_values_only() -> None:
    assert manual_flags(["", None, "OK", " poor", "cannot_judge"]).tolist() == [
        "ok", "ok", "ok", "poor", "cannot_judge"
    ]  # fmt: skip
    with pytest.raises(InputError, match=r"'maybe' \(2\)"):
        manual_flags(["poor", "maybe", "maybe"])


def _problem(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1.0, (n, 3)) + np.eye(3)[y] * 1.5
    return x, y


def test_cascade_gives_5_exactly_where_tier_1_is_right() -> None:
    x, y = _problem()
    fitted = []

    def make(name: str, seed: int):  # records the tier models in fitting order
        est = default_model("logistic", seed)
        fitted.append(est)
        return est

    levels, score, full, info = cascade_levels(
        x, y, 3, tier_sizes=[30, 60], tier_rules=["clean", "agree"], make_model=make
    )
    assert info["tiers"][0] == 30 and 0 < info["tiers"][1] <= 60
    tier1, tier2, whole = fitted
    right1 = tier1.predict(x) == y
    right2 = tier2.predict(x) == y
    right3 = whole.predict(x) == y
    assert np.array_equal(levels == 5, right1)
    assert np.array_equal(levels == 4, right2 & ~right1)
    assert np.array_equal(levels == 3, right3 & ~right1 & ~right2)
    assert np.array_equal(levels == 2, ~right1 & ~right2 & ~right3)
    assert np.allclose(full, whole.predict_proba(x)) and ((score >= 0) & (score <= 1)).all()


def test_cascade_tier_larger_than_the_data_is_an_option_error() -> None:
    x, y = _problem(40)
    with pytest.raises(OptionError, match="tier 1 asks for 1000 samples; only 40"):
        cascade_levels(x, y, 3, tier_sizes=[1000, 10000])
    with pytest.raises(OptionError, match="tier 1 cannot use agree"):
        cascade_levels(x, y, 3, tier_sizes=[10], tier_rules=["agree"])
    with pytest.raises(OptionError, match="feature table"):
        grade(y, method="cascade")


def test_cleanlab_levels_follow_cleanlab() -> None:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet([0.4, 0.4, 0.4], 200)
    p[np.arange(150), y[:150]] += 2.0  # most labels agree with the model
    p /= p.sum(axis=1, keepdims=True)
    levels, quality, info = cleanlab_levels(p, y)
    issues = find_label_issues(y, p, n_jobs=1)
    assert np.array_equal(levels == 2, issues) and info["label_issues"] == issues.sum()
    assert np.allclose(quality, get_label_quality_scores(y, p))
    assert (levels[~issues] >= 3).all()
    # the stage's path: out-of-fold probabilities from features, then the same mapping
    x, yy = _problem(90)
    g = grade(yy, features=x, method="cleanlab", groups=np.arange(90) // 10)
    assert g.info["probabilities"] == "out_of_fold" and set(g.levels) <= {2, 3, 4, 5}


def test_auroc_of_a_perfect_score_is_1() -> None:
    wrong = np.array([1, 1, 0, 0, 0], bool)
    assert wrong_label_auroc(wrong, np.array([2, 2, 5, 4, 4])) == 1.0
    assert wrong_label_auroc(wrong, np.array([5, 5, 2, 2, 2])) == 0.0
    assert wrong_label_auroc(wrong, np.full(5, 3)) == 0.5
    assert wrong_label_auroc(np.zeros(3, bool), np.arange(3)) is None
    shares = wrong_label_shares(wrong, np.array([2, 4, 5, 4, 2]))
    assert shares == {"wrong_in_le2": 0.5, "right_in_ge4": 2 / 3}
