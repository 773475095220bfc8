"""FUSU change metrics against hand counts and an independent SECOND / SeK implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landforge.change.metrics import ChangeMetrics, format_metrics


def _second_reference(y1, y2, p1, p2, pc, k):  # noqa: ANN001, ANN202
    """SECOND's evaluation (semantic maps: class where changed, 0 = no change), written
    from the formulas of Yang et al. 2021 / open-cd, for predictions without class 0."""
    t = np.concatenate([np.where(y1 != y2, y1, 0), np.where(y1 != y2, y2, 0)])
    p = np.concatenate([np.where(pc, p1, 0), np.where(pc, p2, 0)])
    hist = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(float)
    n0 = hist.copy()
    n0[0, 0] = 0
    s = n0.sum()
    po = np.trace(n0) / s
    pe = (n0.sum(0) * n0.sum(1)).sum() / s**2
    kappa = (po - pe) / (1 - pe)
    tn = hist[0, 0]
    fp, fn = hist[0, 1:].sum(), hist[1:, 0].sum()
    tp = hist.sum() - tn - fp - fn
    iou_fg, iou_bg = tp / (tp + fp + fn), tn / (tn + fp + fn)
    return (iou_bg + iou_fg) / 2, kappa * math.exp(iou_fg) / math.e


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_sek_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = 5
    y1 = rng.integers(1, k, 200)
    y2 = np.where(rng.random(200) < 0.3, rng.integers(1, k, 200), y1)
    p1 = np.where(rng.random(200) < 0.8, y1, rng.integers(1, k, 200))
    p2 = np.where(rng.random(200) < 0.8, y2, rng.integers(1, k, 200))
    pc = np.where(rng.random(200) < 0.85, y1 != y2, rng.random(200) < 0.5)
    m = ChangeMetrics(k).update(y1, y2, p1, p2, pc).summary()
    miou, sek = _second_reference(y1, y2, p1, p2, pc, k)
    if np.isnan(sek):
        return
    assert m["miou_scd"] == pytest.approx(miou)
    assert m["sek"] == pytest.approx(sek)
    assert m["fusu_score"] == pytest.approx(0.5 * miou + 0.5 * sek)
    assert m["opencd_score"] == pytest.approx(0.3 * miou + 0.7 * sek)


def test_hand_counts_and_class0() -> None:
    y1 = np.array([1, 1, 2, 2, 0, 0, 3, 3])
    y2 = np.array([1, 2, 2, 3, 0, 1, 3, 3])
    p1 = np.array([1, 1, 2, 2, 2, 1, 3, 1])
    p2 = np.array([1, 2, 2, 2, 2, 1, 3, 1])
    pc = np.array([0, 1, 0, 0, 1, 0, 0, 0], bool)
    m = ChangeMetrics(4).update(y1, y2, p1, p2, pc).summary()
    # change known on 7 pixels (pixel 5 is 0 at T1 only); truly changed: 1 and 3
    assert m["pixels"] == {"changed": 2, "change_known": 7}
    # change: TP 1 (pixel 1), FN 1 (pixel 3), FP 1 (pixel 4, both dates class 0)
    assert m["binary"]["change_iou"] == pytest.approx(1 / 3)
    assert m["binary"]["change_f1"] == pytest.approx(0.5)
    # T1 segmentation on y1 != 0: class 1 {0,1} -> 1,1; class 2 {2,3} -> 2,2; class 3 {6,7} -> 3,1
    assert m["seg_t1"]["iou"] == {"1": pytest.approx(2 / 3), "2": 1.0, "3": 0.5}
    assert m["seg_t1"]["miou"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    # semantic change: pixel 1 (1->2) hit at both dates; pixel 3 (2->3) missed at both
    assert m["semantic_change"]["iou"] == {"1": 1.0, "2": 0.5, "3": 0.0}
    assert len(format_metrics(m)) == 4


def test_perfect_and_bad_values() -> None:
    rng = np.random.default_rng(1)
    y1 = rng.integers(1, 6, (8, 8))
    y2 = np.where(rng.random((8, 8)) < 0.3, rng.integers(1, 6, (8, 8)), y1)
    m = ChangeMetrics(6).update(y1, y2, y1, y2).summary()
    assert m["binary"]["change_iou"] == 1.0 and m["sek"] == pytest.approx(1.0)
    assert m["seg_miou"] == 1.0 and m["semantic_change"]["miou"] == 1.0
    with pytest.raises(ValueError, match="outside 0..5"):
        ChangeMetrics(6).update(y1, y2, y1 + 5, y2)
