"""Label parcels with the majority class of overlapping land-use polygons, by area.

For each parcel: ``coverage`` = labelled area / parcel area, ``label`` = the class with
the largest overlap, ``purity`` = that class's share of the labelled area, ``mixed`` =
purity below ``mixed_threshold``. A parcel covered less than ``min_coverage`` stays
unlabelled (``label`` None, ``purity`` NaN, ``mixed`` False).

Label polygons are dissolved per class first, so overlapping polygons of one class are
not counted twice; overlapping polygons of different classes (common in OSM) can make
the summed overlaps exceed the parcel area, so ``coverage`` is capped at 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from landforge.errors import InputError, OptionError
from landforge.io.vector import require_column, require_crs, to_metric
from landforge.parcels.options import LabelOptions

__all__ = ["label_parcels", "load_label_mapping", "map_labels"]


def load_label_mapping(name: str) -> Any:
    """The taxonomy mapping ``name`` (shipped name or YAML path) for :func:`label_parcels`.

    Raises:
        OptionError: on ``taxonomy`` for an unknown name.
        InputError: a mapping file that cannot be read.
    """
    from landforge.taxonomy import load_mapping

    try:
        return load_mapping(name)
    except OptionError:
        raise
    except InputError as exc:
        if exc.source == "taxonomy":
            raise OptionError("taxonomy", exc.problem) from None
        raise
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise OptionError("taxonomy", f"unknown taxonomy {name!r} ({exc})") from None


def map_labels(values: pd.Series, mapping: Any, col: str = "") -> pd.Series:
    """Map source label values to class codes with a taxonomy mapping (``map_many``).

    OSM mappings match ``key=value`` tags, so for them a bare value ``v`` of column
    ``col`` is looked up as ``col=v`` (``landuse`` + ``residential`` ->
    ``landuse=residential``). Ignored and unknown values become None; unknown ones are
    reported in one warning.
    """
    vals = values
    if getattr(mapping, "is_osm", False):
        vals = values.map(lambda v: f"{col}={v}" if isinstance(v, str) and "=" not in v else v)
    codes, unknown = mapping.map_many(vals)
    if unknown:
        names = sorted(unknown)
        warnings.warn(
            f"{sum(unknown.values())} label polygons with {len(names)} values the mapping "
            f"does not know ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}); "
            "left unlabelled",
            stacklevel=3,
        )
    return pd.Series(codes.to_numpy(), index=values.index, dtype="object")


def label_parcels(
    parcels: gpd.GeoDataFrame,
    labels_gdf: gpd.GeoDataFrame,
    opts: LabelOptions | Mapping[str, Any] | str | None = None,
    *,
    mapping: Any = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Majority land-use class of each parcel by overlap area.

    Args:
        parcels: parcel polygons (any CRS).
        labels_gdf: land-use polygons with the class column ``col`` (any CRS).
        opts: options, see :class:`~landforge.parcels.options.LabelOptions` (``col``,
            ``taxonomy``, ``min_coverage``, ``mixed_threshold``); a string is the class
            column: ``label_parcels(p, landuse, "landuse")``.
        mapping: taxonomy mapping (``.map_many(values)``) applied to ``col`` first;
            default the mapping named by ``taxonomy`` (e.g. ``osm_mslu``), if any.
        **overrides: option fields replacing those of ``opts`` (``min_coverage=0.1``).

    Returns:
        ``parcels`` (same CRS, same rows) with ``label``, ``purity``, ``coverage`` and
        ``mixed`` columns added.

    Raises:
        OptionError: a bad option, e.g. ``col`` missing from ``labels_gdf``.
        InputError: a layer without CRS, or labels that overlap no parcel.
    """
    if isinstance(opts, str):
        opts, overrides = None, {"col": opts, **overrides}
    o = LabelOptions.build(opts, **overrides)
    col, min_coverage, mixed_threshold = o.col, o.min_coverage, o.mixed_threshold
    require_crs(parcels, "parcels")
    require_crs(labels_gdf, "labels")
    require_column(labels_gdf, col, "label layer", option="col")
    if mapping is None and o.taxonomy:
        mapping = load_label_mapping(o.taxonomy)

    metric = to_metric(parcels)
    classes = labels_gdf[col]
    if mapping is not None:
        classes = map_labels(classes, mapping, col)
    labels = gpd.GeoDataFrame(
        {"_cls": classes.to_numpy()}, geometry=labels_gdf.geometry.values, crs=labels_gdf.crs
    ).to_crs(metric.crs)
    lvals = labels.geometry.values
    labels = labels[
        labels["_cls"].notna().to_numpy() & ~shapely.is_missing(lvals) & ~shapely.is_empty(lvals)
    ]
    lg = labels.geometry.values
    lg = np.where(shapely.is_valid(lg), lg, shapely.make_valid(lg))
    # one (multi)polygon per class: overlaps within a class are not counted twice
    cls_codes, cls_index = np.unique(labels["_cls"].astype(str).to_numpy(), return_inverse=True)
    originals = {str(v): v for v in labels["_cls"]}
    dissolved = np.array(
        [shapely.union_all(lg[cls_index == i]) for i in range(len(cls_codes))], dtype=object
    )  # a loop over classes (few), not over polygons

    pg = metric.geometry.values
    parcel_area = shapely.area(pg)
    n = len(metric)
    coverage = np.zeros(n)
    best = np.full(n, -1)
    best_area = np.zeros(n)
    if len(dissolved):
        tree = shapely.STRtree(dissolved)
        pi, ci = tree.query(pg, predicate="intersects")
        areas = shapely.area(shapely.intersection(pg[pi], dissolved[ci]))
        per = pd.DataFrame({"p": pi, "c": ci, "a": areas})
        per = per[per["a"] > 0]
        if per.empty and n:
            raise InputError(
                "labels", "no label polygon overlaps a parcel; check that both cover the same area"
            )
        total = per.groupby("p")["a"].sum()
        top = per.sort_values("a", ascending=False).drop_duplicates("p")
        coverage[total.index.to_numpy()] = total.to_numpy()
        best[top["p"].to_numpy()] = top["c"].to_numpy()
        best_area[top["p"].to_numpy()] = top["a"].to_numpy()
    labelled_area = coverage.copy()
    coverage = np.minimum(
        np.divide(coverage, parcel_area, out=np.zeros(n), where=parcel_area > 0), 1.0
    )
    ok = (best >= 0) & (coverage >= min_coverage) & (coverage > 0)
    purity = np.full(n, np.nan)
    purity[ok] = best_area[ok] / labelled_area[ok]

    out = parcels.copy()
    names = np.array([originals[c] for c in cls_codes] + [None], dtype=object)
    out["label"] = pd.Series(names[np.where(ok, best, -1)], index=out.index, dtype="object")
    out["purity"] = purity
    out["coverage"] = coverage
    out["mixed"] = ok & (purity < mixed_threshold)
    return out
