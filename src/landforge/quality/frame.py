"""Grade a parcels table: read and check the inputs, grade, build the tables, write them.

The input is either the predictions of ``landforge parcels predict-classes`` (GeoParquet,
one row per parcel: ``parcel_id``, geometry, ``label``, ``pred``, ``prob_<class>``
summing to 1, ``has_image``/``has_poi``/``has_population``, ``area_m2``) or any labelled
parcels with a feature table (``landforge parcels features``) joined by id, on which the
models are trained here (scikit-learn, :mod:`landforge.quality.models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from landforge.errors import InputError, OptionError
from landforge.evaluation.table_report import KIND_TABLES
from landforge.quality.grading import Grading, grade
from landforge.quality.levels import manual_flags, prior_levels
from landforge.quality.models import ModelFactory, block_folds, out_of_fold_proba
from landforge.quality.options import GradeOptions
from landforge.quality.tables import (
    accuracy_by_level,
    level_class_table,
    size_table,
    train_by_level,
)

__all__ = ["GradeInput", "GradeOutput", "grade_parcels", "prepare_input"]

_NOT_FEATURES = ("label", "pred", "split", "source", "city")


@dataclass
class GradeInput:
    """A parcels table checked and turned into arrays."""

    parcels: gpd.GeoDataFrame
    classes: list[str]
    labels: np.ndarray
    probs: np.ndarray | None
    features: np.ndarray | None
    feature_names: list[str]
    prior: np.ndarray
    area_m2: np.ndarray
    pred: np.ndarray | None
    purity: np.ndarray | None


@dataclass
class GradeOutput:
    """The graded parcels and the tables."""

    parcels: gpd.GeoDataFrame
    grading: Grading
    tables: dict[str, Any]
    heldout_pred: np.ndarray | None


def _bool_col(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    s = df[col]
    if s.dtype == bool:
        return s.to_numpy()
    vals = s.where(s.notna(), False)
    text = vals.astype(str).str.strip().str.lower()
    ok = text.isin(["true", "false", "1", "0", "1.0", "0.0"])
    if not ok.all():
        raise InputError(source, f"column {col!r} is not boolean (e.g. {text[~ok].iloc[0]!r})")
    return text.isin(["true", "1", "1.0"]).to_numpy()


def prepare_input(
    parcels: gpd.GeoDataFrame,
    features: pd.DataFrame | None,
    opts: GradeOptions,
    source: str = "parcels",
    features_source: str = "features",
) -> GradeInput:
    """Check a parcels table (and its feature table) and turn it into arrays.

    Raises:
        InputError: no CRS, no id column (or duplicate ids), no label column, a label
            without a ``prob_<class>`` column, probabilities that do not sum to 1,
            parcels missing from the feature table, unknown manual flags.
        OptionError: a configured column (manual, purity, gold, group) that is missing.
    """
    o = opts
    if parcels.crs is None:
        raise InputError(source, "layer has no CRS; set one (e.g. with ogr2ogr -a_srs) and retry")
    have = ", ".join(str(c) for c in parcels.columns if c != parcels.geometry.name)
    if o.id_col not in parcels.columns:
        raise InputError(source, f"no id column {o.id_col!r} (it has: {have}); see --id-col")
    if parcels[o.id_col].isna().any() or parcels[o.id_col].duplicated().any():
        raise InputError(source, f"id column {o.id_col!r} has missing or repeated values")
    if o.label_col not in parcels.columns:
        raise InputError(source, f"no label column {o.label_col!r} (it has: {have})")
    for name in ("manual_col", "purity_col", "gold_col", "group_col"):
        col = getattr(o, name)
        if col is not None and col not in parcels.columns:
            raise OptionError(name, f"{source} has no column {col!r} (it has: {have})")
    parcels = parcels.reset_index(drop=True)
    lab = parcels[o.label_col]
    lab_text = pd.Series([None if pd.isna(v) else str(v) for v in lab], dtype=object)
    prob_cols = [c for c in parcels.columns if str(c).startswith("prob_")]
    if prob_cols:
        classes = [str(c)[5:] for c in prob_cols]
    else:
        classes = sorted({str(v) for v in lab_text.dropna()})
    if not classes:
        raise InputError(source, f"no labels in column {o.label_col!r}")
    code = {c: i for i, c in enumerate(classes)}
    labels = np.array([-1 if v is None else code.get(v, -2) for v in lab_text], np.int64)
    if (labels == -2).any():
        bad = sorted({str(v) for v in lab_text.dropna() if str(v) not in code})
        raise InputError(
            source, f"label(s) {', '.join(bad[:5])} have no prob_ column ({len(classes)} classes: "
            f"{', '.join(classes)})"
        )  # fmt: skip
    probs = None
    if prob_cols:
        from landforge.quality.levels import check_probabilities

        probs = check_probabilities(
            parcels[prob_cols].to_numpy(dtype=np.float64), len(classes), source
        )
    pred = None
    if "pred" in parcels.columns:
        pred = np.array([code.get(str(v), -1) for v in parcels["pred"]], dtype=np.int64)
    feats, names = _features(parcels, features, o, features_source)

    missing = labels < 0
    for mod in o.required():
        if mod == "label":
            continue
        col = f"has_{mod}"
        if col in parcels.columns:
            missing |= ~_bool_col(parcels, col, source)
        elif mod == "poi" and feats is not None and "n_pois" in names:
            missing |= feats[:, names.index("n_pois")] <= 0
        else:
            raise OptionError(
                "require", f"{source} has no column {col!r} to tell which parcels lack {mod}"
            )
    if "area_m2" in parcels.columns:
        area = parcels["area_m2"].to_numpy(dtype=np.float64)
    else:
        from landforge.io.vector import to_metric

        area = to_metric(parcels).geometry.area.to_numpy()
    cannot = np.zeros(len(parcels), bool)
    poor = np.zeros(len(parcels), bool)
    if o.manual_col is not None:
        flags = manual_flags(parcels[o.manual_col], f"{source}: column {o.manual_col!r}")
        cannot |= flags == "cannot_judge"
        poor |= flags == "poor"
    if o.max_area_m2 is not None:
        cannot |= area > o.max_area_m2
    prior = prior_levels(len(parcels), missing=missing, cannot_judge=cannot, poor=poor)
    purity = None
    if o.purity_col is not None:
        purity = pd.to_numeric(parcels[o.purity_col], errors="coerce").to_numpy(np.float64)
    return GradeInput(parcels, classes, labels, probs, feats, names, prior, area, pred, purity)


def _features(
    parcels: gpd.GeoDataFrame, features: pd.DataFrame | None, o: GradeOptions, source: str
) -> tuple[np.ndarray | None, list[str]]:
    if features is None:
        return None, []
    if o.id_col not in features.columns:
        raise InputError(source, f"no id column {o.id_col!r} to join the parcels on")
    f = features.drop_duplicates(o.id_col).set_index(o.id_col)
    f = f.drop(columns=[c for c in f.columns if c == "geometry"], errors="ignore")
    names = [
        str(c) for c in f.columns
        if pd.api.types.is_numeric_dtype(f[c]) and not str(c).startswith(("prob_", "has_"))
        and str(c) not in _NOT_FEATURES
    ]  # fmt: skip
    if not names:
        raise InputError(source, "no numeric feature columns")
    ids = parcels[o.id_col]
    absent = ~ids.isin(f.index)
    if absent.any():
        raise InputError(
            source, f"{int(absent.sum())} of {len(ids)} parcels have no row (e.g. id "
            f"{ids[absent].iloc[0]!r}); make the features from the same parcels"
        )  # fmt: skip
    return f.loc[ids.to_numpy(), names].to_numpy(dtype=np.float64), names


def grade_parcels(
    parcels: gpd.GeoDataFrame,
    features: pd.DataFrame | None = None,
    opts: GradeOptions | None = None,
    *,
    source: str = "parcels",
    features_source: str = "features",
    make_model: ModelFactory | None = None,
    **overrides: Any,
) -> GradeOutput:
    """Grade parcels and build the tables (levels x class, train by level, size, accuracy).

    Args:
        parcels: predictions (``prob_<class>``) or labelled parcels.
        features: feature table keyed by ``id_col`` (needed by the cascade, the train-by-
            level table and held-out predictions when ``parcels`` has no ``pred``).
        opts: :class:`~landforge.quality.options.GradeOptions` (or keywords).
        source: name of the parcels in errors.
        features_source: name of the feature table in errors.
        make_model: classifier factory (default scikit-learn by name).
        **overrides: fields of ``opts``.

    Returns:
        :class:`GradeOutput`: parcels with ``level`` and ``level_score`` (and
        ``heldout_pred``, ``correct`` where held-out predictions exist), the grading and
        the tables (JSON-able).
    """
    from landforge.datasets.splits import block_split, feature_blocks

    o = GradeOptions.build(opts, **overrides)
    if parcels.crs is None:  # a file problem first, then what the method needs
        raise InputError(source, "layer has no CRS; set one (e.g. with ogr2ogr -a_srs) and retry")
    # what the method needs is checked first: it is the user's first mistake to fix
    if o.method == "cascade" and features is None:
        raise OptionError("method", "the cascade trains tier models: give a feature table")
    if features is None and not any(str(c).startswith("prob_") for c in parcels.columns):
        raise OptionError("method", f"{o.method} needs prob_<class> columns or a feature table")
    gi = prepare_input(parcels, features, o, source, features_source)
    k = len(gi.classes)
    blocks = feature_blocks(gi.parcels, o.block_size_m).to_numpy()
    # the fusion model's probabilities grade softprob/cleanlab; features train the rest
    use_probs = gi.probs if o.method != "cascade" else None
    g = grade(
        gi.labels, use_probs, gi.features, o, n_classes=k, prior=gi.prior, groups=blocks,
        purity=gi.purity, make_model=make_model,
    )  # fmt: skip
    # held-out predictions: given (pred), else cross-fitted on spatial blocks here
    heldout = gi.pred
    if heldout is None and gi.features is not None:
        has = gi.labels >= 0
        heldout = np.full(len(gi.labels), -1, dtype=np.int64)
        fold = block_folds(blocks[has], o.folds, o.seed)
        p = out_of_fold_proba(
            gi.features[has], gi.labels[has], k, fold, o.tier_models[-1], o.seed, make_model
        )
        heldout[has] = np.argmax(p, axis=1)
    out = gi.parcels.copy()
    out["level"] = g.levels.astype(np.int8)
    out["level_score"] = g.score
    tables: dict[str, Any] = {
        "kind": KIND_TABLES,
        "title": f"Dataset quality levels ({o.method})",
        "classes": gi.classes,
        "options": o.model_dump(mode="json"),
        "summary": {
            "parcels": len(out),
            "labelled": int((gi.labels >= 0).sum()),
            "levels": {str(v): int((g.levels == v).sum()) for v in range(6)},
            **{k2: v for k2, v in g.info.items() if k2 != "method"},
        },
        "tables": [
            _table("levels_by_class", "Samples per level and class (count, row %)",
                   level_class_table(g.levels, gi.labels, gi.classes)),
        ],
    }  # fmt: skip
    if heldout is not None:
        names = np.array([*gi.classes, ""], dtype=object)
        out["heldout_pred"] = names[heldout]
        out["correct"] = pd.array(
            np.where(heldout >= 0, heldout == gi.labels, False), dtype="boolean"
        )
        out.loc[(heldout < 0) | (gi.labels < 0), "correct"] = pd.NA
        tables["tables"].append(
            _table("accuracy_by_level", "Held-out predictions vs labels, per level",
                   accuracy_by_level(g.levels, gi.labels, heldout, k))
        )  # fmt: skip
        groups = None if o.group_col is None else out[o.group_col].astype(str).to_numpy()
        tables["tables"].append(
            _table("accuracy_by_size", "Held-out accuracy of small and large parcels",
                   size_table(gi.labels, heldout, gi.area_m2, k, small_m2=o.small_m2,
                              large_m2=o.large_m2, groups=groups))
        )  # fmt: skip
    if gi.features is not None:
        if o.gold_col is not None:
            gold = _bool_col(gi.parcels, o.gold_col, source)
        else:
            strata = gi.parcels[[o.label_col, gi.parcels.geometry.name]].copy()
            strata[o.label_col] = strata[o.label_col].astype(object)
            split = block_split(
                gpd.GeoDataFrame(strata, geometry=gi.parcels.geometry.name, crs=gi.parcels.crs),
                ratios={"train": 1 - o.gold_share, "gold": o.gold_share},
                block_size_m=o.block_size_m, strata_col=o.label_col, seed=o.seed,
            )  # fmt: skip
            gold = (split == "gold").to_numpy()
        rows = train_by_level(
            gi.features, gi.labels, g.levels, gold, k, model=o.tier_models[-1],
            seeds=(o.seed,), make_model=make_model,
        )  # fmt: skip
        tables["tables"].append(
            _table("train_by_level", "Train on one level, test on the gold set", rows)
        )
        tables["summary"]["gold"] = "column " + o.gold_col if o.gold_col else "spatial blocks"
    return GradeOutput(out, g, tables, heldout)


def _table(name: str, title: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "title": title, "rows": rows}
