"""Evaluate a prediction against the truth: class rasters or attribute tables.

Both paths end in one :class:`~landforge.evaluation.metrics.ConfusionMatrix` and the
metrics dictionary of the ``landforge-metrics/1`` schema (docs/dev/CONTRACTS.md).
Rasters are read block by block, so a country-wide map costs one block of memory.
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

from landforge.errors import InputError
from landforge.evaluation.metrics import ConfusionMatrix, UnknownLabelError, to_jsonable
from landforge.io.atomic import atomic_path
from landforge.io.raster import check_same_grid, iter_blocks, open_raster, read_grid
from landforge.progress import track

__all__ = [
    "ClassSpec",
    "resolve_classes",
    "evaluate_rasters",
    "evaluate_tables",
    "evaluate_change_rasters",
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
        return ConfusionMatrix(self.labels, self.names, self.ignore)


def resolve_classes(classes: ClassesArg, ignore: Iterable[int] = ()) -> ClassSpec:
    """Turn the ``classes`` argument into label values and names.

    Args:
        classes: ``None`` (classes are the values found in the maps), the name of a
            class system of :mod:`landforge.taxonomy` (its nodata value is ignored), a
            mapping ``{value: name}``, or a sequence of names for the values 0, 1, 2, ...
        ignore: values that mark pixels to leave out (nodata, "unlabelled").

    Raises:
        InputError: an unknown class system name.
    """
    ign = sorted({int(v) for v in ignore})
    if classes is None:
        return ClassSpec(None, None, ign)
    if isinstance(classes, str):
        try:
            from landforge.taxonomy import load_classes  # lazy: optional area
        except ImportError:
            raise InputError(
                "--taxonomy", f"class system {classes!r} needs landforge.taxonomy"
            ) from None
        try:
            system = load_classes(classes)
        except InputError:
            raise
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise InputError("--taxonomy", f"unknown class system {classes!r} ({exc})") from None
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


def evaluate_rasters(
    pred: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    classes: ClassesArg = None,
    ignore: Iterable[int] = (),
    block: int = 1024,
    band: int = 1,
    out: str | os.PathLike[str] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Compare a predicted class raster with a truth raster on the same grid.

    Pixels where either raster is nodata, or either value is in ``ignore``, are left out
    (counted in ``n_ignored``; ``n_unpredicted`` counts those with a valid truth).

    Args:
        pred: predicted class raster.
        truth: truth class raster on the same grid.
        classes: see :func:`resolve_classes`.
        ignore: values to leave out in addition to each raster's nodata.
        block: block size of the windowed read.
        band: 1-based band of both rasters.
        out: optional path of the metrics JSON (written atomically).
        quiet: no progress bar.

    Returns:
        The ``landforge-metrics/1`` dictionary (NaN where a ratio is undefined).

    Raises:
        InputError: a missing/unreadable raster, rasters on different grids, or values
            outside a given class list (naming the file).
    """
    pred, truth = Path(pred), Path(truth)
    if block < 1:
        raise InputError("--block", "block size must be positive")
    spec = resolve_classes(classes, ignore)
    read_grid(pred, require_crs=False)  # a missing prediction is named first
    grid = read_grid(truth, require_crs=False)
    check_same_grid(grid, pred)
    cm = spec.matrix()
    with open_raster(truth) as t_src, open_raster(pred) as p_src:
        for src, path in ((t_src, truth), (p_src, pred)):
            if band > src.count:
                raise InputError(path, f"raster has {src.count} band(s), band {band} requested")
        t_nodata, p_nodata = t_src.nodatavals[band - 1], p_src.nodatavals[band - 1]
        windows = list(iter_blocks(grid, block))
        for window in track(windows, "evaluating", quiet=quiet):
            t = t_src.read(band, window=window)
            p = p_src.read(band, window=window)
            try:
                cm.update(t, p, _not_nodata(t, t_nodata), _not_nodata(p, p_nodata))
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
    if spec.colormap:
        metrics["colors"] = {
            name: list(spec.colormap[v])
            for name, v in zip(metrics["classes"], metrics["labels"], strict=True)
            if v in spec.colormap
        }
    if out is not None:
        write_metrics(metrics, out)
    return metrics


def _not_nodata(a: np.ndarray, nodata: float | None) -> np.ndarray:
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


def evaluate_change_rasters(
    pred1: str | os.PathLike[str],
    pred2: str | os.PathLike[str],
    truth1: str | os.PathLike[str],
    truth2: str | os.PathLike[str],
    classes: ClassesArg = None,
    ignore: Iterable[int] = (),
    pred_change: str | os.PathLike[str] | None = None,
    block: int = 1024,
    out: str | os.PathLike[str] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Semantic-change metrics of bi-temporal class maps (SECOND protocol and transitions).

    All rasters must share the grid of ``truth1``. Without ``classes`` the class list is
    the union of the values of the two truth maps (read once, block by block). A pixel
    is left out where any map is nodata or holds a value of ``ignore``.

    Args:
        pred1, pred2: predicted class maps at dates 1 and 2.
        truth1, truth2: true class maps at dates 1 and 2.
        classes: see :func:`resolve_classes`.
        ignore: values to leave out.
        pred_change: optional predicted binary change map (non-zero = change); without
            it, change is predicted where ``pred1 != pred2``.
        block: block size of the windowed read.
        out: optional metrics JSON path.
        quiet: no progress bar.

    Returns:
        :meth:`ChangeConfusion.summary` plus the input paths.
    """
    from landforge.evaluation.metrics import ChangeConfusion

    paths = [Path(p) for p in (truth1, truth2, pred1, pred2)]
    if pred_change is not None:
        paths.append(Path(pred_change))
    for p in paths[1:]:
        read_grid(p, require_crs=False)  # missing files are named before grids are compared
    grid = read_grid(paths[0], require_crs=False)
    for p in paths[1:]:
        check_same_grid(grid, p)
    spec = resolve_classes(classes, ignore)
    windows = list(iter_blocks(grid, block))
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(open_raster(p)) for p in paths]
        if spec.labels is None:
            found = ConfusionMatrix(ignore=spec.ignore)
            for w in windows:
                for i, j in ((0, 2), (1, 3)):  # truth and prediction of each date
                    a, b = srcs[i].read(1, window=w), srcs[j].read(1, window=w)
                    found.update(
                        a, b, _not_nodata(a, srcs[i].nodata), _not_nodata(b, srcs[j].nodata)
                    )
            spec.labels = [int(v) for v in found.labels]
        acc = ChangeConfusion(spec.labels, spec.names, spec.ignore)
        for w in track(windows, "evaluating change", quiet=quiet):
            arrays = [src.read(1, window=w) for src in srcs]
            valid = np.ones(arrays[0].shape, bool)
            for a, src in zip(arrays, srcs, strict=True):
                valid &= _not_nodata(a, src.nodata)
            change = arrays[4] != 0 if pred_change is not None else None
            try:
                acc.update(*arrays[:4], pred_change=change, valid=valid)
            except UnknownLabelError as exc:
                where = paths[0] if exc.where == "truth" else paths[2]
                raise InputError(where, str(exc)) from None
    metrics = acc.summary()
    metrics.update(
        predictions=[str(p) for p in paths[2:4]],
        truths=[str(p) for p in paths[:2]],
        pred_change=str(pred_change) if pred_change is not None else None,
    )
    if out is not None:
        write_metrics(metrics, out)
    return metrics


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
    pred_col: str,
    truth_col: str,
    key: str | None = None,
    classes: ClassesArg = None,
    ignore: Iterable[int | str] = (),
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Compare a predicted attribute with a true attribute of two tables (or one).

    Rows are matched on the ``key`` column when given; otherwise on row order when
    both paths are the same file, on exact geometry equality when both tables have
    geometries, else on row order (the tables must then have the same length). Rows
    with a missing label on either side, or a label in ``ignore``, are left out.

    Labels may be integers (class values) or text (class names). Text labels are
    matched to the names of ``classes`` when given, else sorted and numbered 0, 1, ...

    Raises:
        InputError: a missing file or column, duplicate keys, or tables that cannot
            be matched.
    """
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
    match = "row order"
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
        t_vals, p_vals = merged[t_col].to_numpy(), merged[p_col].to_numpy()
        unmatched = {"truth": len(tdf) - len(merged), "prediction": len(pdf) - len(merged)}
        match = f"key {key}"
    elif not same and _geometry_keys(tdf) is not None and _geometry_keys(pdf) is not None:
        import pandas as pd

        tk = pd.DataFrame({"_g": _geometry_keys(tdf), "_t": tdf[truth_col].to_numpy()})
        pk = pd.DataFrame({"_g": _geometry_keys(pdf), "_p": pdf[pred_col].to_numpy()})
        for df, path in ((tk, truth_path), (pk, pred_path)):
            if df["_g"].duplicated().any():
                raise InputError(path, "duplicate geometries; give a --key column to match rows")
        merged = tk.merge(pk, on="_g", how="inner")
        t_vals, p_vals = merged["_t"].to_numpy(), merged["_p"].to_numpy()
        unmatched = {"truth": len(tdf) - len(merged), "prediction": len(pdf) - len(merged)}
        if len(merged) == 0:
            raise InputError(pred_path, "no geometry equals one of the truth; give a --key column")
        match = "geometry"
    else:
        if len(tdf) != len(pdf):
            raise InputError(
                pred_path,
                f"{len(pdf)} rows but the truth has {len(tdf)}; give a --key column to match rows",
            )
        t_vals, p_vals = tdf[truth_col].to_numpy(), pdf[pred_col].to_numpy()
        unmatched = {"truth": 0, "prediction": 0}
    metrics = _evaluate_labels(t_vals, p_vals, classes, ignore, truth_path, pred_path)
    metrics.update(
        prediction=str(pred_path),
        truth=str(truth_path),
        pred_col=pred_col,
        truth_col=truth_col,
        match=match,
        unmatched=unmatched,
    )
    if out is not None:
        write_metrics(metrics, out)
    return metrics


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
    text = json.dumps(to_jsonable(dict(metrics)), indent=2, allow_nan=False)
    with atomic_path(p) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return p


def is_table_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a table/vector file rather than a raster."""
    return Path(path).suffix.lower() in _TABLE_SUFFIXES
