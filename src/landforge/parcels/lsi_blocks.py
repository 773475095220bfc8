"""Windowed statistics of the LSI sample design: pixel and edge counts, window by window.

The sample design of :mod:`landforge.parcels.lsi` needs, for every region i and class
k, the pixels ``q`` and boundary sides ``E`` of the class (cLSI), of the region (rLSI)
and of the class inside every grid unit (uLSI). All are sums over pixels of "sides of
this pixel that face another group", so they add up over any partition of the raster:
:func:`window_stats` counts them on one window and :func:`reduce_stats` adds the windows
into unit-level tables. Memory is one window (plus GDAL's bounded cache) and the tables,
which grow with the number of (region, unit, class) groups present, not with pixels.

Edges across window borders: a window is read with a one-pixel halo (the real
neighbours, or "outside" beyond the raster). Every pair of 4-neighbours with at least
one pixel in the window's core is looked at, and a side is counted only for a pixel of
the core; a pixel is in exactly one core, so every side is counted once overall, as on
the whole raster. (The region level counts an edge between two classes inside a region
once: it goes to the pixel below / right of the pair, whose core holds it.)

Sites are drawn from the tables (:mod:`landforge.parcels.lsi`); :func:`locate` then
finds the p-th pixel of a group in raster order by reading just the unit, strip by
strip.

Sources: :class:`ArraySource` (arrays in memory) and :class:`RasterSource` (a
land-cover raster and region polygons rasterised window by window, in pixel
coordinates so every window sees the same pixel centres). A :class:`WindowTask` holds
no open file, so it can run on a Dask worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

__all__ = [
    "ArraySource",
    "DesignGrid",
    "RasterSource",
    "StatTables",
    "WindowStats",
    "WindowTask",
    "encode_values",
    "locate",
    "plan_windows",
    "reduce_stats",
    "window_stats",
]


def encode_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, 0-based code of each element) like ``np.unique``.

    Small-range integer rasters (the usual land-cover case) use a lookup table instead
    of sorting every pixel.
    """
    v = np.asarray(values)
    if v.size and np.issubdtype(v.dtype, np.integer):
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < 2**16:
            # int32 when every value fits (no overflow), else int64
            wide = np.int32 if lo >= -(2**31) and hi < 2**31 else np.int64
            shifted = v.astype(wide) - np.asarray(lo, dtype=wide)
            present = np.bincount(shifted.ravel(), minlength=hi - lo + 1) > 0
            lut = (np.cumsum(present) - 1).astype(np.int32)
            distinct = (np.flatnonzero(present) + lo).astype(v.dtype)
            return distinct, lut[shifted]
    distinct, codes = np.unique(v, return_inverse=True)
    return distinct, codes.reshape(v.shape)


@dataclass(frozen=True)
class DesignGrid:
    """The raster's size, the grid units (``unit`` = rows, cols in pixels) and nodata."""

    height: int
    width: int
    unit: tuple[int, int]
    nodata: Any = None

    @property
    def unit_cols(self) -> int:
        """Grid units per row of units."""
        return -(-self.width // self.unit[1])

    @property
    def n_units(self) -> int:
        """Number of grid units."""
        return -(-self.height // self.unit[0]) * self.unit_cols


class Source(Protocol):
    """Where window pixels come from."""

    def read(
        self, row: int, col: int, height: int, width: int, ds: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and region ids (-1: no region, or outside the raster) of a window."""
        ...


def _clip(
    row: int, col: int, height: int, width: int, h: int, w: int
) -> tuple[int, int, int, int] | None:
    """The part (r0, r1, c0, c1) of a window inside an h x w raster, or None."""
    r0, r1 = max(row, 0), min(row + height, h)
    c0, c1 = max(col, 0), min(col + width, w)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


@dataclass(frozen=True)
class ArraySource:
    """Labels and regions held in memory (negative region ids: outside every region)."""

    labels: np.ndarray
    regions: np.ndarray

    def read(
        self, row: int, col: int, height: int, width: int, ds: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and region ids of a window (it may stick out of the arrays)."""
        lab = np.zeros((height, width), self.labels.dtype)
        reg = np.full((height, width), -1, np.int32)
        part = _clip(row, col, height, width, *self.labels.shape)
        if part is not None:
            r0, r1, c0, c1 = part
            at = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            lab[at] = self.labels[r0:r1, c0:c1]
            reg[at] = np.maximum(self.regions[r0:r1, c0:c1], -1)  # ids < 2**31
        return lab, reg


@dataclass
class RasterSource:
    """Band 1 of a raster, and region polygons rasterised onto its pixels.

    Attributes:
        path: the land-cover raster.
        height, width: its size.
        shapes: (polygon in pixel coordinates, region id) in burn order (a later
            polygon wins where two overlap); pixel centres inside a polygon belong to it.
        bounds: (n, 4) bounds of the polygons (computed when not given).
    """

    path: str
    height: int
    width: int
    shapes: tuple[tuple[Any, int], ...]
    bounds: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.bounds is None:
            import shapely

            geoms = np.array([g for g, _ in self.shapes], dtype=object)
            self.bounds = shapely.bounds(geoms).reshape(-1, 4)

    @contextlib.contextmanager
    def opened(self) -> Iterator[Any]:
        """The raster, open (pass it to :meth:`read` to read several windows)."""
        from landforge.io.raster import open_raster  # rasterio

        with open_raster(self.path) as ds:
            yield ds

    def subset(self, row: int, col: int, height: int, width: int) -> RasterSource:
        """This source with only the polygons whose bounds meet the window."""
        b = self.bounds
        assert b is not None
        hit = (b[:, 0] <= col + width) & (b[:, 2] >= col) & (b[:, 1] <= row + height)
        hit &= b[:, 3] >= row
        shapes = tuple(s for s, h in zip(self.shapes, hit, strict=True) if h)
        return replace(self, shapes=shapes, bounds=b[hit])

    def read(
        self, row: int, col: int, height: int, width: int, ds: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and region ids of a window (it may stick out of the raster)."""
        from affine import Affine
        from rasterio.features import rasterize
        from rasterio.windows import Window

        with contextlib.ExitStack() as stack:
            if ds is None:
                ds = stack.enter_context(self.opened())
            lab = np.zeros((height, width), ds.dtypes[0])
            reg = np.full((height, width), -1, np.int32)
            part = _clip(row, col, height, width, self.height, self.width)
            if part is None:
                return lab, reg
            r0, r1, c0, c1 = part
            at = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            lab[at] = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
            shapes = self.subset(r0, c0, r1 - r0, c1 - c0).shapes
            if shapes:
                reg[at] = rasterize(
                    shapes, out_shape=(r1 - r0, c1 - c0), transform=Affine.translation(c0, r0),
                    fill=-1, dtype="int32",
                )  # fmt: skip
        return lab, reg


@dataclass(frozen=True)
class WindowTask:
    """One window of the statistics pass: ``window`` = (row, col, height, width)."""

    source: Any
    grid: DesignGrid
    window: tuple[int, int, int, int]


@dataclass
class WindowStats:
    """The counts of one window (only groups with pixels in its core).

    Attributes:
        u_region, u_unit, u_value, u_q, u_e: per (region, unit, class): pixels, sides.
        c_region, c_value, c_q, c_e: per (region, class): pixels, sides.
        r_region, r_e: per region: landscape-level edges (FRAGSTATS total edge).
        max_region: the largest region id of any core pixel (-1: none).
    """

    u_region: np.ndarray
    u_unit: np.ndarray
    u_value: np.ndarray
    u_q: np.ndarray
    u_e: np.ndarray
    c_region: np.ndarray
    c_value: np.ndarray
    c_q: np.ndarray
    c_e: np.ndarray
    r_region: np.ndarray
    r_e: np.ndarray
    max_region: int


def plan_windows(grid: DesignGrid, block: int) -> list[tuple[int, int, int, int]]:
    """Windows of about ``block`` pixels a side covering the raster, row-major.

    A side is the largest multiple of the unit that fits in ``block`` (so a unit lies in
    one window), or ``block`` when a unit is larger (its counts then add up over the
    windows it spans).
    """
    uy, ux = grid.unit
    wy = (block // uy) * uy if uy <= block else block
    wx = (block // ux) * ux if ux <= block else block
    return [
        (r, c, min(wy, grid.height - r), min(wx, grid.width - c))
        for r in range(0, grid.height, wy)
        for c in range(0, grid.width, wx)
    ]


def _pairs(ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, Any, Any]]:
    """4-neighbour pairs (a, b) of a haloed window that hold a core pixel.

    a is the lower / right pixel. Also the slices of the pair arrays where a, and where
    b, lies in the core.
    """
    v = ids[:, 1:-1]  # vertical pairs: halo columns hold no core pixel
    yield v[1:], v[:-1], np.s_[:-1, :], np.s_[1:, :]
    h = ids[1:-1, :]
    yield h[:, 1:], h[:, :-1], np.s_[:, :-1], np.s_[:, 1:]


def _sides(ids: np.ndarray, n: int, regions_k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sides of core pixels facing another id, per id; and per region (``id // k``).

    The region count (when ``regions_k`` > 0) is the landscape-level edge of the
    region: a side between two classes of one region once (for pixel a), a side on
    the region's border once for each region beside it.
    """
    sides = np.zeros(n, np.int64)
    n_reg = (n // regions_k) if regions_k else 0
    redges = np.zeros(n_reg, np.int64)
    for a, b, a_core, b_core in _pairs(ids):
        differ = a != b
        sa, sb = a[a_core][differ[a_core]], b[b_core][differ[b_core]]
        sides += np.bincount(sa[sa >= 0], minlength=n)[:n]
        sides += np.bincount(sb[sb >= 0], minlength=n)[:n]
        if regions_k:
            ra = sa[sa >= 0] // regions_k
            redges += np.bincount(ra, minlength=n_reg)[:n_reg]
            other = a[b_core][differ[b_core]]  # pixel a of the pairs counted for b
            ra_b = np.where(other >= 0, other // regions_k, -1)
            rb = np.where(sb >= 0, sb // regions_k, -1)
            cross = (rb >= 0) & (ra_b != rb)
            redges += np.bincount(rb[cross], minlength=n_reg)[:n_reg]
    return sides, redges


def _ids(n: int) -> type[np.signedinteger[Any]]:
    """The smallest of int32 / int64 that numbers ``n`` ids (and -1)."""
    return np.int32 if n < 2**31 - 1 else np.int64


def window_stats(task: WindowTask, ds: Any = None) -> WindowStats:
    """Counts of one window (see the module doc); ``ds`` an open raster to reuse.

    Pure apart from reading: safe to run on a Dask worker that sees the raster. Holds
    about 30 bytes per pixel of the window at its peak (int32 ids).
    """
    grid = task.grid
    row, col, h, w = task.window
    from landforge.io.raster import bounded_read_cache  # rasterio, only when reading

    with bounded_read_cache():
        lab, reg = task.source.read(row - 1, col - 1, h + 2, w + 2, ds)
    core = np.s_[1:-1, 1:-1]
    max_region = int(reg[core].max()) if reg[core].size else -1
    valid = reg >= 0
    if grid.nodata is not None:
        valid &= lab != grid.nodata
    empty = np.zeros(0, np.int64)
    if not valid[core].any():
        none = np.zeros(0, lab.dtype)
        return WindowStats(
            empty, empty, none, empty, empty, empty, none, empty, empty, empty, empty, max_region
        )
    values, codes = encode_values(lab[valid])
    regs, rcodes = encode_values(reg[valid])
    del reg
    k, nr = len(values), len(regs)
    # (region, class) ids: class level and region level
    cid = np.full(lab.shape, -1, _ids(nr * k))
    cid[valid] = rcodes * k + codes
    c_e, r_e = _sides(cid, nr * k, regions_k=k)
    c_q = np.bincount(cid[core][valid[core]], minlength=nr * k)
    del cid
    # (region, unit, class) ids: the unit is a landscape of its own
    uy, ux = grid.unit
    ur0, uc0 = max(row - 1, 0) // uy, max(col - 1, 0) // ux
    n_luc = (min(col + w, grid.width - 1)) // ux - uc0 + 1
    lur = np.arange(row - 1, row + h + 1) // uy - ur0  # -1 only outside the raster
    luc = np.arange(col - 1, col + w + 1) // ux - uc0
    n_lu = (int(lur.max()) + 1) * n_luc
    n_key = nr * n_lu * k
    local_unit = (lur[:, None] * n_luc + luc[None, :]).astype(_ids(n_lu))[valid]
    key = (rcodes.astype(_ids(n_key)) * n_lu + local_unit) * k + codes
    del local_unit, rcodes, codes
    if n_key > 4 * key.size:  # sparse: number the groups present instead
        groups, dense = np.unique(key, return_inverse=True)
        dense = dense.reshape(-1).astype(_ids(len(groups)))
    else:
        groups, dense = np.arange(n_key), key
    uid = np.full(lab.shape, -1, dense.dtype)
    uid[valid] = dense
    del key, dense, lab
    n_g = len(groups)
    u_e, _ = _sides(uid, n_g)
    u_q = np.bincount(uid[core][valid[core]], minlength=n_g)
    del uid
    # sparse tables in global ids
    g = np.flatnonzero(u_q)
    gk = groups[g].astype(np.int64)
    code, rest = gk % k, gk // k
    lu, rc = rest % n_lu, rest // n_lu
    unit = (ur0 + lu // n_luc) * grid.unit_cols + (uc0 + lu % n_luc)
    cg = np.flatnonzero(c_q)
    return WindowStats(
        u_region=regs[rc].astype(np.int64),
        u_unit=unit,
        u_value=values[code],
        u_q=u_q[g].astype(np.int64),
        u_e=u_e[g],
        c_region=regs[cg // k].astype(np.int64),
        c_value=values[cg % k],
        c_q=c_q[cg].astype(np.int64),
        c_e=c_e[cg],
        r_region=regs.astype(np.int64),
        r_e=r_e,
        max_region=max_region,
    )


@dataclass
class StatTables:
    """The counts of the whole raster, per (region, class) and per (region, unit, class).

    Attributes:
        values: the classes present (sorted); ``code`` below indexes them.
        n_regions: the largest region id of any pixel + 1.
        c_q, c_e: (n_regions, k) pixels and sides of class k in region i.
        r_e: (n_regions,) landscape-level edges of each region.
        u_region, u_unit, u_code, u_q, u_e: one row per (region, unit, class) present,
            sorted by (region, unit, class).
    """

    values: np.ndarray
    n_regions: int
    c_q: np.ndarray
    c_e: np.ndarray
    r_e: np.ndarray
    u_region: np.ndarray
    u_unit: np.ndarray
    u_code: np.ndarray
    u_q: np.ndarray
    u_e: np.ndarray


def _sum_by(key: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct ``key`` values (sorted) and the sums of ``columns`` per key."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    if k.size == 0:
        return (k, *(c[order] for c in columns))
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return (k[first], *(np.add.reduceat(c[order], first) for c in columns))


def reduce_stats(parts: Sequence[WindowStats], grid: DesignGrid, dtype: Any) -> StatTables:
    """Add the windows' counts into the tables of the whole raster."""
    max_region = max((p.max_region for p in parts), default=-1)
    cat = np.concatenate
    c_value = cat([p.c_value for p in parts]) if parts else np.zeros(0, dtype)
    values = np.unique(c_value).astype(dtype)
    k, n_regions = len(values), max_region + 1
    if k == 0:
        none = np.zeros(0, np.int64)
        zeros = np.zeros((n_regions, 0), np.int64)
        r_e = np.zeros(n_regions, np.int64)
        return StatTables(values, n_regions, zeros, zeros, r_e, none, none, none, none, none)
    c_key = cat([p.c_region for p in parts]) * k + np.searchsorted(values, c_value)
    keys, c_q, c_e = _sum_by(c_key, cat([p.c_q for p in parts]), cat([p.c_e for p in parts]))
    cq = np.zeros(n_regions * k, np.int64)
    ce = np.zeros(n_regions * k, np.int64)
    cq[keys], ce[keys] = c_q, c_e
    r_e = np.zeros(n_regions, np.int64)
    np.add.at(r_e, cat([p.r_region for p in parts]), cat([p.r_e for p in parts]))
    n_units = grid.n_units
    u_key = cat([p.u_region for p in parts]) * n_units + cat([p.u_unit for p in parts])
    u_key = u_key * k + np.searchsorted(values, cat([p.u_value for p in parts]))
    u_key, u_q, u_e = _sum_by(u_key, cat([p.u_q for p in parts]), cat([p.u_e for p in parts]))
    rest = u_key // k
    return StatTables(
        values=values,
        n_regions=n_regions,
        c_q=cq.reshape(n_regions, k),
        c_e=ce.reshape(n_regions, k),
        r_e=r_e,
        u_region=rest // n_units,
        u_unit=rest % n_units,
        u_code=u_key % k,
        u_q=u_q,
        u_e=u_e,
    )


def locate(
    source: Source,
    grid: DesignGrid,
    requests: Mapping[int, Sequence[tuple[int, int, Any, int]]],
    block: int,
    ds: Any = None,
) -> dict[int, tuple[int, int]]:
    """Raster (row, col) of the p-th pixel (row-major) of groups inside grid units.

    Args:
        source: where the pixels come from.
        grid: the design grid.
        requests: unit id -> [(request id, region id, class value, p)].
        block: strips of a unit hold about ``block`` x ``block`` pixels.
        ds: the source raster, open (reused for every unit).

    Returns:
        request id -> (row, col).
    """
    uy, ux = grid.unit
    found: dict[int, tuple[int, int]] = {}
    from landforge.io.raster import bounded_read_cache  # rasterio, only when reading

    with bounded_read_cache():
        for unit in sorted(requests):
            ur, uc = divmod(unit, grid.unit_cols)
            r0, c0 = ur * uy, uc * ux
            r1, c1 = min(r0 + uy, grid.height), min(c0 + ux, grid.width)
            width = c1 - c0
            step = max(1, (block * block) // width)
            todo = sorted(requests[unit], key=lambda t: t[3])
            by_group: dict[tuple[int, Any], list[tuple[int, int]]] = {}
            for rid, region, value, p in todo:
                by_group.setdefault((region, value), []).append((p, rid))
            seen = dict.fromkeys(by_group, 0)
            for row in range(r0, r1, step):
                if not by_group:
                    break
                lab, reg = source.read(row, c0, min(step, r1 - row), width, ds)
                for group in list(by_group):
                    hits = np.flatnonzero((reg == group[0]) & (lab == group[1]))
                    pending = by_group[group]
                    while pending and pending[0][0] < seen[group] + len(hits):
                        p, rid = pending.pop(0)
                        r, c = divmod(int(hits[p - seen[group]]), width)
                        found[rid] = (row + r, c0 + c)
                    seen[group] += len(hits)
                    if not pending:
                        del by_group[group]
    return found
