"""POI features per parcel: category counts, density, mean and TF-IDF-weighted embeddings.

For parcel p with ``c_pk`` POIs of category k (POIs *within* the parcel; a POI on a
shared edge belongs to neither):

* ``n_<category>`` = c_pk, ``n_pois`` = sum_k c_pk (all POIs, embedded or not),
  ``poi_density_ha`` = n_pois / area in hectares (area in a metric CRS);
* ``emb_mean_i`` = sum_k c_pk v_ki / sum_k c_pk over categories with a vector v_k;
* ``emb_tfidf_i`` = sum_k c_pk idf_k v_ki / sum_k c_pk idf_k, with TF = the count and the
  smoothed IDF of scikit-learn, ``idf_k = ln((1 + N) / (1 + df_k)) + 1``, where N is the
  number of parcels and df_k the number of parcels with at least one POI of category k
  (MSLU, Huang et al. 2022, weights POI categories by TF-IDF before averaging).

Parcels without POIs get zero counts, zero vectors and ``n_pois = 0``. IDF is computed over
the parcels passed in (no labels are used); pass ``idf=`` to reuse the IDF of another set
(e.g. training parcels) so train and test features are on the same footing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from landforge.errors import InputError, OptionError
from landforge.features.options import ParcelFeatureOptions
from landforge.io.vector import to_metric

__all__ = ["ParcelFeatureOptions", "idf_weights", "parcel_poi_features"]


def _embedding_frame(embeddings: Any) -> pd.DataFrame | None:
    if embeddings is None:
        return None
    emb = getattr(embeddings, "embeddings_", embeddings)
    if not isinstance(emb, pd.DataFrame):
        raise InputError("embeddings", "expected a POIEmbedder or a DataFrame of vectors")
    if "category" in emb.columns:
        emb = emb.set_index("category")
    emb = emb.copy()
    emb.index = emb.index.astype(str)
    return emb


def idf_weights(counts: np.ndarray) -> np.ndarray:
    """Smoothed IDF per column of a (parcels, categories) count matrix."""
    counts = np.asarray(counts)
    n = counts.shape[0]
    df = (counts > 0).sum(axis=0)
    return np.log((1.0 + n) / (1.0 + df)) + 1.0


def parcel_poi_features(
    parcels: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    embeddings: Any = None,
    opts: ParcelFeatureOptions | None = None,
    *,
    idf: Mapping[str, float] | pd.Series | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """POI counts, density and (TF-IDF-weighted) mean category embedding per parcel.

    Args:
        parcels: parcel polygons with a CRS.
        pois: POI points with a CRS and the category column; reprojected to the
            parcels' CRS.
        embeddings: a fitted :class:`~landforge.features.poi_embed.POIEmbedder` or a
            DataFrame indexed by category (or with a ``category`` column) of vectors;
            None for counts and density only.
        opts: :class:`~landforge.features.options.ParcelFeatureOptions`:
            ``category_col`` (POI category column), ``categories`` (categories that get
            an ``n_<category>`` column, in this order; default the embedding vocabulary,
            or the categories seen when there is no embedding: fix it to get the same
            columns for two cities), ``id_col`` (parcel id column copied to the output
            when present).
        idf: IDF per category to use instead of computing it over ``parcels``.
        **overrides: fields of ``opts`` (e.g. ``category_col="kind"``).

    Returns:
        DataFrame indexed like ``parcels``: ``id_col`` (if present), ``n_pois``,
        ``poi_density_ha``, ``n_<category>`` ..., and with embeddings ``emb_mean_*`` and
        ``emb_tfidf_*``.

    Raises:
        InputError: a layer without CRS.
        OptionError: a missing category column, duplicate ``categories``.
    """
    o = ParcelFeatureOptions.build(opts, **overrides)
    category_col, categories, id_col = o.category_col, o.categories, o.id_col
    if parcels.crs is None:
        raise InputError("parcels", "parcel layer has no CRS")
    if pois.crs is None:
        raise InputError("pois", "POI layer has no CRS")
    if category_col not in pois.columns:
        have = ", ".join(str(c) for c in pois.columns if c != pois.geometry.name)
        raise OptionError("category_col", f"POIs have no column {category_col!r} ({have})")
    emb = _embedding_frame(embeddings)

    pois = pois[pois[category_col].notna().to_numpy()]
    pts = gpd.GeoDataFrame(
        {"_cat": pois[category_col].astype(str).to_numpy()},
        geometry=shapely.point_on_surface(pois.geometry.values),
        crs=pois.crs,
    ).to_crs(parcels.crs)
    polys = gpd.GeoDataFrame(
        {"_pos": np.arange(len(parcels))}, geometry=parcels.geometry.values, crs=parcels.crs
    )
    joined = gpd.sjoin(pts, polys, how="inner", predicate="within")

    if categories is None:
        categories = list(emb.index) if emb is not None else sorted(set(joined["_cat"]))
    cats = pd.Index([str(c) for c in categories])
    if cats.has_duplicates:
        raise OptionError("categories", "duplicate categories")
    n = len(parcels)
    col = cats.get_indexer(joined["_cat"].to_numpy())
    row = joined["_pos"].to_numpy()
    counts = np.zeros((n, len(cats)), dtype=np.int64)
    np.add.at(counts, (row[col >= 0], col[col >= 0]), 1)
    n_pois = np.bincount(row, minlength=n)

    area_m2 = shapely.area(to_metric(parcels).geometry.values)
    rng = pd.RangeIndex(n)  # positions: a duplicated parcel index must not break concat
    out = pd.DataFrame(index=rng)
    if id_col in parcels.columns:
        out[id_col] = parcels[id_col].to_numpy()
    out["n_pois"] = n_pois
    out["poi_density_ha"] = np.divide(n_pois, area_m2 / 1e4, out=np.zeros(n), where=area_m2 > 0)
    count_cols = pd.DataFrame(counts, index=rng, columns=[f"n_{c}" for c in cats])
    parts = [out, count_cols]

    if emb is not None:
        vec = emb.reindex(cats).to_numpy(dtype=np.float64)
        has_vec = ~np.isnan(vec).any(axis=1)
        vec = np.where(has_vec[:, None], vec, 0.0)
        tf = counts * has_vec  # categories without a vector weigh nothing
        if idf is None:
            w_idf = idf_weights(counts)
        else:
            w_idf = pd.Series(idf, dtype=float).reindex(cats).fillna(0.0).to_numpy()
        dim = vec.shape[1]
        parts.append(_weighted(tf, vec, index=rng, prefix="emb_mean_", dim=dim))
        parts.append(_weighted(tf * w_idf, vec, index=rng, prefix="emb_tfidf_", dim=dim))
    result = pd.concat(parts, axis=1)
    result.index = parcels.index
    return result


def _weighted(
    weights: np.ndarray, vec: np.ndarray, index: pd.Index, prefix: str, dim: int
) -> pd.DataFrame:
    total = weights.sum(axis=1)
    agg = weights @ vec
    agg = np.divide(agg, total[:, None], out=np.zeros_like(agg), where=total[:, None] > 0)
    return pd.DataFrame(
        agg.astype(np.float32), index=index, columns=[f"{prefix}{i}" for i in range(dim)]
    )
