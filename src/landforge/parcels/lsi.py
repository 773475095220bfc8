"""Stratified sample design from the landscape shape index (LSI).

Following Chen et al. (2016), as used for the national land-use sample dataset: regions
whose land cover is more fragmented get more samples, and inside a region the sites go
to the classes and grid units where the class is most complex.

Raster LSI (pixel units)::

    LSI = 0.25 * E / sqrt(q)

``q`` = number of pixels of the class (or region), ``E`` = number of pixel sides on its
boundary. A square patch gives 1; the value grows as the shape becomes more ragged.

* **class level** (``cLSI``, ``uLSI``): ``E = sum_j b_j``, ``b_j`` = sides of pixel ``j``
  of the class that border another class, nodata or the outside of the landscape.
* **region level** (``rLSI``): ``E`` counts every side between two different classes
  inside the region once, plus every side on the region's own boundary (neighbour outside
  the region, outside the raster, or nodata): the FRAGSTATS landscape-level total edge
  with the boundary counted.

Conventions (kept in step with ``pylandstats``' ``landscape_shape_index`` with
``count_boundary=True``, which the tests check):

* nodata pixels are excluded from ``q`` and count as "outside": a side facing nodata is
  an edge;
* a region is its own landscape: sides on the region border are edges, even where the
  pixel beyond has the same class;
* a grid unit is its own landscape too (the unit clipped to the region): ``uLSI`` counts
  the unit border as edge.
* ``standard="fragstats"`` divides ``E`` by the smallest raster perimeter of ``q``
  pixels (``4n``, ``4n + 2`` or ``4n + 4``, ``n = floor(sqrt(q))``) instead of
  ``4 sqrt(q)``: FRAGSTATS' and pylandstats' raster LSI. Both agree when ``q`` is a
  perfect square; the default ``"sqrt"`` is the formula of the paper.

Allocation of ``N`` sites:

* ``N_i = N * rLSI_i * A_i / sum_j rLSI_j * A_j`` (``A_i`` = valid pixels of region i);
* ``N_ik = N_i * cLSI_ik * W_ik / sum_k cLSI_ik * W_ik`` (``W_ik`` = area share of
  class k in region i);
* both rounded by largest remainder, so the counts add up to ``N`` exactly;
* grid units (``unit_size_m`` squares anchored at the raster's top-left corner) are
  ranked by ``uLSI_k`` within each region (the "uLSI curve") and one site goes to each of
  the top ``N_ik`` units, at a random pixel of class k inside the unit (seeded). When
  ``N_ik`` exceeds the number of units holding the class, further rounds go down the same
  ranking again (a unit gets a second, distinct pixel).

Everything is vectorised with numpy (edge counts from shifted arrays, per-unit sums with
``np.bincount``); Python loops run only over windows, regions x classes and chosen
sites. The design works by windows (:mod:`landforge.parcels.lsi_blocks`): pixel and edge
counts are added up window by window (each read with a one-pixel halo, so edges across
window borders count once) into tables per (region, class) and per (region, unit,
class); the sites are drawn from those tables and then placed by reading only their
units. Memory is one window plus the unit tables, whatever the raster size, and the
result is the same for any window size (``block``).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.affinity

from landforge.errors import InputError, OptionError
from landforge.io.vector import require_column, require_crs
from landforge.parcels.lsi_blocks import (
    ArraySource,
    DesignGrid,
    RasterSource,
    StatTables,
    WindowTask,
    locate,
    plan_windows,
    reduce_stats,
    window_stats,
)
from landforge.parcels.lsi_blocks import encode_values as _encode
from landforge.parcels.options import SampleDesignOptions

__all__ = [
    "SampleDesign",
    "allocate",
    "class_lsi",
    "design_samples",
    "design_samples_array",
    "largest_remainder",
    "lsi",
    "region_lsi",
]

Standard = Literal["sqrt", "fragstats"]


class SampleDesign(NamedTuple):
    """Result of :func:`design_samples`: unpacks as ``sites, allocation = ...``.

    Attributes:
        sites: one row per site.
        allocation: one row per (region, class) with the LSI values and sample sizes.
    """

    sites: Any
    allocation: pd.DataFrame


def _index(edges: np.ndarray, q: np.ndarray, standard: Standard) -> np.ndarray:
    """LSI from edge counts and pixel counts (NaN where q == 0)."""
    q = np.asarray(q, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if standard == "sqrt":
            out = 0.25 * edges / np.sqrt(q)
        elif standard == "fragstats":
            n = np.floor(np.sqrt(q))
            min_p = np.where(q == n * n, 4 * n, np.where(q <= n * (n + 1), 4 * n + 2, 4 * n + 4))
            out = edges / min_p
        else:
            raise OptionError("standard", f"use 'sqrt' or 'fragstats', got {standard!r}")
    return np.where(q > 0, out, np.nan)


def _neighbours(padded: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The two members of every vertical and horizontal 4-neighbour pair (views)."""
    return (padded[1:, :], padded[:-1, :]), (padded[:, 1:], padded[:, :-1])


def _side_counts(zone: np.ndarray, n_zones: int) -> np.ndarray:
    """Per zone id, the pixel sides bordering a different zone id or the outside.

    ``zone`` holds ids ``0..n_zones-1`` and ``-1`` for pixels that belong to none
    (nodata); this is ``sum_j b_j`` of each zone.
    """
    dtype = np.int32 if n_zones < 2**31 - 1 else np.int64
    z = np.pad(zone.astype(dtype, copy=False), 1, constant_values=-1)
    counts = np.zeros(n_zones, dtype=np.int64)
    for a, b in _neighbours(z):
        differ = a != b
        for side in (a[differ], b[differ]):
            counts += np.bincount(side[side >= 0], minlength=n_zones)[:n_zones]
    return counts


def lsi(mask: np.ndarray, standard: Standard = "sqrt") -> float:
    """Landscape shape index of the True pixels of a 2-D mask (1 for a square patch).

    Sides facing False pixels or the edge of the array are edges. NaN for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise InputError("mask", f"expected a 2-D array, got {m.ndim}-D")
    edges = _side_counts(np.where(m, 0, -1), 1)[0]
    return float(_index(np.array([edges]), np.array([m.sum()]), standard)[0])


def class_lsi(
    labels: np.ndarray,
    classes: Any = None,
    nodata: Any = None,
    standard: Standard = "sqrt",
) -> dict[Any, float]:
    """Class-level LSI of each class of a label raster, in one vectorised pass.

    Args:
        labels: 2-D class raster.
        classes: classes to report; default every value present except ``nodata``.
        nodata: value excluded from every class (its pixels count as outside).
        standard: ``"sqrt"`` (0.25 E / sqrt q) or ``"fragstats"`` (E / min perimeter).

    Returns:
        ``{class: LSI}``; NaN for a requested class with no pixel.
    """
    arr = np.asarray(labels)
    values, codes = _encode(arr)
    if nodata is not None:
        nd = np.flatnonzero(values == nodata)
        if len(nd):
            codes[codes == nd[0]] = -1
    edges = _side_counts(codes, len(values))
    q = np.bincount(codes[codes >= 0], minlength=len(values))
    index = _index(edges, q, standard)
    if classes is None:
        classes = [v for v in values.tolist() if nodata is None or v != nodata]
    lookup = {v: i for i, v in enumerate(values.tolist())}
    return {c: float(index[lookup[c]]) if c in lookup else float("nan") for c in classes}


def region_lsi(
    labels: np.ndarray,
    regions: np.ndarray,
    n_regions: int,
    valid: np.ndarray | None = None,
    standard: Standard = "sqrt",
) -> np.ndarray:
    """Landscape-level LSI of each region (``regions`` holds 0..n_regions-1, -1 outside).

    Edges inside a region between two classes count once; edges on the region's boundary
    (neighbour in another region, outside, or invalid) count once for the region.
    """
    lab = np.asarray(labels)
    reg = np.asarray(regions, dtype=np.int64).copy()
    if valid is not None:
        reg[~valid] = -1
    _, lcodes = _encode(lab)
    # key differs when class or region differs; region alone decides who owns the edge
    key = np.where(reg >= 0, reg * (int(lcodes.max()) + 1) + lcodes, -1)
    rz = np.pad(reg, 1, constant_values=-1)
    kz = np.pad(key, 1, constant_values=-1)
    edges = np.zeros(n_regions, dtype=np.int64)
    for (ra, rb), (ka, kb) in zip(_neighbours(rz), _neighbours(kz), strict=True):
        differ = ka != kb
        ra, rb = ra[differ], rb[differ]
        same = ra == rb  # an edge between two classes inside one region: once
        cross = ~same  # an edge on a region border: once for each region beside it
        for r in (ra[same], ra[cross], rb[cross]):
            edges += np.bincount(r[r >= 0], minlength=n_regions)[:n_regions]
    q = np.bincount(reg[reg >= 0], minlength=n_regions)
    return _index(edges[:n_regions], q[:n_regions], standard)


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` that add up to ``total`` (Hamilton's method).

    Ties in the remainders go to the earlier entry. All-zero weights give all zeros.
    """
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0)
    w = np.maximum(w, 0.0)
    if total <= 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(np.int64)
    short = int(total - base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:short]] += 1
    return base


def allocate(
    labels: np.ndarray,
    regions: np.ndarray,
    n: int,
    nodata: Any = None,
    standard: Standard = "sqrt",
) -> pd.DataFrame:
    """Sample sizes per region (``N_i``) and per region and class (``N_ik``).

    Args:
        labels: 2-D class raster.
        regions: 2-D region index (0-based; negative = outside every region).
        n: total number of sites ``N``.
        nodata: class value that is not land cover.
        standard: LSI standard, see :func:`lsi`.

    Returns:
        One row per (region, class) present: ``region``, ``class``, ``pixels``,
        ``share`` (W_ik), ``cLSI``, ``rLSI``, ``region_pixels`` (A_i), ``n_region``
        (N_i) and ``n`` (N_ik).
    """
    labels = np.asarray(labels)
    regions = np.asarray(regions, dtype=np.int64)
    h, w = labels.shape
    grid = DesignGrid(h, w, (h, w), nodata)
    tables = _tables(ArraySource(labels, regions), grid, None, labels.dtype)
    return _allocation(tables, int(n), standard)


def _tables(
    source: Any, grid: DesignGrid, block: int | None, dtype: Any, client: Any = None
) -> StatTables:
    """The count tables of the whole raster, window by window (see lsi_blocks).

    Raises:
        InputError: no valid pixel inside a region.
    """
    from landforge.distributed import map_blocks

    windows = [(0, 0, grid.height, grid.width)] if block is None else plan_windows(grid, block)
    if isinstance(source, RasterSource):
        tasks = [WindowTask(source.subset(r - 1, c - 1, h + 2, w + 2), grid, (r, c, h, w))
                 for r, c, h, w in windows]  # fmt: skip
    else:
        tasks = [WindowTask(source, grid, win) for win in windows]
    with contextlib.ExitStack() as stack:
        local: dict[str, Any] = {}
        if client is None and isinstance(source, RasterSource):
            local["ds"] = stack.enter_context(source.opened())
        parts = list(map_blocks(window_stats, tasks, client, **local))
    tables = reduce_stats(parts, grid, dtype)
    if len(tables.values) == 0:
        raise InputError("regions", "no valid land-cover pixel lies inside a region")
    return tables


def _allocation(t: StatTables, n: int, standard: Standard) -> pd.DataFrame:
    """The (region, class) table of :func:`allocate` from the count tables."""
    n_regions, k = t.c_q.shape
    c_lsi = _index(t.c_e.ravel(), t.c_q.ravel(), standard).reshape(n_regions, k)
    q = t.c_q
    area = q.sum(axis=1)
    r_lsi = _index(t.r_e, area, standard)
    n_region = largest_remainder(np.nan_to_num(r_lsi) * area, int(n))
    share = np.divide(q, area[:, None], out=np.zeros(q.shape), where=area[:, None] > 0)
    n_class = np.zeros_like(q)
    for i in range(n_regions):  # regions are few
        n_class[i] = largest_remainder(np.nan_to_num(c_lsi[i]) * share[i], int(n_region[i]))
    ri, ci = np.nonzero(q > 0)
    return pd.DataFrame(
        {
            "region": ri,
            "class": t.values[ci],
            "pixels": q[ri, ci],
            "share": share[ri, ci],
            "cLSI": c_lsi[ri, ci],
            "rLSI": r_lsi[ri],
            "region_pixels": area[ri],
            "n_region": n_region[ri],
            "n": n_class[ri, ci],
        }
    )


def _design(
    source: Any,
    grid: DesignGrid,
    n: int,
    seed: int,
    standard: Standard,
    block: int | None,
    dtype: Any,
    client: Any = None,
) -> SampleDesign:
    """Tables, allocation, the draw down the uLSI curves, then the sites' pixels."""
    tables = _tables(source, grid, block, dtype, client)
    allocation = _allocation(tables, n, standard)
    k = len(tables.values)
    u_lsi = _index(tables.u_e, tables.u_q, standard)
    rc = tables.u_region * k + tables.u_code
    # rank by uLSI (desc), ties by unit: the uLSI curve of class k in region i
    order = np.lexsort((tables.u_unit, -u_lsi, rc))
    rc_sorted = rc[order]
    rng = np.random.default_rng(seed)
    class_pos = {v: j for j, v in enumerate(tables.values.tolist())}
    n_uc = grid.unit_cols
    records: list[list[Any]] = []
    requests: dict[int, list[tuple[int, int, Any, int]]] = {}
    short: list[str] = []
    for i, cls, need in zip(
        allocation["region"].tolist(),
        allocation["class"].tolist(),
        allocation["n"].tolist(),
        strict=True,
    ):
        if need <= 0:
            continue
        key = i * k + class_pos[cls]
        lo, hi = np.searchsorted(rc_sorted, [key, key + 1])
        ranked = order[lo:hi]
        per_unit = np.full(len(ranked), need // len(ranked))
        per_unit[: need % len(ranked)] += 1
        if need > int(tables.u_q[ranked].sum()):
            short.append(
                f"region {i} class {cls}: {need} sites, {int(tables.u_q[ranked].sum())} px"
            )
        for g, m in zip(ranked[per_unit > 0], per_unit[per_unit > 0], strict=True):
            c = int(tables.u_q[g])
            u = int(tables.u_unit[g])
            picks = rng.choice(c, size=int(m), replace=int(m) > c)
            for p in np.atleast_1d(picks):
                requests.setdefault(u, []).append((len(records), i, cls, int(p)))
                records.append([i, cls, u // n_uc, u % n_uc, float(u_lsi[g]), -1, -1])
    if short:
        warnings.warn(
            f"more sites than pixels in {len(short)} (region, class) pair(s), so some "
            "pixels repeat: " + "; ".join(short),
            stacklevel=3,
        )
    with contextlib.ExitStack() as stack:
        ds = stack.enter_context(source.opened()) if isinstance(source, RasterSource) else None
        found = locate(source, grid, requests, block or max(grid.height, grid.width), ds)
    for rid, (r, c) in found.items():
        records[rid][5:7] = [r, c]
    sites = pd.DataFrame(
        [tuple(r) for r in records],
        columns=["region", "class", "unit_row", "unit_col", "uLSI", "row", "col"],
    )
    return SampleDesign(sites, allocation)


def design_samples_array(
    labels: np.ndarray,
    regions: np.ndarray,
    n: int,
    unit_px: int | tuple[int, int],
    nodata: Any = None,
    seed: int = 0,
    standard: Standard = "sqrt",
    *,
    block: int | None = None,
) -> SampleDesign:
    """:func:`design_samples` on arrays: sites as pixel positions, no georeferencing.

    Args:
        labels: 2-D class raster.
        regions: 2-D region index (0-based; negative = outside every region).
        n: total number of sites.
        unit_px: grid unit size in pixels, one number or (rows, cols).
        nodata: class value that is not land cover.
        seed: seed of the pixel draw inside each unit.
        standard: LSI standard, see :func:`lsi`.
        block: count by windows of about this many pixels a side (None: one window);
            the result does not depend on it.

    Returns:
        ``SampleDesign(sites, allocation)``; ``sites`` is a DataFrame with ``region``
        (0-based index), ``class``, ``unit_row``, ``unit_col``, ``uLSI``, ``row``, ``col``.
    """
    if int(n) <= 0:
        raise OptionError("n", f"number of sites must be > 0, got {n}")
    uy, ux = (unit_px, unit_px) if np.isscalar(unit_px) else unit_px  # type: ignore[misc]
    uy, ux = int(uy), int(ux)
    if uy < 1 or ux < 1:
        raise OptionError("unit_px", "grid unit must be at least one pixel")
    labels = np.asarray(labels)
    regions = np.asarray(regions, dtype=np.int64)
    if labels.shape != regions.shape or labels.ndim != 2:
        raise InputError("regions", "region raster must have the land-cover raster's shape")
    if regions.size and int(regions.max()) >= 2**31 - 1:
        raise InputError("regions", "region ids must be below 2**31 - 1")
    grid = DesignGrid(labels.shape[0], labels.shape[1], (uy, ux), nodata)
    source = ArraySource(labels, regions)
    return _design(source, grid, int(n), seed, standard, block, labels.dtype)


def design_samples(
    landcover_path: str | os.PathLike[str],
    regions_gdf: gpd.GeoDataFrame,
    opts: SampleDesignOptions | Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    **overrides: Any,
) -> SampleDesign:
    """LSI-stratified sample sites on a land-cover raster (Chen et al. 2016).

    Regions are rasterised onto the land-cover grid (pixel centres inside a polygon; a
    later polygon wins where two overlap). Pixels outside every region, and nodata pixels,
    take no part and count as "outside" for edges. The raster is read by windows of
    ``block`` pixels (see the module doc): memory does not grow with its size.

    Args:
        landcover_path: single-band class raster with a projected CRS.
        regions_gdf: region polygons in any CRS.
        opts: options, see :class:`~landforge.parcels.options.SampleDesignOptions`:
            ``n`` (total number of sites ``N``), ``unit_size_m`` (side of the square
            grid units in the raster's CRS units), ``region_col`` (column naming the
            regions; default the 1-based row number), ``nodata`` (default the raster's
            nodata), ``seed`` (of the pixel draw), ``standard`` (see :func:`lsi`),
            ``block`` (window size) and ``workers`` / ``scheduler`` (Dask).
        client: a running ``dask.distributed.Client`` to count the windows on (the
            caller owns it); instead of ``workers`` / ``scheduler``.
        **overrides: option fields replacing those of ``opts`` (``n=1600``).

    Returns:
        ``SampleDesign(sites, allocation)``: ``sites`` a GeoDataFrame of points at pixel
        centres in the raster CRS with ``region``, ``class``, ``unit_row``, ``unit_col``,
        ``uLSI``, ``row``, ``col``; ``allocation`` the (region, class) table of
        :func:`allocate` with region names.

    Raises:
        OptionError: a bad option value (``n <= 0``, ``unit_size_m <= 0``, a
            ``region_col`` the regions lack).
        InputError: a missing raster, regions without CRS, or regions that miss the
            raster.
    """
    from landforge.distributed import block_client
    from landforge.io.raster import open_raster

    o = SampleDesignOptions.build(opts, **overrides)
    require_crs(regions_gdf, "regions")
    if o.region_col is not None:
        require_column(regions_gdf, o.region_col, "region layer", option="region_col")
    with open_raster(landcover_path) as src:
        if src.crs is None:
            raise InputError(landcover_path, "raster has no CRS")
        transform, crs, dtype = src.transform, src.crs, np.dtype(src.dtypes[0])
        height, width = src.height, src.width
        nodata = src.nodata if o.nodata is None else o.nodata
    if nodata is not None and np.issubdtype(dtype, np.integer):
        nodata = int(nodata)
    regions = regions_gdf.to_crs(crs)
    geoms = regions.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    names = (
        regions[o.region_col].to_numpy()
        if o.region_col is not None
        else np.arange(1, len(regions) + 1)
    )
    inv = ~transform  # polygons in pixel coordinates: every window sees the same centres
    matrix = [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f]
    shapes = tuple(
        (shapely.affinity.affine_transform(g, matrix), i)
        for i, (g, good) in enumerate(zip(geoms, ok, strict=True))
        if good
    )
    if not shapes:
        raise InputError("regions", "region layer has no polygon")
    if not ok.all():
        warnings.warn(
            f"{int((~ok).sum())} region(s) without geometry left out", UserWarning, stacklevel=2
        )
    ux = max(1, int(round(o.unit_size_m / abs(transform.a))))
    uy = max(1, int(round(o.unit_size_m / abs(transform.e))))
    grid = DesignGrid(height, width, (uy, ux), nodata)
    source = RasterSource(str(landcover_path), height, width, shapes)
    with contextlib.ExitStack() as stack:
        dask = block_client(stack, o.workers, o.scheduler, client)
        try:
            sites, allocation = _design(source, grid, o.n, o.seed, o.standard, o.block, dtype, dask)
        except InputError as exc:
            if exc.source == "regions" and "no valid land-cover pixel" in exc.problem:
                raise InputError(
                    "regions", "no region covers a valid pixel of the land-cover raster"
                ) from None
            raise
    empty = sorted(set(np.flatnonzero(ok).tolist()) - set(allocation["region"].tolist()))
    if empty:
        shown = ", ".join(str(names[i]) for i in empty[:10]) + (", ..." if len(empty) > 10 else "")
        warnings.warn(
            f"{len(empty)} region(s) cover no valid land-cover pixel and get no sites: {shown}",
            UserWarning,
            stacklevel=2,
        )
    col = sites["col"].to_numpy() + 0.5
    row = sites["row"].to_numpy() + 0.5
    xs = transform.c + transform.a * col + transform.b * row
    ys = transform.f + transform.d * col + transform.e * row
    sites = sites.assign(region=names[sites["region"].to_numpy()])
    allocation = allocation.assign(region=names[allocation["region"].to_numpy()])
    gdf = gpd.GeoDataFrame(sites, geometry=gpd.points_from_xy(xs, ys), crs=crs)
    return SampleDesign(gdf, allocation)
