"""Where an evaluation counts: a mask raster and/or the blocks of one split.

``landforge evaluate --mask M`` scores only the pixels where the raster ``M`` (on the
truth's grid) is > 0; ``--split-blocks B --split test`` only the pixels inside the
polygons of ``B`` whose ``split`` column is ``test`` (a chip store writes its blocks as
``STORE/split_blocks.gpkg``), so a model is scored on pixels it never trained on. Both
together: the pixels inside both. Rasters are handled window by window (the blocks are
rasterised per window, by pixel centre), so the cost is one window of memory. Table
rows (e.g. parcels) count by their representative point: inside a block of the split,
on a mask pixel > 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landforge.errors import InputError
from landforge.io.raster import RasterGrid, check_same_grid, open_raster, read_grid

__all__ = ["Region", "load_region", "rows_in_region"]

#: the column of a split-blocks layer naming each block's split
SPLIT_COLUMN = "split"


@dataclass
class Region:
    """A mask raster and/or the blocks of one split (``None`` parts: no restriction).

    Attributes:
        mask: raster whose pixels > 0 (and not nodata) are evaluated.
        split_blocks: the layer the blocks come from.
        split: the split whose blocks are evaluated.
        blocks: the blocks of ``split`` (a GeoDataFrame), or None.
        n_blocks: how many blocks ``split`` has.
    """

    mask: Path | None = None
    split_blocks: Path | None = None
    split: str | None = None
    blocks: Any = None
    n_blocks: int = 0
    _tree: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------- rasters
    def for_grid(self, grid: RasterGrid) -> Region:
        """This region with its blocks in ``grid``'s CRS and the mask checked against it.

        Raises:
            InputError: the mask is missing, unreadable or on another grid.
        """
        import shapely

        if self.mask is not None:
            read_grid(self.mask, require_crs=False)
            check_same_grid(grid, self.mask)
        blocks = self.blocks
        if blocks is not None:
            blocks = _to_crs(blocks, grid.crs)
        out = Region(self.mask, self.split_blocks, self.split, blocks, self.n_blocks)
        if blocks is not None:
            out._tree = shapely.STRtree(np.asarray(blocks.geometry.values))
        return out

    def window_mask(self, grid: RasterGrid, window: Any, mask_src: Any = None) -> np.ndarray:
        """Pixels of ``window`` inside the region (``mask_src``: the open mask raster)."""
        from rasterio.features import rasterize
        from shapely.geometry import box

        h, w = int(window.height), int(window.width)
        inside = np.ones((h, w), dtype=bool)
        if mask_src is not None:
            m = mask_src.read(1, window=window, masked=True)
            inside &= np.asarray(np.ma.filled(m > 0, False), dtype=bool)
        if self._tree is not None:
            sub = grid.window_grid(window)
            hits = self._tree.query(box(*sub.bounds), predicate="intersects")
            geoms = np.asarray(self.blocks.geometry.values)[hits]
            if len(geoms) == 0:
                inside[:] = False
            else:
                burnt = rasterize(
                    ((g, 1) for g in geoms),
                    out_shape=(h, w),
                    transform=sub.transform,
                    fill=0,
                    dtype="uint8",
                )
                inside &= burnt.astype(bool)
        return inside

    def open_mask(self) -> Any:
        """A context manager opening the mask raster (a null context without one)."""
        import contextlib

        return open_raster(self.mask) if self.mask is not None else contextlib.nullcontext()

    # ---------------------------------------------------------------- tables
    def rows_inside(self, df: Any, path: Path) -> np.ndarray:
        """Rows of the (Geo)DataFrame ``df`` whose representative point is in the region.

        Raises:
            InputError: ``df`` has no geometry (naming ``path``).
        """
        import shapely

        geoms = _geometries(df)
        if geoms is None:
            raise InputError(
                path,
                "has no geometry: cannot tell which rows lie inside the split blocks or mask",
            )
        inside = np.ones(len(df), dtype=bool)
        has = ~(geoms.isna() | geoms.is_empty).to_numpy()
        inside &= has
        points = geoms.representative_point()
        if self.blocks is not None:
            blocks = _to_crs(self.blocks, geoms.crs)
            area = shapely.union_all(np.asarray(blocks.geometry.values))
            xy = shapely.get_coordinates(np.asarray(points[has].values))
            ok = np.zeros(len(df), dtype=bool)
            ok[has] = shapely.intersects_xy(area, xy[:, 0], xy[:, 1])
            inside &= ok
        if self.mask is not None:
            inside &= _on_mask(self.mask, points, has)
        return inside

    # ---------------------------------------------------------------- record
    def describe(self, count: int, unit: str) -> dict[str, Any]:
        """The ``evaluated_on`` entry of the metrics: what was scored and how much."""
        out: dict[str, Any] = {}
        if self.split_blocks is not None:
            out.update(split=self.split, split_blocks=str(self.split_blocks), blocks=self.n_blocks)
        if self.mask is not None:
            out["mask"] = str(self.mask)
        out[unit] = int(count)
        return out


def load_region(
    mask: str | os.PathLike[str] | None,
    split_blocks: str | os.PathLike[str] | None,
    split: str,
) -> Region | None:
    """The region of an evaluation, or None when neither a mask nor blocks are given.

    Args:
        mask: raster: evaluate where it is > 0.
        split_blocks: polygons with a ``split`` column (any vector format).
        split: the split whose blocks are evaluated (e.g. ``test``).

    Raises:
        InputError: a missing or unreadable file, no ``split`` column, or no block of
            ``split`` (naming the file and the splits it has).
    """
    if mask is None and split_blocks is None:
        return None
    region = Region()
    if mask is not None:
        region.mask = Path(mask)
        read_grid(region.mask, require_crs=False)  # a missing mask is named first
    if split_blocks is not None:
        from landforge.io.vector import read_vector

        path = Path(split_blocks)
        layer = read_vector(path, require_crs=False)
        if SPLIT_COLUMN not in layer.columns:
            have = ", ".join(str(c) for c in layer.columns if c != "geometry")
            raise InputError(path, f"no column {SPLIT_COLUMN!r} (it has: {have})")
        names = layer[SPLIT_COLUMN].astype(str)
        chosen = layer[(names == split).to_numpy()]
        if len(chosen) == 0:
            found = ", ".join(sorted(set(names))) or "none"
            raise InputError(path, f"no block of split {split!r} (splits: {found})")
        region.split_blocks, region.split = path, split
        region.blocks, region.n_blocks = chosen, len(chosen)
    return region


def rows_in_region(
    region: Region,
    pdf: Any,
    tdf: Any,
    pred_path: Path,
    truth_path: Path,
    key: str | None,
    same: bool,
) -> tuple[Any, Any]:
    """The prediction and truth rows inside ``region`` (by representative point).

    Each table with geometries is filtered by its own; a table without follows the
    other on ``key``, or on row order when both have as many rows.

    Raises:
        InputError: neither table has geometries (naming the truth).
    """
    if same:
        kept = pdf[region.rows_inside(pdf, pred_path)]
        return kept, kept
    t_geo, p_geo = _geometries(tdf) is not None, _geometries(pdf) is not None
    if not (t_geo or p_geo):
        region.rows_inside(tdf, truth_path)  # raises: no geometry to place the rows
    if t_geo and p_geo:
        return pdf[region.rows_inside(pdf, pred_path)], tdf[region.rows_inside(tdf, truth_path)]
    # one table has geometries: the other follows it on the key, or on row order
    geo, path = (tdf, truth_path) if t_geo else (pdf, pred_path)
    inside = region.rows_inside(geo, path)
    other = pdf if t_geo else tdf
    if key:
        other = other[other[key].isin(geo[key][inside])]
    elif len(other) == len(geo):
        other = other[inside]
    geo = geo[inside]
    return (other, geo) if t_geo else (geo, other)


def _to_crs(gdf: Any, crs: Any) -> Any:
    """``gdf`` in ``crs`` (unchanged when either has no CRS or they are equal)."""
    if crs is None or gdf.crs is None or gdf.crs == crs:
        return gdf
    return gdf.to_crs(crs)


def _geometries(df: Any) -> Any | None:
    """The active geometry column of ``df``, or None."""
    import geopandas as gpd

    if not isinstance(df, gpd.GeoDataFrame):
        return None
    try:
        return df.geometry
    except AttributeError:  # a GeoDataFrame without an active geometry column
        return None


def _on_mask(mask: Path, points: Any, has: np.ndarray) -> np.ndarray:
    """Whether each point (``has``: not empty) falls on a mask pixel > 0."""
    import shapely

    out = np.zeros(len(points), dtype=bool)
    with open_raster(mask) as src:
        pts = points[has]
        if points.crs is not None and src.crs is not None and points.crs != src.crs:
            pts = pts.to_crs(src.crs)
        xy = shapely.get_coordinates(np.asarray(pts.values))
        cols, rows = ~src.transform @ (xy[:, 0], xy[:, 1])
        rows = np.floor(np.asarray(rows, dtype=np.float64))
        cols = np.floor(np.asarray(cols, dtype=np.float64))
        ok = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
        values = np.zeros(len(xy), dtype=bool)
        if ok.any():
            sampled = src.sample([tuple(p) for p in xy[ok]], indexes=1, masked=True)
            values[ok] = [bool(np.ma.filled(v > 0, False)[0]) for v in sampled]
        out[has] = values
    return out
