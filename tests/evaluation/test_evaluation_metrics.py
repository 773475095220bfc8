"""Metrics from one confusion matrix agree with scikit-learn and with hand formulas."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    jaccard_score,
    precision_recall_fscore_support,
)

from landforge.config import jsonable
from landforge.evaluation.metrics import (
    ChangeConfusion,
    ConfusionMatrix,
    UnknownLabelError,
    binary_change_metrics,
    fwiou,
    mean_iou,
    ovr_accuracy,
    summary_metrics,
)

K = 6  # values 0..5; hypothesis draws maps in which some classes are absent


def _close(a: np.ndarray | float, b: np.ndarray | float) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-9)


maps = st.integers(1, 300).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, K - 1), min_size=n, max_size=n),
        st.lists(st.integers(0, K - 1), min_size=n, max_size=n),
        st.sampled_from([None, 0, 3]),
    )
)


@settings(max_examples=100, deadline=None)
@given(maps)
def test_metrics_equal_sklearn_on_random_maps(
    data: tuple[list[int], list[int], int | None],
) -> None:
    truth, pred, ignore = np.array(data[0]), np.array(data[1]), data[2]
    labels = [v for v in range(K) if v != ignore]
    cm = ConfusionMatrix(labels, ignore=[] if ignore is None else [ignore])
    cm.update(truth.reshape(-1, 1), pred.reshape(-1, 1))
    keep = np.ones(truth.size, bool) if ignore is None else (truth != ignore) & (pred != ignore)
    t, p = truth[keep], pred[keep]
    assert cm.n_ignored == int((~keep).sum())
    assert cm.n_unpredicted == int(((pred == ignore) & (truth != ignore)).sum())
    if t.size == 0:
        assert cm.total == 0
        return
    np.testing.assert_array_equal(cm.matrix, confusion_matrix(t, p, labels=labels))
    _close(cm.overall_accuracy(), accuracy_score(t, p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = cohen_kappa_score(t, p, labels=labels)
    if math.isnan(cm.kappa()):
        assert math.isnan(kappa)
    else:
        _close(cm.kappa(), kappa)
    prec, rec, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, zero_division=np.nan, average=None
    )
    _close(cm.precision(), prec)
    _close(cm.recall(), rec)
    _close(cm.f1(), f1)
    np.testing.assert_array_equal(cm.matrix.sum(axis=1), support)
    jac = jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    absent = ~np.isin(labels, np.union1d(t, p))
    np.testing.assert_array_equal(np.isnan(cm.iou()), absent)  # undefined only when absent
    _close(np.nan_to_num(cm.iou(), nan=0.0), jac)
    _close(cm.miou("present"), jac[~absent].mean())
    _close(cm.miou("all"), jaccard_score(t, p, labels=labels, average="macro", zero_division=0))
    # one-vs-rest accuracy is the accuracy of the binarised problem
    ovr = [accuracy_score(t == v, p == v) for v in labels]
    _close(cm.ovr_accuracy(), ovr)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=400),
    st.lists(st.integers(0, 9), min_size=1, max_size=400),
    st.integers(1, 5),
)
def test_merge_equals_concatenated_update(a: list[int], b: list[int], parts: int) -> None:
    n = min(len(a), len(b))
    truth, pred = np.array(a[:n]), np.array(b[:n])
    whole = ConfusionMatrix(ignore=[0]).update(truth, pred)
    chunks = [
        ConfusionMatrix(ignore=[0]).update(t, p)
        for t, p in zip(np.array_split(truth, parts), np.array_split(pred, parts), strict=True)
    ]
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged == whole
    assert sum(chunks) == whole
    assert merged.n_ignored == whole.n_ignored
    assert ConfusionMatrix.from_json(merged.to_json()) == whole


def test_merge_unites_class_lists_of_workers() -> None:
    left = ConfusionMatrix([1, 2], ["R", "B"]).update(np.array([1, 2, 2]), np.array([1, 1, 2]))
    right = ConfusionMatrix([2, 4], ["B", "M"]).update(np.array([4, 2]), np.array([4, 4]))
    both = left.merge(right)
    assert both.labels.tolist() == [1, 2, 4]
    assert both.names == ["R", "B", "M"]
    np.testing.assert_array_equal(both.matrix, [[1, 0, 0], [1, 1, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="class 2"):
        left.merge(ConfusionMatrix([2], ["other"]))


def test_json_round_trip_keeps_everything(tmp_path) -> None:
    cm = ConfusionMatrix([3, 1, 2], ["c", "a", "b"], ignore=[0])
    cm.update(np.array([1, 2, 3, 0, 3]), np.array([1, 3, 3, 2, 0]))
    path = tmp_path / "cm.json"
    cm.to_json(path)
    back = ConfusionMatrix.from_json(path)
    assert back == cm
    assert back.names == ["a", "b", "c"]
    assert (back.n_ignored, back.n_unpredicted) == (2, 1)
    # a metrics dict also rebuilds its matrix
    assert ConfusionMatrix.from_dict(cm.summary()).matrix.tolist() == cm.matrix.tolist()


def test_fwiou_and_one_vs_rest_by_hand() -> None:
    x = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    # r = [6, 6, 4], c = [7, 4, 5], n = 16
    iou = [5 / 8, 3 / 7, 4 / 5]
    _close(fwiou(x), 6 / 16 * iou[0] + 6 / 16 * iou[1] + 4 / 16 * iou[2])
    _close(ovr_accuracy(x), [13 / 16, 12 / 16, 15 / 16])
    _close(mean_iou(x), sum(iou) / 3)
    m = summary_metrics(x, names=["R", "B", "M"], labels=[1, 2, 3])
    assert m["kind"] == "landforge-metrics/1"
    assert m["per_class"]["B"]["support"] == 6 and m["per_class"]["B"]["predicted"] == 4
    _close(m["overall_accuracy"], 12 / 16)
    # majority baseline: every pixel predicted R (first of the tied largest rows)
    assert m["baseline"]["class"] == "R"
    _close(m["baseline"]["overall_accuracy"], 6 / 16)
    _close(m["baseline"]["miou"], (6 / 16) / 3)  # R: 6/16; B, M: 0 (present in truth)
    assert math.isnan(m["baseline"]["kappa"]) is False and m["baseline"]["kappa"] == 0.0


def test_absent_class_conventions() -> None:
    # class 2 is in the class list but neither in truth nor prediction
    cm = ConfusionMatrix([0, 1, 2]).update(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert math.isnan(cm.iou()[2])
    _close(cm.miou("present"), (1 / 2 + 2 / 3) / 2)
    _close(cm.miou("all"), (1 / 2 + 2 / 3 + 0) / 3)
    doc = json.dumps(jsonable(cm.summary()), allow_nan=False)
    assert json.loads(doc)["per_class"]["2"]["iou"] is None


def test_fixed_class_list_rejects_unknown_values() -> None:
    cm = ConfusionMatrix([1, 2, 3], ignore=[0])
    with pytest.raises(UnknownLabelError) as err:
        cm.update(np.array([1, 2]), np.array([1, 9]))
    assert err.value.where == "pred" and err.value.values == [9]


def test_large_block_is_counted_exactly() -> None:
    rng = np.random.default_rng(7)
    t = rng.integers(0, 8, 1_000_000, dtype=np.uint8)
    p = np.where(rng.random(t.size) < 0.8, t, rng.integers(0, 8, t.size)).astype(np.uint8)
    fixed = ConfusionMatrix(range(1, 8), ignore=[0]).update(t, p)
    grown = ConfusionMatrix(ignore=[0]).update(t, p)
    assert fixed == grown
    keep = (t != 0) & (p != 0)
    np.testing.assert_array_equal(fixed.matrix, confusion_matrix(t[keep], p[keep]))
    # negative and large values take the search path and give the same counts
    big = ConfusionMatrix().update(
        t.astype(np.int64) * 10_000_000 - 5, p.astype(np.int64) * 10_000_000 - 5
    )
    np.testing.assert_array_equal(big.matrix, ConfusionMatrix().update(t, p).matrix)


# ---- change detection -----------------------------------------------------------------


def test_binary_change_iou() -> None:
    m = binary_change_metrics(np.array([[80, 5], [10, 5]]))
    _close(m["change_iou"], 5 / (5 + 5 + 10))
    _close(m["nochange_iou"], 80 / (80 + 5 + 10))


def _bitemporal(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    t1 = rng.integers(1, 5, (40, 40))
    t2 = t1.copy()
    t2[:12] = rng.integers(1, 5, (12, 40))
    return t1, t2


def test_perfect_change_prediction_scores_one() -> None:
    t1, t2 = _bitemporal(np.random.default_rng(1))
    s = ChangeConfusion([1, 2, 3, 4]).update(t1, t2, t1, t2).summary()
    for key in ("miou", "sek", "score", "fscd", "iou_change"):
        _close(s["second"][key], 1.0)
    _close(s["transition_miou"], 1.0)
    _close(s["semantic_change_miou"], 1.0)


def test_no_change_predicted_gives_zero_sek() -> None:
    t1, t2 = _bitemporal(np.random.default_rng(2))
    s = ChangeConfusion([1, 2, 3, 4]).update(t1, t2, t1, t1).summary()
    assert s["binary"]["change_iou"] == 0.0
    assert s["second"]["iou_change"] == 0.0
    assert s["second"]["sek"] == 0.0
    assert s["transition_miou"] == 0.0


def test_second_formulas_by_hand() -> None:
    # 4 pixels; pixel 0 unchanged (1->1) and predicted unchanged; pixel 1 changes 1->2,
    # predicted 1->2; pixel 2 changes 1->2, predicted 1->3; pixel 3 unchanged, predicted 2->3
    t1 = np.array([1, 1, 1, 2])
    t2 = np.array([1, 2, 2, 2])
    p1 = np.array([1, 1, 1, 2])
    p2 = np.array([1, 2, 3, 3])
    s = ChangeConfusion([1, 2, 3]).update(t1, t2, p1, p2).summary()
    # SECOND matrix over both dates, index 0 = no change:
    q = np.zeros((4, 4))
    q[0, 0] = 2  # pixel 0, dates 1 and 2
    q[1, 1] += 2  # pixel 1 date 1 (1 vs 1) and pixel 2 date 1 (1 vs 1)
    q[2, 2] += 1  # pixel 1 date 2
    q[2, 3] += 1  # pixel 2 date 2 (2 vs 3)
    q[0, 2] += 1  # pixel 3 date 1 (no change vs 2)
    q[0, 3] += 1  # pixel 3 date 2 (no change vs 3)
    np.testing.assert_array_equal(s["second_matrix"], q)
    iou_nc = 2 / (2 + 4 - 2)
    iou_c = 4 / (8 - 2)
    _close(s["second"]["miou"], (iou_nc + iou_c) / 2)
    qs = q.copy()
    qs[0, 0] = 0
    n = qs.sum()
    po = np.trace(qs) / n
    pe = (qs.sum(0) * qs.sum(1)).sum() / n**2
    _close(s["second"]["sek"], (po - pe) / (1 - pe) * math.exp(iou_c - 1))
    p_scd, r_scd = 3 / 6, 3 / 4
    _close(s["second"]["fscd"], 2 * p_scd * r_scd / (p_scd + r_scd))
    # transitions on truly changed pixels: 1->2 true twice, predicted 1->2 once, 1->3 once
    _close(s["transitions"]["1->2"]["iou"], 1 / 2)
    _close(s["transitions"]["1->3"]["iou"], 0.0)
    _close(s["transition_miou"], 0.25)
    _close(s["binary"]["change_iou"], 2 / 3)
    _close(s["semantic_change_miou"], (2 / 3 + 0.25) / 2)
