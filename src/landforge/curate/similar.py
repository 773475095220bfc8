"""Similar-patch search: the k nearest patches by label and texture histograms.

The national sample paper only says that its patch features act as a "bag of
features" that allows similar-image search; this search is our design: the same
feature vectors as the clustering (:func:`~landforge.curate.cluster.feature_matrix`,
standardised with the dataset's statistics for ``combined``), scikit-learn's
``NearestNeighbors`` (exact, brute force or tree as sklearn picks) with the chosen
metric. A query is a patch of the dataset (it is not its own neighbour) or every
patch of a new image, described with the tiling settings stored in the patch table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landforge.curate.cluster import feature_matrix
from landforge.curate.options import SimilarOptions, TilesOptions
from landforge.curate.tiles import describe_frame, read_tiles
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path

__all__ = ["similar_patches"]

_KEEP = ("image", "row", "col", "height", "width", "cluster")


def similar_patches(
    tiles: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    opts: SimilarOptions | dict[str, Any] | None = None,
    *,
    patches: Sequence[str] = (),
    image: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Any:
    """The ``k`` most similar patches of ``tiles`` for each query patch.

    Args:
        tiles: patch table(s) (``curate tiles``; ``curate cluster`` output works too).
        opts: :class:`SimilarOptions`; ``overrides`` replace its fields.
        **overrides: option fields replacing those of ``opts``.
        patches: ids of query patches inside the dataset.
        image: a new image whose patches are the queries (tiled like the dataset).
        labels: the new image's label raster (needed for label features).
        out: GeoParquet to write (one row per query and neighbour).

    Returns:
        GeoDataFrame: ``query_id``, ``rank`` (1 = nearest), ``patch_id``, ``distance``,
        the neighbour's ``image``, ``row``, ``col``, ... and footprint.

    Raises:
        OptionError: no query, an unknown patch id, label features without labels.
    """
    import geopandas as gpd
    from sklearn.neighbors import NearestNeighbors

    o = SimilarOptions.build(opts, **overrides)
    if not patches and image is None:
        raise OptionError("patches", "give query patch ids or a new image")
    if patches and image is not None:
        raise OptionError("patches", "give query patch ids or a new image, not both")
    table = read_tiles(tiles).reset_index(drop=True)
    x, cols, scaler = feature_matrix(table, o.features)
    k = min(o.k, len(table) - (1 if patches else 0))
    if k < 1:
        raise OptionError("k", "the dataset has too few patches to search")
    if patches:
        where = {pid: i for i, pid in enumerate(table["patch_id"])}
        missing = [p for p in patches if p not in where]
        if missing:
            raise OptionError("patches", f"unknown patch id {missing[0]!r}")
        rows = [where[p] for p in patches]
        queries, query_ids = x[rows], list(patches)
    else:
        assert image is not None
        settings = table.attrs.get("landforge", {}).get("tiles")
        if o.features != "texture" and labels is None:
            raise OptionError(
                "features", f"{o.features!r} needs the new image's labels; use texture"
            )
        new = describe_frame(image, labels, TilesOptions.build(settings or {}))
        missing_cols = [c for c in cols if c not in new.columns]
        if missing_cols:
            raise InputError(image, f"its patches lack feature {missing_cols[0]} of the dataset")
        queries, query_ids = scaler(new[cols].to_numpy(np.float64)), list(new["patch_id"])
    nn = NearestNeighbors(n_neighbors=k + (1 if patches else 0), metric=o.metric).fit(x)
    dist, idx = nn.kneighbors(queries)
    records = []
    for qi, qid in enumerate(query_ids):
        pairs = [
            (d, j)
            for d, j in zip(dist[qi], idx[qi], strict=True)
            if table.at[int(j), "patch_id"] != qid
        ]
        for rank, (d, j) in enumerate(pairs[:k], start=1):
            hit = table.iloc[int(j)]
            rec = {"query_id": qid, "rank": rank, "patch_id": hit["patch_id"], "distance": float(d)}
            rec.update({c: hit[c] for c in _KEEP if c in table.columns})
            rec["geometry"] = hit.geometry
            records.append(rec)
    result = gpd.GeoDataFrame(records, geometry="geometry", crs=table.crs)
    if out is not None:
        with atomic_path(out) as tmp:
            result.to_parquet(Path(tmp), index=False)
    return result
