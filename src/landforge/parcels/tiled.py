"""Tiled parcel generation: the same parcels as :func:`generate_parcels`, area by area.

The boundary's bounding box is cut into square tile *cores* of ``tile_m``; each tile is
processed on its core grown by an overlap margin (the *padded* tile). Parcels are the
opening of road-bounded blocks, and the opening of a block depends on that block alone
(:func:`~landforge.parcels.generate.parcels_from_blocks`), so a tile only has to find
whole blocks. The rule:

* A block found in the padded tile is **complete** if it stays clear of the padded
  tile's edge (by more than 1 cm); it is then the block the untiled run finds.
* A tile keeps the complete blocks that **meet its core**. The cores cover the
  boundary, so every block meets at least one core.
* If an **incomplete** (cut) block meets the core, the margin was too small for it
  (e.g. a park larger than the margin): the tile is re-done with the margin doubled on
  the sides such blocks are cut at,
  until no cut block meets the core (at the latest when the padded tile holds the whole
  boundary, where no block can be cut).
* A block that crosses a core edge can be kept by two or more tiles; those copies are
  merged: parcels of different blocks never overlap, so two parcels from different
  tiles that overlap (by more than half the smaller one) are one parcel, kept once.

Why this is exact: take a block B and a tile T whose core B meets. In T's final padded
tile, the piece of B that meets the core is either all of B, or it is cut by the tile
edge and would have forced another round. Hence T finds B whole and keeps it; no tile
keeps a cut piece; copies are merged. Ownership does not rest on a single point, so it
cannot flip with floating noise (``point_on_surface`` of two copies of a block that
differ by 1e-9 m can lie metres apart, where a block has two equally wide spans).

The per-tile function is the same in every mode: called in-process (default), on a local
Dask cluster, or on a remote Dask scheduler given by address (ARCHITECTURE.md,
"scale-out is a scheduler choice").
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from landforge.distributed import dask_client, is_inprocess
from landforge.errors import InputError
from landforge.parcels.generate import (
    block_area,
    merge_roads,
    parcel_frame,
    parcels_from_blocks,
    prepare_roads,
    road_blocks,
    road_buffers,
)
from landforge.parcels.options import ParcelOptions, TiledParcelOptions

__all__ = ["DEFAULT_OVERLAP_M", "generate_parcels_tiled"]

#: Default overlap margin (m): wider than most urban blocks, so few tiles need a 2nd round.
DEFAULT_OVERLAP_M = 500.0

_EDGE_TOL_M = 0.01  # a block this close to the padded tile edge counts as cut
_CONNECT_TIMEOUT_S = 5.0
_NO_GROWTH = (False, False, False, False)


@dataclass(frozen=True)
class _Tile:
    """One unit of work: a tile core, its padded box and the inputs inside the box."""

    i: int
    j: int
    core: tuple[float, float, float, float]
    padded: tuple[float, float, float, float]
    lines: np.ndarray
    half: np.ndarray
    area: Any  # boundary (as block_area gives it) clipped to the padded box
    whole: bool  # the padded box holds the whole boundary: no block can be cut
    cfg: ParcelOptions


@dataclass(frozen=True)
class _TileResult:
    i: int
    j: int
    parcels: np.ndarray
    grow: tuple[bool, bool, bool, bool]  # sides (W, S, E, N) a cut block crosses to the core
    n_blocks: int
    shared: np.ndarray | None = None  # per parcel: its block crosses a core edge


def tile_parcels(tile: _Tile) -> _TileResult:
    """Parcels of the whole blocks meeting the core, or the sides to grow the margin on.

    Pure function of its argument (no I/O, no globals), so it can run on any Dask worker.
    """
    empty = np.empty(0, dtype=object)
    if shapely.is_empty(tile.area) or len(tile.lines) == 0:
        # no roads: the whole clipped boundary is one block, cut unless it is whole
        blocks = shapely.get_parts(np.asarray([tile.area], dtype=object))
    else:
        blocks = road_blocks(tile.area, road_buffers(tile.lines, tile.half, tile.cfg))
    blocks = blocks[~shapely.is_empty(blocks)]
    if len(blocks) == 0:
        return _TileResult(tile.i, tile.j, empty, _NO_GROWTH, 0)
    core = shapely.box(*tile.core)
    if tile.whole:
        cut = np.zeros(len(blocks), dtype=bool)
    else:
        edge = shapely.box(*tile.padded).exterior
        cut = shapely.dwithin(blocks, edge, _EDGE_TOL_M)
        reach = blocks[cut & shapely.intersects(blocks, core)]
        if len(reach):  # grow only the sides these blocks cross
            x0, y0, x1, y1 = tile.padded
            sides = [((x0, y0), (x0, y1)), ((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))]
            sides.append(((x0, y1), (x1, y1)))
            grow = tuple(
                bool(shapely.dwithin(reach, shapely.LineString(side), _EDGE_TOL_M).any())
                for side in sides
            )
            return _TileResult(tile.i, tile.j, empty, grow, len(blocks))  # type: ignore[arg-type]
    keep = ~cut & shapely.intersects(blocks, core)
    owned = blocks[keep]
    # blocks crossing a core edge may also be kept by a neighbour: flag their parcels
    shared = shapely.dwithin(owned, core.exterior, _EDGE_TOL_M)
    parcels, source = parcels_from_blocks(owned, tile.cfg, return_index=True)
    return _TileResult(tile.i, tile.j, parcels, _NO_GROWTH, len(blocks), shared[source])


def _merge_copies(parcels: np.ndarray, shared: np.ndarray, tile_no: np.ndarray) -> np.ndarray:
    """Drop the second and later copies of parcels found by more than one tile.

    Returns a boolean mask of the parcels to keep (the copy of the lowest tile number).
    """
    keep = np.ones(len(parcels), dtype=bool)
    idx = np.flatnonzero(shared)
    if len(idx) < 2:
        return keep
    cand = parcels[idx]
    left, right = shapely.STRtree(cand).query(cand, predicate="intersects")
    pair = (left < right) & (tile_no[idx[left]] != tile_no[idx[right]])
    left, right = left[pair], right[pair]
    if len(left) == 0:
        return keep
    inter = shapely.area(shapely.intersection(cand[left], cand[right]))
    smaller = np.minimum(shapely.area(cand[left]), shapely.area(cand[right]))
    same = inter > 0.5 * smaller
    left, right = idx[left[same]], idx[right[same]]
    later = np.where(tile_no[left] > tile_no[right], left, right)
    keep[later] = False
    return keep


def generate_parcels_tiled(
    roads: gpd.GeoDataFrame,
    boundary: gpd.GeoDataFrame | None = None,
    opts: ParcelOptions | Mapping[str, Any] | None = None,
    *,
    pois: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
    scheduler: Any = None,
    workers: int = 2,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """:func:`generate_parcels` computed tile by tile, in-process or on a Dask cluster.

    The result equals the untiled run (same parcels, geometries equal up to floating
    noise); only the order differs: parcels are sorted by centroid (x, then y, to the
    millimetre) and numbered 1..n in that order, whatever the tiling.

    Args:
        roads: road lines, as for :func:`generate_parcels`.
        boundary: polygon(s) to split; default the bounding box of the roads.
        opts: options, see :class:`~landforge.parcels.options.TiledParcelOptions`: those
            of :func:`generate_parcels` plus ``tile_m`` (side of a tile core in metres)
            and ``overlap_m`` (margin round each core, default
            :data:`DEFAULT_OVERLAP_M`; a tile where a block is larger than the margin
            is re-done with the margin doubled).
        pois: POI points for the centre estimate, as for :func:`generate_parcels`.
        districts: district polygons, as for :func:`generate_parcels`.
        scheduler: ``None`` runs in-process; ``"local"`` starts a local Dask cluster of
            ``workers`` single-threaded processes; ``"tcp://host:port"`` uses a running
            Dask scheduler; a ``distributed.Client`` is used as is.
        workers: number of worker processes for ``scheduler="local"``.
        **overrides: option fields replacing those of ``opts`` (``tile_m=500``).

    Returns:
        Parcels as from :func:`generate_parcels`.

    Raises:
        OptionError: a bad option value (e.g. a tile size or margin <= 0).
        InputError: bad inputs (as :func:`generate_parcels`) or a scheduler that does
            not answer within 5 s.
    """
    topts = TiledParcelOptions.build(opts, **overrides)
    tile_m = float(topts.tile_m)
    margin = DEFAULT_OVERLAP_M if topts.overlap_m is None else float(topts.overlap_m)
    cfg = ParcelOptions.build(topts)  # what each tile needs (pickled to Dask workers)
    prep = prepare_roads(roads, boundary, cfg, pois=pois, districts=districts)
    shapely.prepare(prep.area)
    if not shapely.dwithin(prep.lines, prep.area, prep.half).any():
        raise InputError(
            "boundary", "no road meets the boundary; check that both cover the same area"
        )
    bx0, by0, bx1, by1 = shapely.bounds(prep.area)
    nx = max(1, math.ceil((bx1 - bx0) / tile_m))
    ny = max(1, math.ceil((by1 - by0) / tile_m))
    # joined once for the whole network (each tile clips them to its surroundings)
    lines, half = merge_roads(prep.lines, prep.half)
    tree = shapely.STRtree(lines)
    max_half = float(half.max())
    area = block_area(prep.area, cfg)

    def make_tile(i: int, j: int, pad: list[float], first: bool = False) -> _Tile | None:
        cx0, cy0 = bx0 + i * tile_m, by0 + j * tile_m
        core = (cx0, cy0, cx0 + tile_m, cy0 + tile_m)
        core_box = shapely.box(*core)
        if first and not shapely.intersects(prep.area, core_box):
            return None  # nothing of the boundary here
        padded = (core[0] - pad[0], core[1] - pad[1], core[2] + pad[2], core[3] + pad[3])
        box = shapely.box(*padded)
        idx = tree.query(box, predicate="dwithin", distance=max_half)
        whole = (
            padded[0] < bx0 - 1.0
            and padded[1] < by0 - 1.0
            and padded[2] > bx1 + 1.0
            and padded[3] > by1 + 1.0
        )
        tile_area = area if whole else shapely.intersection(area, box)
        idx.sort()
        tile_lines = lines[idx]
        if not whole:
            # Joined roads can run across many tiles: keep only their part near this
            # tile, so a tile's work does not grow with the city (cost per km² flat).
            # Every point of the padded box within a road's half width has its nearest
            # road point within max_half of the box, so the buffers there are the same
            # shape; GEOS simplifies each buffered line as a whole, so their vertices
            # can differ by a few millimetres (measured <= 6 mm).
            reach = max_half + 1.0
            tile_lines = shapely.clip_by_rect(
                tile_lines, padded[0] - reach, padded[1] - reach, padded[2] + reach,
                padded[3] + reach,
            )  # fmt: skip
        return _Tile(i, j, core, padded, tile_lines, half[idx], tile_area, whole, cfg)

    tiles = [
        t
        for i in range(nx)
        for j in range(ny)
        if (t := make_tile(i, j, [margin] * 4, first=True)) is not None
    ]
    pads = {(t.i, t.j): [margin] * 4 for t in tiles}

    def regrow(result: _TileResult) -> _Tile:
        pad = pads[result.i, result.j]
        for side, crossed in enumerate(result.grow):
            if crossed:  # double the margin on the sides a cut block crosses
                pad[side] *= 2.0
        tile = make_tile(result.i, result.j, pad)
        assert tile is not None
        return tile

    with _executor(scheduler, workers) as run:
        results = list(run(tile_parcels, tiles, regrow))
    results = [r for r in results if len(r.parcels)]
    if results:
        parcels = np.concatenate([r.parcels for r in results])
        shared = np.concatenate([r.shared for r in results if r.shared is not None])
        tile_no = np.concatenate([np.full(len(r.parcels), r.i * ny + r.j) for r in results])
        parcels = parcels[_merge_copies(parcels, shared, tile_no)]
    else:
        parcels = np.empty(0, dtype=object)
    # ids by centroid (x, then y, to the mm): stable under the floating noise between runs
    centres = shapely.centroid(parcels)
    order = np.lexsort((np.round(shapely.get_y(centres), 3), np.round(shapely.get_x(centres), 3)))
    return parcel_frame(parcels[order], prep.crs, prep.centre, districts=prep.districts)


_Run = Callable[
    [Callable[[_Tile], _TileResult], list[_Tile], Callable[[_TileResult], _Tile]],
    Iterator[_TileResult],
]


class _executor:
    """Context manager giving ``run(fn, tiles, regrow)``: results, re-running grown tiles.

    The Dask client comes from :func:`landforge.distributed.dask_client` (shared with
    block-wise prediction).
    """

    def __init__(self, scheduler: Any, workers: int) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Run:
        if is_inprocess(self.scheduler):
            return _run_inprocess
        client = self._stack.enter_context(
            dask_client(self.scheduler, self.workers, timeout=_CONNECT_TIMEOUT_S)
        )
        return lambda fn, tiles, regrow: _run_dask(client, fn, tiles, regrow)

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _run_inprocess(
    fn: Callable[[_Tile], _TileResult],
    tiles: Iterable[_Tile],
    regrow: Callable[[_TileResult], _Tile],
) -> Iterator[_TileResult]:
    for tile in tiles:
        result = fn(tile)
        while any(result.grow):
            result = fn(regrow(result))
        yield result


def _run_dask(
    client: Any,
    fn: Callable[[_Tile], _TileResult],
    tiles: list[_Tile],
    regrow: Callable[[_TileResult], _Tile],
) -> Iterator[_TileResult]:
    from dask.distributed import as_completed

    futures = client.map(fn, tiles, pure=False)
    done = as_completed(futures)
    for future in done:
        result = future.result()
        future.release()
        if any(result.grow):
            done.add(client.submit(fn, regrow(result), pure=False))
        else:
            yield result
