"""Building polygons from a predicted class map, block by block.

A building is a 4-connected component of footprint pixels (class map value > 0 and not
nodata; the predictor already applied the footprint-probability threshold). Each
polygon carries the majority use of its pixels (as in the building-use paper, where a
building's use is the majority of its pixel predictions), the fraction of each use,
its area and, given the footprint probability raster, the mean probability as a
confidence.

The map is processed in ``block`` x ``block`` pieces so that a city-sized map never sits
in memory whole. Components are labelled per block with ``scipy.ndimage.label``; labels
that touch across a block seam are joined (a union-find over the seam pixel pairs,
solved as connected components of a sparse graph), so a building crossing a seam is
one polygon. Pieces are polygonised in integer pixel coordinates, where pieces of one
building share their seam edges exactly, unioned, then mapped to the grid CRS.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components

from landforge.errors import InputError
from landforge.inference.constants import tagged_class_names
from landforge.inference.options import VectorizeOptions
from landforge.io.raster import RasterGrid, check_same_grid, open_raster
from landforge.taxonomy import load_classes

__all__ = ["vectorize_buildings", "map_class_names"]

_FOUR = ndimage.generate_binary_structure(2, 1)


def map_class_names(
    map_path: str | os.PathLike[str], class_names: Mapping[int, str] | None = None
) -> dict[int, str]:
    """Class value -> name for a class map: given, else the map's tag, else the taxonomy.

    The predictor writes the names in the ``LANDFORGE_CLASSES`` tag; without it the
    ``rci`` class system (residential 1, commercial 2, industrial 3) is assumed.
    """
    if class_names:
        return {int(k): str(v) for k, v in class_names.items()}
    with open_raster(map_path) as src:
        tagged = tagged_class_names(src)
    if tagged:
        return tagged
    return dict(load_classes("rci").label_values())


def vectorize_buildings(
    map_path: str | os.PathLike[str],
    footprint_prob: str | os.PathLike[str] | None = None,
    opts: VectorizeOptions | None = None,
    *,
    class_names: Mapping[int, str] | None = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Building polygons with their use from a class map.

    Args:
        map_path: class map (uint8: 0 background, k = use class, nodata e.g. 255).
        footprint_prob: optional footprint probability raster on the same grid; its
            mean over a building is the ``confidence`` column.
        opts: :class:`~landforge.inference.options.VectorizeOptions` (simplification
            tolerance, minimum area, block size); ``overrides`` replace its fields.
        class_names: class value -> name; default from the map (see
            :func:`map_class_names`).
        **overrides: fields of ``opts`` to replace.

    Returns:
        GeoDataFrame in the map's CRS with ``building_id``, ``use``, ``use_value``,
        ``use_fraction`` (majority share), ``frac_<name>`` per class, ``n_pixels``,
        ``area_m2``, ``confidence`` (only with ``footprint_prob``) and the polygon.

    Raises:
        InputError: unreadable rasters, a footprint raster on another grid.
    """
    o = VectorizeOptions.build(opts, **overrides)
    simplify_m, min_area_m2, block = o.simplify_m, o.min_area_m2, o.block
    names = map_class_names(map_path, class_names)
    with open_raster(map_path) as src:
        if src.crs is None:
            raise InputError(map_path, "class map has no CRS")
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        nodata = src.nodata
        if footprint_prob is not None:
            check_same_grid(grid, footprint_prob)
        offsets, n_labels, pairs, max_value = _label_pass(src, grid, block, nodata)
        comp, n_comp = _resolve(n_labels, pairs)
        n_values = max(max_value, max(names, default=0)) + 1
        stats, pieces = _stats_pass(
            src, footprint_prob, grid, block, nodata, offsets, comp, n_comp, n_values
        )
    return _assemble(
        grid, names, stats, pieces, n_values, simplify_m, min_area_m2, footprint_prob is not None
    )


def _blocks(grid: RasterGrid, block: int) -> Iterator[tuple[int, int, Window]]:
    for bi, row in enumerate(range(0, grid.height, block)):
        for bj, col in enumerate(range(0, grid.width, block)):
            yield (
                bi,
                bj,
                Window(col, row, min(block, grid.width - col), min(block, grid.height - row)),
            )


def _footprint(values: np.ndarray, nodata: float | None) -> np.ndarray:
    fg = values > 0
    if nodata is not None:
        fg &= values != nodata
    return fg


def _label_pass(
    src: Any, grid: RasterGrid, block: int, nodata: float | None
) -> tuple[dict[tuple[int, int], int], int, np.ndarray, int]:
    """Label blocks; return per-block label offsets, label count, seam pairs, max class."""
    offsets: dict[tuple[int, int], int] = {}
    total = 0
    pairs: list[np.ndarray] = []
    bottom: dict[int, np.ndarray] = {}  # bj -> global labels of the previous block row's last row
    right: np.ndarray | None = None
    max_value = 0
    for bi, bj, win in _blocks(grid, block):
        values = src.read(1, window=win)
        fg = _footprint(values, nodata)
        if fg.any():
            max_value = max(max_value, int(values[fg].max()))
        labels, n = ndimage.label(fg, structure=_FOUR)
        labels = labels.astype(np.int64)
        labels[fg] += total
        offsets[(bi, bj)] = total
        total += n
        if bi > 0:
            above = bottom[bj]
            both = (above > 0) & (labels[0] > 0)
            pairs.append(np.stack([above[both], labels[0][both]], axis=1))
        if bj > 0 and right is not None:
            both = (right > 0) & (labels[:, 0] > 0)
            pairs.append(np.stack([right[both], labels[:, 0][both]], axis=1))
        bottom[bj] = labels[-1].copy()
        right = labels[:, -1].copy()
    seam = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    return offsets, total, seam, max_value


def _resolve(n_labels: int, pairs: np.ndarray) -> tuple[np.ndarray, int]:
    """Component id (0-based) per global label 1..n (index 0 unused)."""
    n = n_labels + 1
    graph = sparse.coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n)
    )
    _, comp = connected_components(graph, directed=False)
    # renumber so components are 0..C-1 over labels 1..n (label 0 is background)
    uniq, compact = np.unique(comp[1:], return_inverse=True)
    out = np.full(n, -1, dtype=np.int64)
    out[1:] = compact
    return out, len(uniq)


def _stats_pass(
    src: Any,
    footprint_prob: str | os.PathLike[str] | None,
    grid: RasterGrid,
    block: int,
    nodata: float | None,
    offsets: Mapping[tuple[int, int], int],
    comp: np.ndarray,
    n_comp: int,
    n_values: int,
) -> tuple[dict[str, np.ndarray], dict[int, list[Any]]]:
    counts = np.zeros(n_comp * n_values, dtype=np.int64)
    fp_sum = np.zeros(n_comp, dtype=np.float64)
    fp_n = np.zeros(n_comp, dtype=np.int64)
    pieces: dict[int, list[Any]] = defaultdict(list)
    with contextlib.ExitStack() as stack:
        fp_src = None
        if footprint_prob is not None:
            fp_src = stack.enter_context(open_raster(footprint_prob))
        for bi, bj, win in _blocks(grid, block):
            values = src.read(1, window=win)
            fg = _footprint(values, nodata)
            if not fg.any():
                continue
            labels, _ = ndimage.label(fg, structure=_FOUR)
            ids = comp[labels[fg].astype(np.int64) + offsets[(bi, bj)]]
            counts += np.bincount(
                ids * n_values + values[fg].astype(np.int64), minlength=len(counts)
            )
            if fp_src is not None:
                fp = fp_src.read(1, window=win, out_dtype="float64")[fg]
                ok = np.isfinite(fp)
                if fp_src.nodata is not None and np.isfinite(fp_src.nodata):
                    ok &= fp != fp_src.nodata
                fp_sum += np.bincount(ids[ok], weights=fp[ok], minlength=n_comp)
                fp_n += np.bincount(ids[ok], minlength=n_comp)
            block_comp = np.zeros(labels.shape, dtype=np.int32)
            block_comp[fg] = ids + 1
            # integer pixel coordinates: pieces of one building share seam edges exactly
            shift = Affine.translation(int(win.col_off), int(win.row_off))
            for geom, value in rasterio.features.shapes(
                block_comp, mask=fg, connectivity=4, transform=shift
            ):
                pieces[int(value) - 1].append(shapely.geometry.shape(geom))
    stats = {"counts": counts.reshape(n_comp, n_values), "fp_sum": fp_sum, "fp_n": fp_n}
    return stats, pieces


def _assemble(
    grid: RasterGrid,
    names: Mapping[int, str],
    stats: Mapping[str, np.ndarray],
    pieces: Mapping[int, list[Any]],
    n_values: int,
    simplify_m: float,
    min_area_m2: float,
    with_confidence: bool,
) -> gpd.GeoDataFrame:
    counts = stats["counts"]
    n_pixels = counts.sum(axis=1)
    metres = _metres_per_unit(grid)
    px_area = grid.res[0] * grid.res[1] * (metres**2 if metres else 0.0)
    ids = np.arange(len(n_pixels))
    geoms = np.array(
        [pieces[i][0] if len(pieces[i]) == 1 else shapely.union_all(pieces[i]) for i in ids],
        dtype=object,
    )
    t = grid.transform

    def to_map(xy: np.ndarray) -> np.ndarray:
        col, row = xy[:, 0], xy[:, 1]
        return np.column_stack([t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f])

    geoms = shapely.transform(geoms, to_map) if len(geoms) else geoms
    if metres:
        area = n_pixels * px_area
    else:  # geographic CRS: measure in the local UTM zone
        g = gpd.GeoSeries(geoms, crs=grid.crs)
        area = g.to_crs(g.estimate_utm_crs()).area.to_numpy() if len(g) else np.zeros(0)
    keep = area >= min_area_m2
    ids, geoms, area, counts, n_pixels = (
        ids[keep],
        geoms[keep],
        area[keep],
        counts[keep],
        n_pixels[keep],
    )
    if simplify_m > 0 and len(geoms):
        tol = simplify_m / metres if metres else simplify_m / 111_320.0
        geoms = shapely.simplify(geoms, tol, preserve_topology=True)
    geoms = np.array([_polygonal(g) for g in shapely.make_valid(geoms)], dtype=object)

    use_values = sorted(v for v in names if 0 < v < n_values) or list(range(1, n_values))
    use_counts = counts[:, use_values] if len(use_values) else np.zeros((len(ids), 0))
    majority = np.asarray(use_values)[use_counts.argmax(axis=1)] if len(ids) else np.zeros(0, int)
    with np.errstate(invalid="ignore", divide="ignore"):
        fracs = use_counts / np.maximum(n_pixels, 1)[:, None]
    data: dict[str, Any] = {
        "building_id": np.arange(1, len(ids) + 1, dtype=np.int64),
        "use": [names.get(int(v), f"class_{int(v)}") for v in majority],
        "use_value": majority.astype(np.int64),
        "use_fraction": fracs.max(axis=1) if len(ids) else np.zeros(0),
    }
    for j, v in enumerate(use_values):
        data[f"frac_{names.get(v, f'class_{v}')}"] = fracs[:, j]
    data["n_pixels"] = n_pixels.astype(np.int64)
    data["area_m2"] = area.astype(np.float64)
    if with_confidence:
        with np.errstate(invalid="ignore", divide="ignore"):
            data["confidence"] = (stats["fp_sum"] / stats["fp_n"])[ids]
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=grid.crs)


def _polygonal(geom: Any) -> Any:
    """Keep only the polygonal part of a geometry returned by make_valid."""
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _metres_per_unit(grid: RasterGrid) -> float:
    """Metres per CRS unit for projected CRSs; 0.0 for geographic ones."""
    if grid.crs is None or grid.crs.is_geographic:
        return 0.0
    try:
        return float(grid.crs.linear_units_factor[1])
    except Exception:  # noqa: BLE001 - unknown units: assume metres
        return 1.0
