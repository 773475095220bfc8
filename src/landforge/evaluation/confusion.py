"""The accumulating confusion matrix: block by block, mergeable across workers, JSON.

:class:`ConfusionMatrix` counts pixels (or rows) of true class ``i`` predicted as ``j``
over any number of blocks; its scores (OA, kappa, mIoU, ...) are the functions of
:mod:`landforge.evaluation.scores` applied to the counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from landforge.evaluation.scores import (
    KIND_METRICS,
    UnknownLabelError,
    cohen_kappa,
    f1_score,
    fwiou,
    iou,
    majority_baseline_matrix,
    mean_iou,
    overall_accuracy,
    ovr_accuracy,
    precision,
    recall,
    summary_metrics,
)

__all__ = ["KIND_CONFUSION", "ConfusionMatrix"]

KIND_CONFUSION = "landforge-confusion/1"
# Values up to this bound are mapped to matrix indices with a lookup table (fast path).
_LUT_MAX = 1 << 20


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
        """Number of classes (rows of the matrix)."""
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
        """An independent copy (counts, classes, ignored values)."""
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
        """JSON-able dict (``landforge-confusion/1``); :meth:`from_dict` reads it back."""
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
        """Overall accuracy (:func:`~landforge.evaluation.scores.overall_accuracy`)."""
        return overall_accuracy(self.matrix)

    def kappa(self) -> float:
        """Cohen's kappa (:func:`~landforge.evaluation.scores.cohen_kappa`)."""
        return cohen_kappa(self.matrix)

    def precision(self) -> np.ndarray:
        """Per-class precision (:func:`~landforge.evaluation.scores.precision`)."""
        return precision(self.matrix)

    def recall(self) -> np.ndarray:
        """Per-class recall (:func:`~landforge.evaluation.scores.recall`)."""
        return recall(self.matrix)

    def f1(self) -> np.ndarray:
        """Per-class F1 (:func:`~landforge.evaluation.scores.f1_score`)."""
        return f1_score(self.matrix)

    def iou(self) -> np.ndarray:
        """Per-class IoU (:func:`~landforge.evaluation.scores.iou`)."""
        return iou(self.matrix)

    def miou(self, classes: Literal["present", "all"] = "present") -> float:
        """Mean IoU (:func:`~landforge.evaluation.scores.mean_iou`)."""
        return mean_iou(self.matrix, classes)

    def fwiou(self) -> float:
        """Frequency-weighted IoU (:func:`~landforge.evaluation.scores.fwiou`)."""
        return fwiou(self.matrix)

    def ovr_accuracy(self) -> np.ndarray:
        """One-vs-rest accuracy per class (:func:`~landforge.evaluation.scores.ovr_accuracy`)."""
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
