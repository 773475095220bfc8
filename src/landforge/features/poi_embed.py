"""POI category embeddings: a POI network, weighted random walks, skip-gram.

The "semantic" branch of MSLU (Huang et al. 2022) learns one vector per POI category
from the categories that occur *around* it: POIs are joined into a spatial network,
random walks over the network become sentences of category tokens, and word2vec
skip-gram turns co-occurrence in those sentences into vectors. Categories that share
neighbourhoods (a cafe and a bakery) end up close; categories that never meet (a cafe
and a container terminal) end up far apart.

Steps of :meth:`POIEmbedder.fit`:

1. POIs are projected to a metric CRS (the local UTM zone when they are geographic).
2. Network: Delaunay triangulation of the POI points (``graph="delaunay"``), or each
   POI's ``k`` nearest neighbours (``graph="knn"``); in both cases edges longer than
   ``max_dist_m`` are dropped, so no edge crosses a park or a bay. Coincident POIs (shops
   in one building) are kept apart by a deterministic sub-centimetre jitter, so they
   become neighbours at distance ~0 instead of being lost by Qhull.
3. Edge weight ``w = 1 / (d + d0_m)`` (d in metres): nearer POIs are more likely next
   steps. (The weighting is our choice; the paper describes distance-weighted walks.)
4. ``walks_per_node`` walks of ``walk_length`` steps start at every connected POI; the
   next node is drawn with probability proportional to the edge weights. All walkers
   step at once (CSR adjacency + per-row cumulative weights + one ``searchsorted``).
5. Each walk, as a sentence of category tokens, trains ``gensim`` Word2Vec skip-gram
   (``sg=1``). POIs with no edge give a one-token sentence, so every category gets a
   vector (an untrained, seeded one if it never has a neighbour).

Determinism: the walks come from ``numpy.random.default_rng(seed)``; Word2Vec runs with
``workers=1`` (more threads make the result depend on thread scheduling), ``seed`` and a
stable token hash (CRC32 instead of Python's salted ``hash``), so two fits with the same
inputs and seed give identical vectors, in one process and across processes, without
setting ``PYTHONHASHSEED``. Different gensim/numpy/BLAS versions may still differ in the
last bits.

Embeddings are saved as Parquet: a ``category`` column and ``emb_0 ... emb_{dim-1}``,
with the fit parameters in the file's key-value metadata; no pickle.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import Delaunay, QhullError, cKDTree

from landforge.errors import InputError, OptionError, require_file
from landforge.features.options import PoiEmbedOptions
from landforge.io.vector import to_metric

__all__ = [
    "GRAPHS",
    "POIEmbedder",
    "PoiEmbedOptions",
    "load_embeddings",
    "poi_graph",
    "random_walks",
]

#: Network types of :class:`POIEmbedder`.
GRAPHS = ("delaunay", "knn")

_META_KEY = b"landforge.poi_embed"


def _stable_hash(text: str) -> int:
    """Token hash for gensim that does not depend on PYTHONHASHSEED."""
    return zlib.crc32(str(text).encode("utf-8"))


def poi_graph(
    xy: np.ndarray,
    graph: str = "delaunay",
    k: int = 8,
    max_dist_m: float = 500.0,
    d0_m: float = 10.0,
    seed: int = 0,
) -> sparse.csr_matrix:
    """Symmetric weighted adjacency of POI points (metric coordinates).

    Args:
        xy: (n, 2) projected coordinates in metres.
        graph: ``"delaunay"`` (triangulation edges) or ``"knn"`` (k nearest neighbours).
        k: neighbours per POI for ``"knn"``.
        max_dist_m: edges longer than this are dropped.
        d0_m: distance offset of the weight ``1 / (d + d0_m)``.
        seed: seed of the jitter that separates coincident points.

    Returns:
        (n, n) CSR matrix of edge weights (0 = no edge), symmetric, no self-loops.
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if graph not in GRAPHS:
        raise OptionError("graph", f"unknown POI graph {graph!r}; use one of {', '.join(GRAPHS)}")
    if n < 2:
        return sparse.csr_matrix((n, n))
    # centred + jittered: Qhull drops exact duplicates, and large UTM numbers cost precision
    rng = np.random.default_rng(seed)
    pts = xy - xy.mean(axis=0) + rng.uniform(-5e-3, 5e-3, size=xy.shape)
    if graph == "knn":
        kk = min(k, n - 1)
        dist, nbr = cKDTree(pts).query(pts, k=kk + 1, distance_upper_bound=max_dist_m)
        src = np.repeat(np.arange(n), kk + 1)
        dst = nbr.ravel()
        keep = (dst < n) & (dst != src)
        a, b = src[keep], dst[keep]
    else:
        try:
            simplices = Delaunay(pts).simplices if n >= 3 else np.array([[0, 1, 1]])
        except QhullError:  # all points on a line: fall back to nearest neighbours
            return poi_graph(xy, "knn", 2, max_dist_m, d0_m, seed)
        a = simplices[:, [0, 1, 2]].ravel()
        b = simplices[:, [1, 2, 0]].ravel()
        keep = a != b
        a, b = a[keep], b[keep]
    # one undirected edge per pair (an edge of two triangles, mutual neighbours)
    pairs = np.unique(np.sort(np.column_stack([a, b]), axis=1), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(pts[a] - pts[b]).T)
    keep = d <= max_dist_m
    a, b, d = a[keep], b[keep], d[keep]
    w = 1.0 / (d + d0_m)
    adj = sparse.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    adj.sort_indices()
    return adj


def random_walks(
    adj: sparse.csr_matrix,
    walks_per_node: int = 10,
    walk_length: int = 40,
    seed: int = 0,
) -> np.ndarray:
    """Weighted random walks from every node with at least one edge.

    The step from node i picks neighbour j with probability ``w_ij / sum_j w_ij``; all
    walkers move together: row-normalised cumulative weights are offset by the row
    number, so ``searchsorted(cum, node + u)`` (u uniform in [0, 1)) lands in the node's
    own row.

    Returns:
        int array (n_walks, walk_length) of node indices; walks start in node order,
        ``walks_per_node`` times each, in a seeded shuffled order.
    """
    adj = sparse.csr_matrix(adj)
    n = adj.shape[0]
    degree = np.diff(adj.indptr)
    starts = np.repeat(np.flatnonzero(degree > 0), walks_per_node)
    if len(starts) == 0 or walk_length < 1:
        return np.empty((0, max(walk_length, 0)), dtype=np.int64)
    rng = np.random.default_rng(seed)
    starts = rng.permutation(starts)
    row = np.repeat(np.arange(n), degree)
    w = adj.data / np.asarray(adj.sum(axis=1)).ravel()[row]
    cs = np.cumsum(w)
    within = cs - np.r_[0.0, cs][adj.indptr[:-1]][row]
    last = adj.indptr[1:][degree > 0] - 1
    within[last] = 1.0  # exact row ends: rounding must not leak into the next row
    cum = row + within
    walks = np.empty((len(starts), walk_length), dtype=np.int64)
    walks[:, 0] = cur = starts
    for step in range(1, walk_length):
        pos = np.searchsorted(cum, cur + rng.random(len(cur)), side="right")
        cur = adj.indices[pos]
        walks[:, step] = cur
    return walks


class POIEmbedder:
    """Category embeddings from random walks on a POI network (skip-gram).

    scikit-learn style: parameters at construction, :meth:`fit` learns
    ``embeddings_`` (DataFrame, index ``category``, columns ``emb_0 ...``), and
    :meth:`transform` looks categories up. The parameters are a
    :class:`~landforge.features.options.PoiEmbedOptions` (``opts``, overridden by
    keywords), validated at construction and readable as attributes (``model.dim``):

    * ``dim``: vector size; ``graph``: ``"delaunay"`` or ``"knn"``; ``k``: neighbours
      per POI for ``graph="knn"``; ``max_dist_m``: edges longer than this (metres) are
      dropped;
    * ``walks_per_node``: walks started at every connected POI; ``walk_length``: POIs
      per walk (tokens per sentence);
    * ``window``: skip-gram context window; ``epochs``: Word2Vec epochs; ``negative``:
      negative samples of Word2Vec; ``seed``: seed of the jitter, the walks and Word2Vec;
    * ``d0_m``: distance offset of the edge weight ``1 / (d + d0_m)``;
    * ``category_col``: the category column :meth:`fit` uses unless given one.

    Example:
        >>> emb = POIEmbedder(dim=32, seed=0).fit(pois, "category")  # doctest: +SKIP
        >>> emb.transform(["amenity=cafe", "shop=bakery"]).shape  # doctest: +SKIP
        (2, 32)

    Raises:
        OptionError: a bad parameter (e.g. ``dim=0``), at construction.
    """

    def __init__(self, opts: PoiEmbedOptions | None = None, **overrides: Any) -> None:
        self.options = PoiEmbedOptions.build(opts, **overrides)

    def __getattr__(self, name: str) -> Any:
        # the parameters read as attributes: model.dim, model.seed, ...
        options = self.__dict__.get("options")
        if options is not None and name in PoiEmbedOptions.model_fields:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_params(self) -> dict[str, Any]:
        """The embedding parameters (stored with saved embeddings)."""
        return self.options.model_dump(exclude={"category_col"})

    def fit(self, pois: gpd.GeoDataFrame, category_col: str | None = None) -> POIEmbedder:
        """Build the POI network, walk it, and train skip-gram on the category sequences.

        Args:
            pois: POI points with a CRS (polygons are reduced to a point inside).
            category_col: the category column (default: the ``category_col`` option);
                rows with no category are ignored.

        Returns:
            self, with ``embeddings_``, ``category_counts_``, ``n_pois_``, ``n_edges_``
            and ``n_walks_``.

        Raises:
            InputError: no CRS, or no POI with a category.
            OptionError: the category column is missing.
        """
        from gensim.models import Word2Vec

        o = self.options
        category_col = category_col or o.category_col
        if category_col not in pois.columns:
            have = ", ".join(str(c) for c in pois.columns if c != pois.geometry.name)
            raise OptionError("category_col", f"POIs have no column {category_col!r} ({have})")
        if pois.crs is None:
            raise InputError("pois", "POI layer has no CRS")
        geoms = pois.geometry.values
        ok = (
            pois[category_col].notna().to_numpy()
            & ~shapely.is_missing(geoms)
            & ~shapely.is_empty(geoms)
        )
        pois = pois[ok]
        if len(pois) == 0:
            raise InputError("pois", f"no POI with a {category_col!r} value")
        metric = to_metric(pois)
        pts = shapely.point_on_surface(metric.geometry.values)
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
        tokens = pois[category_col].astype(str).to_numpy()

        adj = poi_graph(xy, o.graph, o.k, o.max_dist_m, o.d0_m, o.seed)
        walks = random_walks(adj, o.walks_per_node, o.walk_length, o.seed)
        sentences = [list(t) for t in tokens[walks]]
        isolated = np.diff(adj.indptr) == 0
        sentences += [[t] for t in tokens[isolated]]

        model = Word2Vec(
            sentences=sentences,
            sg=1,
            vector_size=o.dim,
            window=o.window,
            min_count=1,
            negative=o.negative,
            epochs=o.epochs,
            workers=1,
            seed=o.seed,
            hashfxn=_stable_hash,
        )
        cats = sorted(set(tokens))
        vectors = np.stack([model.wv[c] for c in cats]).astype(np.float32)
        self.embeddings_ = _frame(cats, vectors)
        self.category_counts_ = pd.Series(tokens).value_counts().reindex(cats)
        self.n_pois_ = len(tokens)
        self.n_edges_ = int(adj.nnz // 2)
        self.n_walks_ = len(walks)
        return self

    def _fitted(self) -> pd.DataFrame:
        emb = getattr(self, "embeddings_", None)
        if emb is None:
            raise RuntimeError("POIEmbedder is not fitted; call fit() or load() first")
        return emb

    @property
    def categories_(self) -> list[str]:
        """The embedded categories, sorted."""
        return list(self._fitted().index)

    def transform(self, categories: Iterable[Any]) -> np.ndarray:
        """Vectors of ``categories`` (float32, (n, dim)); unknown categories get zeros."""
        emb = self._fitted()
        cats = pd.Index([str(c) for c in categories])
        pos = emb.index.get_indexer(cats)
        out = np.zeros((len(cats), emb.shape[1]), dtype=np.float32)
        known = pos >= 0
        out[known] = emb.to_numpy(dtype=np.float32)[pos[known]]
        return out

    def fit_transform(self, pois: gpd.GeoDataFrame, category_col: str | None = None) -> np.ndarray:
        """Fit, then return the vector of every POI's category."""
        col = category_col or self.options.category_col
        return self.fit(pois, col).transform(pois[col].dropna())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``category`` + ``emb_*`` columns to Parquet, parameters as metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        emb = self._fitted()
        table = pa.Table.from_pandas(emb.reset_index(), preserve_index=False)
        meta = dict(table.schema.metadata or {})
        info = {"params": self.get_params(), "n_pois": getattr(self, "n_pois_", None)}
        meta[_META_KEY] = json.dumps(info).encode()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> POIEmbedder:
        """Read embeddings written by :meth:`save` (or any ``category`` + numbers table)."""
        import pyarrow.parquet as pq

        p = require_file(path, "embeddings file")
        try:
            table = pq.read_table(p)
        except Exception as exc:  # pyarrow raises several types for a non-Parquet file
            raise InputError(p, f"not a readable Parquet file ({str(exc)[:160]})") from None
        raw = (table.schema.metadata or {}).get(_META_KEY)
        params = json.loads(raw)["params"] if raw else {}
        emb = _from_table(p, table.to_pandas())
        try:
            obj = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        except OptionError:  # parameters of another version: the vectors still load
            obj = cls()
        obj.options.dim = emb.shape[1]
        obj.embeddings_ = emb
        return obj


def load_embeddings(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Embeddings from Parquet as a DataFrame indexed by category."""
    return POIEmbedder.load(path).embeddings_


def _frame(categories: list[str], vectors: np.ndarray) -> pd.DataFrame:
    cols = [f"emb_{i}" for i in range(vectors.shape[1])]
    return pd.DataFrame(vectors, index=pd.Index(categories, name="category"), columns=cols)


def _from_table(p: Path, df: pd.DataFrame) -> pd.DataFrame:
    if "category" not in df.columns:
        raise InputError(p, "embeddings need a 'category' column")
    num = [c for c in df.columns if c != "category"]
    bad = [c for c in num if not pd.api.types.is_numeric_dtype(df[c])]
    if not num or bad:
        raise InputError(p, f"embedding columns must be numeric (bad: {', '.join(bad[:5])})")
    if df["category"].duplicated().any():
        raise InputError(p, "duplicate categories in the embeddings file")
    return _frame([str(c) for c in df["category"]], df[num].to_numpy(dtype=np.float32))
