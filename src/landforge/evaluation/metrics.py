"""Accuracy metrics, all derived from one confusion matrix.

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

Change detection (:class:`ChangeConfusion`) follows the SECOND protocol (Yang et al.
2021, "Asymmetric Siamese Networks for Semantic Change Detection in Aerial Images",
IEEE TGRS 60), see its docstring for the exact formulas.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "KIND_METRICS",
    "ConfusionMatrix",
    "ChangeConfusion",
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
    "binary_change_metrics",
    "to_jsonable",
]

KIND_METRICS = "landforge-metrics/1"
KIND_CONFUSION = "landforge-confusion/1"
# Values up to this bound are mapped to matrix indices with a lookup table (fast path).
_LUT_MAX = 1 << 20


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


def _as_matrix(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    m = x.matrix if isinstance(x, ConfusionMatrix) else np.asarray(x)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    return m.astype(np.float64)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def overall_accuracy(x: np.ndarray | ConfusionMatrix) -> float:
    """OA = trace(x) / n; NaN for an empty matrix."""
    m = _as_matrix(x)
    n = m.sum()
    return float(np.trace(m) / n) if n else math.nan


def cohen_kappa(x: np.ndarray | ConfusionMatrix) -> float:
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


def precision(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    """Per-class precision tp_i / c_i (user's accuracy); NaN for never-predicted classes."""
    m = _as_matrix(x)
    return _div(np.diag(m), m.sum(axis=0))


def recall(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    """Per-class recall tp_i / r_i (producer's accuracy); NaN for classes absent in truth."""
    m = _as_matrix(x)
    return _div(np.diag(m), m.sum(axis=1))


def f1_score(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    """Per-class F1 = 2 tp_i / (r_i + c_i); NaN for classes absent in truth and prediction."""
    m = _as_matrix(x)
    return _div(2.0 * np.diag(m), m.sum(axis=1) + m.sum(axis=0))


def iou(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    """Per-class IoU tp_i / (r_i + c_i - tp_i); NaN for classes absent in both maps."""
    m = _as_matrix(x)
    tp = np.diag(m)
    return _div(tp, m.sum(axis=1) + m.sum(axis=0) - tp)


def mean_iou(
    x: np.ndarray | ConfusionMatrix, classes: Literal["present", "all"] = "present"
) -> float:
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


def fwiou(x: np.ndarray | ConfusionMatrix) -> float:
    """Frequency-weighted IoU: sum_i (r_i / n) IoU_i."""
    m = _as_matrix(x)
    n = m.sum()
    if not n:
        return math.nan
    weights = m.sum(axis=1) / n
    # A class with r_i > 0 always has a defined IoU; NaN only where the weight is 0.
    return float(np.sum(weights * np.nan_to_num(iou(m), nan=0.0)))


def ovr_accuracy(x: np.ndarray | ConfusionMatrix) -> np.ndarray:
    """One-vs-rest accuracy per class: (TP_i + TN_i) / n = (n - r_i - c_i + 2 tp_i) / n."""
    m = _as_matrix(x)
    n = m.sum()
    tp = np.diag(m)
    return _div(n - m.sum(axis=1) - m.sum(axis=0) + 2.0 * tp, np.full(tp.shape, n))


def majority_baseline_matrix(x: np.ndarray | ConfusionMatrix) -> tuple[np.ndarray, int]:
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
    x: np.ndarray | ConfusionMatrix,
    names: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    task: str = "segmentation",
) -> dict[str, Any]:
    """The metrics dictionary of the CONTRACTS.md schema (``landforge-metrics/1``).

    Args:
        x: confusion matrix (rows = truth) or a :class:`ConfusionMatrix`.
        names: class names in matrix order (default: those of ``x`` or the indices).
        labels: label values in matrix order (default: those of ``x`` or the indices).
        task: free text saying what was evaluated.

    Returns:
        A JSON-ready dict (NaN kept as float NaN; :func:`to_jsonable` turns it into null).
    """
    if isinstance(x, ConfusionMatrix):
        names = list(names) if names is not None else x.names
        labels = list(labels) if labels is not None else [int(v) for v in x.labels]
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


def to_jsonable(obj: Any) -> Any:
    """Replace NaN/inf floats by None and numpy scalars by Python ones, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


# --------------------------------------------------------------------------------------
# Accumulating confusion matrix
# --------------------------------------------------------------------------------------


class ConfusionMatrix:
    """A confusion matrix accumulated block by block, mergeable across workers.

    Rows are true classes, columns predicted classes, both in the order of ``labels``
    (the integer values of the class maps). With ``labels=None`` the class list grows as
    new values are seen; with a fixed list, a value outside it raises
    :class:`UnknownLabelError`.

    Pixels where the truth *or* the prediction equals one of ``ignore`` (nodata, or an
    "unlabelled" value) are left out; they are counted in :attr:`n_ignored`, and those
    with a valid truth but an ignored prediction also in :attr:`n_unpredicted`, so a map
    with holes does not silently look better.

    Example:
        >>> cm = ConfusionMatrix(labels=[1, 2, 3], ignore=[0])
        >>> for t, p in blocks:  # doctest: +SKIP
        ...     cm.update(t, p)
        >>> cm.summary()["miou"]  # doctest: +SKIP
    """

    def __init__(
        self,
        labels: Iterable[int] | None = None,
        names: Sequence[str] | None = None,
        ignore: Iterable[int] = (),
    ) -> None:
        if names is not None and labels is None:
            raise ValueError("class names need their label values (labels=...)")
        self.fixed = labels is not None
        lab = np.asarray(sorted({int(v) for v in labels}) if labels is not None else [], np.int64)
        if labels is not None and names is not None:
            # keep the caller's name order aligned with sorted labels
            given = [int(v) for v in labels]
            if len(given) != len(names):
                raise ValueError(f"{len(names)} names for {len(given)} labels")
            by_value = dict(zip(given, names, strict=True))
            names = [by_value[int(v)] for v in lab]
        self.labels: np.ndarray = lab
        self._names: list[str] | None = list(names) if names is not None else None
        self.ignore: tuple[int, ...] = tuple(sorted({int(v) for v in ignore}))
        if set(self.ignore) & set(int(v) for v in lab):
            raise ValueError(f"ignored values {self.ignore} overlap the class labels")
        self.matrix: np.ndarray = np.zeros((lab.size, lab.size), np.int64)
        self.n_ignored = 0
        self.n_unpredicted = 0

    # ---- properties ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Class names in matrix order (the label values as text when none were given)."""
        if self._names is not None:
            return list(self._names)
        return [str(int(v)) for v in self.labels]

    @property
    def n_classes(self) -> int:
        return int(self.labels.size)

    @property
    def total(self) -> int:
        """Number of counted (non-ignored) pixels."""
        return int(self.matrix.sum())

    def __repr__(self) -> str:
        return f"ConfusionMatrix(labels={self.labels.tolist()}, n={self.total})"

    # ---- accumulation ----------------------------------------------------------------
    def update(
        self,
        truth: np.ndarray,
        pred: np.ndarray,
        valid: np.ndarray | None = None,
        pred_valid: np.ndarray | None = None,
    ) -> ConfusionMatrix:
        """Add the pixels of one block.

        Args:
            truth: true class values, any shape.
            pred: predicted class values, same shape.
            valid: optional boolean mask of pixels with a valid truth (e.g. not nodata).
            pred_valid: optional boolean mask of pixels with a valid prediction; a pixel
                with a valid truth but no valid prediction is counted in
                :attr:`n_unpredicted`.

        Returns:
            ``self`` (for chaining).

        Raises:
            UnknownLabelError: a value outside a fixed class list.
        """
        t = np.asarray(truth).ravel()
        p = np.asarray(pred).ravel()
        if t.shape != p.shape:
            raise ValueError(f"truth has {t.size} values, prediction {p.size}")
        t_ok = np.ones(t.shape, bool) if valid is None else np.array(valid, bool).ravel()
        if t_ok.shape != t.shape:
            raise ValueError("valid mask does not match the maps")
        if t.dtype.kind == "f":
            t_ok &= np.isfinite(t)
        for v in self.ignore:
            t_ok &= t != v
        keep = t_ok.copy()
        if pred_valid is not None:
            keep &= np.asarray(pred_valid, bool).ravel()
        if p.dtype.kind == "f":
            keep &= np.isfinite(p)
        for v in self.ignore:
            keep &= p != v
        n_keep, n_t_ok = int(keep.sum()), int(t_ok.sum())
        self.n_ignored += t.size - n_keep
        self.n_unpredicted += n_t_ok - n_keep
        if not keep.all():
            t, p = t[keep], p[keep]
        if t.size == 0:
            return self
        if t.dtype.kind == "b" or t.dtype == np.uint64:
            t = t.astype(np.int64)
        if p.dtype.kind == "b" or p.dtype == np.uint64:
            p = p.astype(np.int64)
        if t.dtype.kind not in "iu" or p.dtype.kind not in "iu":
            ti, pi = t.astype(np.int64), p.astype(np.int64)
            if np.any(ti != t) or np.any(pi != p):
                raise ValueError("class maps must hold integer values")
            t, p = ti, pi
        ti, pi = self._indices(t, p)
        k = self.n_classes
        flat = ti.astype(np.int64) * k + pi
        self.matrix += np.bincount(flat, minlength=k * k).reshape(k, k)
        return self

    def _indices(self, t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map values to matrix indices, growing the class list when it is not fixed."""
        lo = min(int(t.min()), int(p.min()))
        hi = max(int(t.max()), int(p.max()))
        if lo >= 0 and hi < _LUT_MAX:
            if not self.fixed:
                seen = np.flatnonzero(
                    np.bincount(t, minlength=hi + 1) + np.bincount(p, minlength=hi + 1)
                )
                self._grow(seen)
            lut = np.full(hi + 1, -1, np.int64)
            inside = self.labels[self.labels <= hi]
            lut[inside] = np.searchsorted(self.labels, inside)
            ti, pi = lut[t], lut[p]
        else:
            if not self.fixed:
                self._grow(np.union1d(np.unique(t), np.unique(p)))
            ti = self._search(t)
            pi = self._search(p)
        for idx, arr, where in ((ti, t, "truth"), (pi, p, "pred")):
            bad = idx < 0
            if bad.any():
                raise UnknownLabelError(where, np.unique(arr[bad]).tolist(), self.labels.tolist())
        return ti, pi

    def _search(self, values: np.ndarray) -> np.ndarray:
        if self.labels.size == 0:
            return np.full(values.shape, -1, np.int64)
        pos = np.clip(np.searchsorted(self.labels, values), 0, self.labels.size - 1)
        return np.where(self.labels[pos] == values, pos, -1)

    def _grow(self, values: np.ndarray) -> None:
        new = np.setdiff1d(np.asarray(values, np.int64), self.labels)
        new = new[~np.isin(new, self.ignore)]
        if new.size:
            self._reindex(np.union1d(self.labels, new))

    def _reindex(self, labels: np.ndarray, names: Sequence[str] | None = None) -> None:
        """Embed the matrix into a larger sorted label list."""
        old_pos = np.searchsorted(labels, self.labels)
        mat = np.zeros((labels.size, labels.size), np.int64)
        mat[np.ix_(old_pos, old_pos)] = self.matrix
        if self._names is not None or names is not None:
            by_value = {int(v): str(int(v)) for v in labels}
            if names is not None:
                by_value.update(zip((int(v) for v in labels), names, strict=True))
            if self._names is not None:
                by_value.update(zip((int(v) for v in self.labels), self._names, strict=True))
            self._names = [by_value[int(v)] for v in labels]
        self.labels = labels
        self.matrix = mat

    # ---- merging ---------------------------------------------------------------------
    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """A new matrix holding the counts of both (class lists are united)."""
        if self.ignore != other.ignore:
            raise ValueError(f"cannot merge: ignore {self.ignore} != {other.ignore}")
        out = self.copy()
        out.fixed = self.fixed and other.fixed
        if other._names is not None and self._names is not None:
            mine = dict(zip(self.labels.tolist(), self._names, strict=True))
            for v, name in zip(other.labels.tolist(), other._names, strict=True):
                if v in mine and mine[v] != name:
                    raise ValueError(f"cannot merge: class {v} is {mine[v]!r} and {name!r}")
        labels = np.union1d(self.labels, other.labels)
        if labels.size != self.labels.size:
            names = None
            if other._names is not None:
                other_names = dict(zip(other.labels.tolist(), other._names, strict=True))
                names = [other_names.get(int(v), str(int(v))) for v in labels]
            out._reindex(labels, names)
        pos = np.searchsorted(out.labels, other.labels)
        out.matrix[np.ix_(pos, pos)] += other.matrix
        if out._names is None and other._names is not None:
            out._names = list(other.names) if np.array_equal(out.labels, other.labels) else None
        out.n_ignored = self.n_ignored + other.n_ignored
        out.n_unpredicted = self.n_unpredicted + other.n_unpredicted
        return out

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.merge(other)

    def __radd__(self, other: Any) -> ConfusionMatrix:
        if other == 0:  # sum([...]) starts from 0
            return self.copy()
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return (
            np.array_equal(self.labels, other.labels)
            and np.array_equal(self.matrix, other.matrix)
            and self.names == other.names
            and self.ignore == other.ignore
        )

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> ConfusionMatrix:
        out = ConfusionMatrix.__new__(ConfusionMatrix)
        out.fixed = self.fixed
        out.labels = self.labels.copy()
        out._names = list(self._names) if self._names is not None else None
        out.ignore = self.ignore
        out.matrix = self.matrix.copy()
        out.n_ignored = self.n_ignored
        out.n_unpredicted = self.n_unpredicted
        return out

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND_CONFUSION,
            "labels": self.labels.tolist(),
            "names": self.names,
            "ignore": list(self.ignore),
            "fixed": self.fixed,
            "matrix": self.matrix.tolist(),
            "n_ignored": self.n_ignored,
            "n_unpredicted": self.n_unpredicted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfusionMatrix:
        """Rebuild from :meth:`to_dict` output or from a metrics JSON dict."""
        if data.get("kind") == KIND_METRICS:
            labels = data.get("labels") or list(range(len(data["classes"])))
            ignore = [v for v in data.get("ignore") or () if isinstance(v, int)]
            cm = cls(labels, data["classes"], ignore)
            order = np.argsort(np.asarray(labels))
            mat = np.asarray(data["confusion_matrix"], np.int64)
            cm.matrix = mat[np.ix_(order, order)]
            return cm
        if data.get("kind") != KIND_CONFUSION:
            raise ValueError(f"not a confusion matrix dict (kind={data.get('kind')!r})")
        cm = cls(data["labels"], data.get("names"), data.get("ignore", ()))
        cm.fixed = bool(data.get("fixed", True))
        mat = np.asarray(data["matrix"], np.int64).reshape(cm.n_classes, cm.n_classes)
        order = np.argsort(np.asarray(data["labels"]))
        cm.matrix = mat[np.ix_(order, order)]
        cm.n_ignored = int(data.get("n_ignored", 0))
        cm.n_unpredicted = int(data.get("n_unpredicted", 0))
        return cm

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict())
        if path is not None:
            from landforge.io.atomic import atomic_path

            with atomic_path(path) as tmp:
                Path(tmp).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> ConfusionMatrix:
        """From JSON text or a JSON file path."""
        s = os.fspath(text_or_path)
        if not s.lstrip().startswith("{"):
            s = Path(s).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(s))

    # ---- metrics ---------------------------------------------------------------------
    def overall_accuracy(self) -> float:
        return overall_accuracy(self.matrix)

    def kappa(self) -> float:
        return cohen_kappa(self.matrix)

    def precision(self) -> np.ndarray:
        return precision(self.matrix)

    def recall(self) -> np.ndarray:
        return recall(self.matrix)

    def f1(self) -> np.ndarray:
        return f1_score(self.matrix)

    def iou(self) -> np.ndarray:
        return iou(self.matrix)

    def miou(self, classes: Literal["present", "all"] = "present") -> float:
        return mean_iou(self.matrix, classes)

    def fwiou(self) -> float:
        return fwiou(self.matrix)

    def ovr_accuracy(self) -> np.ndarray:
        return ovr_accuracy(self.matrix)

    def baseline(self) -> ConfusionMatrix:
        """The matrix of the majority-class baseline (same classes)."""
        out = self.copy()
        out.matrix = majority_baseline_matrix(self.matrix)[0].astype(np.int64)
        return out

    def summary(self, task: str = "segmentation") -> dict[str, Any]:
        """Metrics dict per the ``landforge-metrics/1`` schema."""
        out = summary_metrics(self, task=task)
        out["ignore"] = list(self.ignore)
        out["n_ignored"] = self.n_ignored
        out["n_unpredicted"] = self.n_unpredicted
        return out


# --------------------------------------------------------------------------------------
# Change detection
# --------------------------------------------------------------------------------------


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
        if not np.array_equal(self.labels, other.labels) or self.ignore != other.ignore:
            raise ValueError("cannot merge change matrices with different classes or ignore")
        out = ChangeConfusion(self.labels, self.names, self.ignore)
        out.second = self.second + other.second
        out.transitions = self.transitions + other.transitions
        out.binary = self.binary + other.binary
        return out

    __add__ = merge

    def transition_names(self) -> list[str]:
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
