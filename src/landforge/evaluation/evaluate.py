"""Evaluate a prediction against the truth: class rasters or attribute tables.

Both paths end in one :class:`~landforge.evaluation.metrics.ConfusionMatrix` and the
metrics dictionary of the ``landforge-metrics/1`` schema (docs/dev/CONTRACTS.md).
Rasters are read block by block, so a country-wide map costs one block of memory.
A mask raster and/or the blocks of one split (:mod:`landforge.evaluation.regions`)
restrict the evaluation to held-out pixels or rows; the metrics then record what they
were computed on (``evaluated_on``), and the majority baseline is computed on the same
pixels or rows.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landforge.config import jsonable
from landforge.errors import InputError, OptionError
from landforge.evaluation.confusion import ConfusionMatrix
from landforge.evaluation.options import EvaluateOptions
from landforge.evaluation.regions import load_region, rows_in_region
from landforge.evaluation.scores import UnknownLabelError
from landforge.io.atomic import atomic_path
from landforge.io.raster import check_same_grid, iter_blocks, open_raster, read_grid
from landforge.progress import track

__all__ = [
    "ClassSpec",
    "resolve_classes",
    "evaluate_prediction",
    "evaluate_rasters",
    "evaluate_tables",
    "write_metrics",
]

ClassesArg = str | Sequence[str] | Mapping[int, str] | None

_TABLE_SUFFIXES = {".parquet", ".geoparquet", ".gpkg", ".csv", ".geojson", ".json", ".shp", ".fgb"}


@dataclass
class ClassSpec:
    """Label values, their names, values to ignore and (optionally) colours."""

    labels: list[int] | None
    names: list[str] | None
    ignore: list[int] = field(default_factory=list)
    colormap: dict[int, tuple[int, int, int]] | None = None
    taxonomy: str | None = None

    def matrix(self) -> ConfusionMatrix:
        """An empty confusion matrix for these classes."""
        return ConfusionMatrix(self.labels, self.names, self.ignore)


def resolve_classes(classes: ClassesArg, ignore: Iterable[int] = ()) -> ClassSpec:
    """Turn the ``classes`` argument into label values and names.

    Args:
        classes: ``None`` (classes are the values found in the maps), the name of a
            class system of :mod:`landforge.taxonomy` (its nodata value is ignored), a
            mapping ``{value: name}``, or a sequence of names for the values 0, 1, 2, ...
        ignore: values that mark pixels to leave out (nodata, "unlabelled").

    Raises:
        OptionError: an unknown class system name (field ``taxonomy``).
    """
    ign = sorted({int(v) for v in ignore})
    if classes is None:
        return ClassSpec(None, None, ign)
    if isinstance(classes, str):
        try:
            from landforge.taxonomy import load_classes  # lazy: optional area
        except ImportError:
            raise OptionError(
                "taxonomy", f"class system {classes!r} needs landforge.taxonomy"
            ) from None
        try:
            system = load_classes(classes)
        except OptionError:
            raise
        except InputError as exc:
            if exc.source == "taxonomy":  # an unknown name, not a broken file
                raise OptionError("taxonomy", exc.problem) from None
            raise
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise OptionError("taxonomy", f"unknown class system {classes!r} ({exc})") from None
        values = {int(v): str(n) for v, n in system.label_values().items()}
        nodata = getattr(system, "nodata_value", None)
        if nodata is not None:
            values.pop(int(nodata), None)
            ign = sorted(set(ign) | {int(nodata)})
        for v in ign:
            values.pop(v, None)
        try:
            cmap = {int(k): tuple(int(c) for c in v[:3]) for k, v in system.colormap().items()}
        except Exception:  # colours are a nicety; never fail an evaluation for them
            cmap = None
        return ClassSpec(sorted(values), [values[v] for v in sorted(values)], ign, cmap, classes)
    if isinstance(classes, Mapping):
        values = {int(v): str(n) for v, n in classes.items() if int(v) not in ign}
    else:
        values = {i: str(n) for i, n in enumerate(classes) if i not in ign}
    return ClassSpec(sorted(values), [values[v] for v in sorted(values)], ign)


def evaluate_prediction(
    pred: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    opts: EvaluateOptions | None = None,
    *,
    mask: str | os.PathLike[str] | None = None,
    split_blocks: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    buildings: str | os.PathLike[str] | None = None,
    pred_buildings: str | os.PathLike[str] | None = None,
    building_probs: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate a prediction: tables when ``pred_col``/``truth_col`` are given, else rasters.

    Args:
        pred: predicted class raster, or table.
        truth: truth class raster on the same grid, or table.
        opts: :class:`~landforge.evaluation.options.EvaluateOptions`; ``overrides``
            replace its fields.
        mask: raster on the truth's grid: evaluate only where it is > 0 (table rows:
            by their representative point).
        split_blocks: polygons with a ``split`` column (e.g. a chip store's
            ``split_blocks.gpkg``): evaluate only inside the blocks of ``opts.split``.
        out: optional path of the metrics JSON (written atomically).
        quiet: no progress bar.
        buildings: true building footprints with the use column ``opts.use_col``:
            adds building-level scores under ``buildings``
            (:mod:`landforge.evaluation.buildings`; rasters only).
        pred_buildings: predicted footprints (e.g. ``landforge vectorize`` output),
            matched to ``buildings`` at IoU >= ``opts.match_iou``.
        building_probs: class probabilities on the map's grid (``predict --probs``):
            adds the soft vote over the true footprints (``true_footprints_soft``).
        **overrides: fields of ``opts`` to replace.

    Returns:
        The ``landforge-metrics/1`` dictionary.

    Raises:
        OptionError: a table given without the columns to compare; building options
            with tables or predicted buildings without true ones.
        InputError: see :func:`evaluate_rasters`, :func:`evaluate_tables` and
            :func:`~landforge.evaluation.buildings.evaluate_buildings`.
    """
    o = EvaluateOptions.build(opts, **overrides)
    for name, given in (("pred_buildings", pred_buildings), ("building_probs", building_probs)):
        if given is not None and buildings is None:
            raise OptionError(name, "needs buildings (the true footprints)")
    if o.tables:
        if buildings is not None:
            raise OptionError("buildings", "building-level scores need a predicted class raster")
        return evaluate_tables(pred, truth, opts=o, mask=mask, split_blocks=split_blocks, out=out)
    if is_table_path(pred) or is_table_path(truth):
        raise OptionError("pred_col", "tables need pred_col and truth_col")
    metrics = evaluate_rasters(
        pred,
        truth,
        o,
        mask=mask,
        split_blocks=split_blocks,
        out=None if buildings is not None else out,
        quiet=quiet,
    )
    if buildings is not None:
        from landforge.evaluation.buildings import evaluate_buildings

        region = load_region(mask, split_blocks, o.split)
        spec = resolve_classes(o.class_arg(), o.ignore_values())
        metrics["buildings"] = evaluate_buildings(
            pred,
            buildings,
            use_col=o.use_col,
            labels=spec.labels,
            names=spec.names,
            pred_buildings=pred_buildings,
            probs=building_probs,
            match_iou=o.match_iou,
            region=region,
            band=o.band,
            ignore=spec.ignore,
            block=o.block,
        )
        if out is not None:
            write_metrics(metrics, out)
    return metrics


def evaluate_rasters(
    pred: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    opts: EvaluateOptions | None = None,
    *,
    mask: str | os.PathLike[str] | None = None,
    split_blocks: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Compare a predicted class raster with a truth raster on the same grid.

    Pixels where either raster is nodata, or either value is in ``ignore``, are left out
    (counted in ``n_ignored``; ``n_unpredicted`` counts those with a valid truth).
    With a ``mask`` and/or ``split_blocks`` only the pixels inside them count at all
    (recorded as ``evaluated_on``); blocks are rasterised window by window.

    Args:
        pred: predicted class raster.
        truth: truth class raster on the same grid.
        opts: :class:`~landforge.evaluation.options.EvaluateOptions` (``taxonomy`` or
            ``classes`` naming the classes, see :func:`resolve_classes`; ``ignore``:
            values to leave out in addition to each raster's nodata; ``block``: block
            size of the windowed read; ``band``: 1-based band of both rasters;
            ``split``: the split of ``split_blocks`` to evaluate); ``overrides``
            replace its fields.
        mask: raster on the same grid: evaluate only where it is > 0 (and not nodata).
        split_blocks: polygons with a ``split`` column (any vector format, reprojected
            to the rasters' CRS): evaluate only the pixels whose centre lies in a block
            of ``split``.
        out: optional path of the metrics JSON (written atomically).
        quiet: no progress bar.
        **overrides: fields of ``opts`` to replace.

    Returns:
        The ``landforge-metrics/1`` dictionary (NaN where a ratio is undefined).

    Raises:
        InputError: a missing/unreadable raster, rasters on different grids, values
            outside a given class list (naming the file), a mask on another grid, or
            split blocks without a block of ``split``.
    """
    o = EvaluateOptions.build(opts, **overrides)
    pred, truth = Path(pred), Path(truth)
    band = o.band
    spec = resolve_classes(o.class_arg(), o.ignore_values())
    read_grid(pred, require_crs=False)  # a missing prediction is named first
    grid = read_grid(truth, require_crs=False)
    check_same_grid(grid, pred)
    region = load_region(mask, split_blocks, o.split)
    if region is not None:
        region = region.for_grid(grid)
    n_region = 0
    cm = spec.matrix()
    with contextlib.ExitStack() as files:
        t_src = files.enter_context(open_raster(truth))
        p_src = files.enter_context(open_raster(pred))
        m_src = files.enter_context(region.open_mask()) if region is not None else None
        for src, path in ((t_src, truth), (p_src, pred)):
            if band > src.count:
                raise InputError(path, f"raster has {src.count} band(s), band {band} requested")
        t_nodata, p_nodata = t_src.nodatavals[band - 1], p_src.nodatavals[band - 1]
        windows = list(iter_blocks(grid, o.block))
        for window in track(windows, "evaluating", quiet=quiet):
            inside = None
            if region is not None:
                inside = region.window_mask(grid, window, m_src)
                n_region += int(inside.sum())
                if not inside.any():
                    continue  # nothing of this window is evaluated: not even read
            t = t_src.read(band, window=window)
            p = p_src.read(band, window=window)
            t_ok, p_ok = not_nodata(t, t_nodata), not_nodata(p, p_nodata)
            if inside is not None and not inside.all():
                t, p, t_ok, p_ok = t[inside], p[inside], t_ok[inside], p_ok[inside]
            try:
                cm.update(t, p, t_ok, p_ok)
            except UnknownLabelError as exc:
                raise InputError(truth if exc.where == "truth" else pred, str(exc)) from None
            except ValueError as exc:
                raise InputError(pred, str(exc)) from None
        if spec.colormap is None:
            spec.colormap = _raster_colormap(t_src) or _raster_colormap(p_src)
    metrics = cm.summary(task="segmentation")
    metrics.update(
        prediction=str(pred),
        truth=str(truth),
        taxonomy=spec.taxonomy,
        nodata={"truth": _num(t_nodata), "prediction": _num(p_nodata)},
    )
    if region is not None:
        metrics["evaluated_on"] = region.describe(n_region, "pixels")
    if spec.colormap:
        metrics["colors"] = {
            name: list(spec.colormap[v])
            for name, v in zip(metrics["classes"], metrics["labels"], strict=True)
            if v in spec.colormap
        }
    if out is not None:
        write_metrics(metrics, out)
    return metrics


def not_nodata(a: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels of ``a`` that are not ``nodata`` (a NaN nodata: the pixels that are not NaN)."""
    if nodata is None:
        return np.ones(a.shape, bool)
    if np.isnan(nodata):
        return ~np.isnan(a) if a.dtype.kind == "f" else np.ones(a.shape, bool)
    return a != nodata


def _num(v: float | None) -> float | int | None:
    if v is None or np.isnan(v):
        return None
    return int(v) if float(v).is_integer() else float(v)


def _raster_colormap(src: Any) -> dict[int, tuple[int, int, int]] | None:
    try:
        cmap = src.colormap(1)
    except ValueError:  # no colour table
        return None
    return {int(k): (int(v[0]), int(v[1]), int(v[2])) for k, v in cmap.items()}


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _read_table(path: Path, columns: Sequence[str]) -> Any:
    """A DataFrame/GeoDataFrame from CSV, (Geo)Parquet or a vector file."""
    import pandas as pd

    if not path.exists():
        raise InputError(path, "table does not exist")
    if path.is_dir():
        raise InputError(path, "expected a table file, found a directory")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path)
        elif suffix in {".parquet", ".geoparquet"}:
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            if b"geo" in meta:
                import geopandas as gpd

                df = gpd.read_parquet(path)
            else:
                df = pd.read_parquet(path)
        else:
            from landforge.io.vector import read_vector

            df = read_vector(path, require_crs=False)
    except InputError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"cannot read table ({msg})") from None
    for col in columns:
        if col not in df.columns:
            avail = ", ".join(str(c) for c in df.columns[:20])
            raise InputError(path, f"column {col!r} not found (columns: {avail})")
    return df


def _geometry_keys(df: Any) -> Any | None:
    """WKB of each row's geometry, or None for a table without geometries."""
    import geopandas as gpd

    if not isinstance(df, gpd.GeoDataFrame):
        return None
    try:
        return df.geometry.to_wkb()
    except (AttributeError, ValueError):  # no active geometry column
        return None


def evaluate_tables(
    pred_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    pred_col: str | None = None,
    truth_col: str | None = None,
    opts: EvaluateOptions | None = None,
    *,
    mask: str | os.PathLike[str] | None = None,
    split_blocks: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Compare a predicted attribute with a true attribute of two tables (or one).

    Rows are matched on the ``key`` column when given; otherwise on row order when
    both paths are the same file, on exact geometry equality when both tables have
    geometries, else on row order (the tables must then have the same length). Rows
    with a missing label on either side, or a label in ``ignore``, are left out.

    Labels may be integers (class values) or text (class names). Text labels are
    matched to the names of ``classes`` when given, else sorted and numbered 0, 1, ...

    With a ``mask`` and/or ``split_blocks`` only rows whose representative point lies
    inside them count (each table with geometries is filtered by its own; a table
    without follows the other through ``key`` or row order).

    Args:
        pred_path: table with the predicted labels.
        truth_path: table with the true labels (may be ``pred_path``).
        pred_col: the predicted label column (else that of ``opts``).
        truth_col: the true label column (else that of ``opts``).
        opts: :class:`~landforge.evaluation.options.EvaluateOptions` (``key``,
            ``taxonomy`` or ``classes``, ``ignore``, ``split``); ``overrides`` replace
            its fields.
        mask: raster: only rows whose representative point falls on a pixel > 0.
        split_blocks: polygons with a ``split`` column: only rows whose representative
            point lies in a block of ``split``.
        out: optional path of the metrics JSON (written atomically).
        **overrides: fields of ``opts`` to replace.

    Raises:
        OptionError: no label columns.
        InputError: a missing file or column, duplicate keys, tables that cannot
            be matched, or (with a mask or blocks) tables without geometries.
    """
    columns = {"pred_col": pred_col, "truth_col": truth_col}
    o = EvaluateOptions.build(
        opts, **{k: v for k, v in columns.items() if v is not None}, **overrides
    )
    if not o.tables:
        raise OptionError("pred_col", "tables need pred_col and truth_col")
    pred_col, truth_col, key = str(o.pred_col), str(o.truth_col), o.key
    pred_path, truth_path = Path(pred_path), Path(truth_path)
    same = pred_path.resolve() == truth_path.resolve() if pred_path.exists() else False
    cols_p = [pred_col] + ([key] if key else [])
    cols_t = [truth_col] + ([key] if key else [])
    pdf = _read_table(pred_path, cols_p)
    tdf = pdf if same else _read_table(truth_path, cols_t)
    if same:
        for col in cols_t:
            if col not in tdf.columns:
                raise InputError(truth_path, f"column {col!r} not found")
    region = load_region(mask, split_blocks, o.split)
    if region is not None:
        pdf, tdf = rows_in_region(region, pdf, tdf, pred_path, truth_path, key, same)
    rows = _match_rows(pdf, tdf, pred_path, truth_path, pred_col, truth_col, key, same)
    metrics = _evaluate_labels(
        rows.truth, rows.pred, o.class_arg(), o.ignore_labels(), truth_path, pred_path
    )
    metrics.update(
        prediction=str(pred_path),
        truth=str(truth_path),
        pred_col=pred_col,
        truth_col=truth_col,
        key=key,
        match=rows.match,
        unmatched=rows.unmatched,
    )
    if region is not None:
        metrics["evaluated_on"] = region.describe(len(tdf), "rows")
    if out is not None:
        write_metrics(metrics, out)
    return metrics


@dataclass
class _Rows:
    """Labels of matched rows, how they were matched and how many found no partner."""

    truth: np.ndarray
    pred: np.ndarray
    match: str
    unmatched: dict[str, int]


def _match_rows(
    pdf: Any,
    tdf: Any,
    pred_path: Path,
    truth_path: Path,
    pred_col: str,
    truth_col: str,
    key: str | None,
    same: bool,
) -> _Rows:
    """Pair prediction and truth rows: on ``key``, equal geometries or row order."""
    import pandas as pd

    def unmatched(merged: Any) -> dict[str, int]:
        return {"truth": len(tdf) - len(merged), "prediction": len(pdf) - len(merged)}

    if key:
        for df, path in ((pdf, pred_path), (tdf, truth_path)):
            dup = df[key].duplicated()
            if dup.any():
                raise InputError(
                    path, f"key column {key!r} has duplicate values (e.g. {df[key][dup].iloc[0]!r})"
                )
        merged = tdf[[key, truth_col]].merge(
            pdf[[key, pred_col]], on=key, how="inner", suffixes=("_truth", "_pred")
        )
        t_col = truth_col if truth_col != pred_col else f"{truth_col}_truth"
        p_col = pred_col if truth_col != pred_col else f"{pred_col}_pred"
        return _Rows(
            merged[t_col].to_numpy(), merged[p_col].to_numpy(), f"key {key}", unmatched(merged)
        )
    if not same and _geometry_keys(tdf) is not None and _geometry_keys(pdf) is not None:
        tk = pd.DataFrame({"_g": _geometry_keys(tdf), "_t": tdf[truth_col].to_numpy()})
        pk = pd.DataFrame({"_g": _geometry_keys(pdf), "_p": pdf[pred_col].to_numpy()})
        for df, path in ((tk, truth_path), (pk, pred_path)):
            if df["_g"].duplicated().any():
                raise InputError(path, "duplicate geometries; give a key column to match rows")
        merged = tk.merge(pk, on="_g", how="inner")
        if len(merged) == 0:
            raise InputError(pred_path, "no geometry equals one of the truth; give a key column")
        return _Rows(
            merged["_t"].to_numpy(), merged["_p"].to_numpy(), "geometry", unmatched(merged)
        )
    if len(tdf) != len(pdf):
        raise InputError(
            pred_path,
            f"{len(pdf)} rows but the truth has {len(tdf)}; give a key column to match rows",
        )
    return _Rows(
        tdf[truth_col].to_numpy(),
        pdf[pred_col].to_numpy(),
        "row order",
        {"truth": 0, "prediction": 0},
    )


def _evaluate_labels(
    t_vals: np.ndarray,
    p_vals: np.ndarray,
    classes: ClassesArg,
    ignore: Iterable[int | str],
    truth_path: Path,
    pred_path: Path,
) -> dict[str, Any]:
    import pandas as pd

    ignore = list(ignore)
    present = ~(pd.isna(t_vals) | pd.isna(p_vals))
    t_vals, p_vals = t_vals[present], p_vals[present]
    n_missing = int((~present).sum())
    textual = t_vals.dtype.kind in "OUS" or p_vals.dtype.kind in "OUS"
    if textual:
        t_txt = np.asarray([str(v) for v in t_vals], dtype=object)
        p_txt = np.asarray([str(v) for v in p_vals], dtype=object)
        ign_txt = {str(v) for v in ignore}
        keep = np.array(
            [a not in ign_txt and b not in ign_txt for a, b in zip(t_txt, p_txt, strict=True)], bool
        )
        n_ignored = int((~keep).sum())
        t_txt, p_txt = t_txt[keep], p_txt[keep]
        spec = resolve_classes(classes, [v for v in ignore if isinstance(v, int)])
        if spec.names is None:
            names = sorted(set(t_txt) | set(p_txt))
            labels = list(range(len(names)))
        else:
            names, labels = spec.names, spec.labels or []
        lookup = {n: v for n, v in zip(names, labels, strict=True)}
        for arr, path in ((t_txt, truth_path), (p_txt, pred_path)):
            unknown = sorted(set(arr) - set(lookup))
            if unknown:
                raise InputError(path, f"label(s) {', '.join(unknown[:10])} are not class names")
        cm = ConfusionMatrix(labels, names)
        cm.update(
            np.array([lookup[v] for v in t_txt], np.int64),
            np.array([lookup[v] for v in p_txt], np.int64),
        )
        cm.n_ignored = n_ignored
        out = cm.summary(task="classification")
        out["ignore"] = [str(v) for v in ignore]
    else:
        spec = resolve_classes(classes, [int(v) for v in ignore if _is_int(v)])
        cm = spec.matrix()
        try:
            cm.update(np.asarray(t_vals), np.asarray(p_vals))
        except UnknownLabelError as exc:
            raise InputError(truth_path if exc.where == "truth" else pred_path, str(exc)) from None
        except ValueError as exc:
            raise InputError(pred_path, str(exc)) from None
        out = cm.summary(task="classification")
        out["taxonomy"] = spec.taxonomy
    out["n_missing"] = n_missing
    return out


def _is_int(v: Any) -> bool:
    try:
        int(v)
    except (TypeError, ValueError):
        return False
    return True


def write_metrics(metrics: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a metrics dict as JSON (NaN -> null), atomically."""
    p = Path(path)
    text = json.dumps(jsonable(dict(metrics)), indent=2, allow_nan=False)
    with atomic_path(p) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return p


def is_table_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a table/vector file rather than a raster."""
    return Path(path).suffix.lower() in _TABLE_SUFFIXES
