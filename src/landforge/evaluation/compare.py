"""Product comparison (UBGG): an external land-cover map against a landforge map.

The external product (ESA WorldCover, Esri LULC, GlobeLand30, or any legend written as
a taxonomy class system) is reclassified into a target class system through a
taxonomy mapping, both maps are rolled up to one level of it (UBGG: UBS / UGS / UIS),
and they are compared pixel by pixel on the map's grid, block by block:

* agreement metrics from one confusion matrix (:class:`ConfusionMatrix`), with the
  **product as reference** (rows) and the landforge map as prediction (columns): OA,
  kappa, per-class precision / recall / F1 / IoU;
* a three-state difference map for one ``focus`` class (a COG): 1 agree (both have the
  focus class or both have another class), 2 under (the product has it, the map not),
  3 over (the map has it, the product not); 0 where either map has no target class
  (nodata, or a product class the mapping ignores, such as bare land).

The grids must be equal, or the product is warped onto the map's grid with nearest
resampling when ``resample`` is set; otherwise the comparison stops naming both files
before anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landforge.config import jsonable
from landforge.errors import InputError, OptionError
from landforge.evaluation.compare_options import CompareOptions
from landforge.evaluation.confusion import ConfusionMatrix
from landforge.io.atomic import atomic_path
from landforge.io.raster import RasterGrid, StagedCOG, check_same_grid, open_raster, read_grid
from landforge.taxonomy import CategoryMapping, ClassSystem, load_mapping, load_taxonomy

__all__ = ["DIFF_STATES", "compare_products", "target_lut"]

#: values of the difference map
DIFF_STATES = {0: "nodata", 1: "agree", 2: "under", 3: "over"}
_DIFF_COLOURS = {0: (0, 0, 0), 1: (200, 200, 200), 2: (215, 48, 39), 3: (69, 117, 180)}


def target_lut(
    legend: ClassSystem | CategoryMapping, target: ClassSystem, level: int
) -> np.ndarray:
    """Lookup table: raster value -> 1-based index of the target class at ``level``.

    0 marks values with no target class (nodata, unknown, or ignored by the mapping).
    """
    codes = [c.code for c in target.at_level(level)]
    index = {code: i + 1 for i, code in enumerate(codes)}
    lut = np.zeros(65536, np.uint8)
    if isinstance(legend, CategoryMapping):
        source = legend.source_system()
        if source is None:
            raise InputError(str(legend.path or legend.name), "the legend must map a class system")
        for c in source.valued():
            hit = legend.map(c.code, level=level)
            if hit is not None and c.value is not None:
                lut[int(c.value)] = index[hit]
    else:
        for c in legend.valued():
            if c.value is not None and c.level >= level:
                lut[int(c.value)] = index[legend.ancestor(c.code, level).code]
    return lut


def _legends(
    o: CompareOptions,
) -> tuple[CategoryMapping, ClassSystem | CategoryMapping, ClassSystem]:
    product = load_mapping(o.legend)
    target = product.target_system()
    if o.level >= len(target.levels):
        raise OptionError("level", f"{target.name} has {len(target.levels)} level(s)")
    own: ClassSystem | CategoryMapping = target
    if o.map_legend is not None:
        own = load_taxonomy(o.map_legend)
        name = own.target if isinstance(own, CategoryMapping) else own.name
        if name != target.name:
            raise OptionError(
                "map_legend", f"maps to {name!r}, the product's legend to {target.name!r}"
            )
    if o.focus not in [c.code for c in target.at_level(o.level)]:
        known = ", ".join(c.code for c in target.at_level(o.level))
        raise OptionError("focus", f"{o.focus!r} is not a class at level {o.level}; one of {known}")
    return product, own, target


def _check_grids(map_path: Path, product: Path, resample: bool) -> RasterGrid:
    grid = read_grid(map_path)
    try:
        check_same_grid(grid, product)
    except InputError as exc:
        if not resample:
            raise InputError(
                product,
                f"not on the grid of {map_path} ({exc.problem}); align them or set resample "
                "to warp the product onto the map's grid (nearest)",
            ) from None
        with open_raster(product) as src:
            if src.crs is None:
                raise InputError(
                    product, "raster has no CRS, cannot warp it onto the map"
                ) from None
    return grid


def compare_products(
    map_path: str | os.PathLike[str],
    product: str | os.PathLike[str],
    opts: CompareOptions | dict[str, Any] | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    diff: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Compare ``product`` (reference) with a landforge ``map_path`` (see module doc).

    Args:
        map_path: the landforge class map (the grid of the comparison).
        product: the external land-cover raster.
        opts: :class:`CompareOptions`; ``overrides`` replace its fields.
        **overrides: option fields replacing those of ``opts``.
        out: metrics JSON to write.
        diff: difference-map COG to write (uint8, 0 nodata, 1 agree, 2 under, 3 over).

    Returns:
        the metrics (``landforge-metrics/1`` plus ``focus`` counts and ``inputs``).

    Raises:
        OptionError: an unknown focus class or level, a map legend for another target.
        InputError: unreadable rasters, a missing band, grids that differ without
            ``resample``, a legend naming classes its system lacks.
    """
    o = CompareOptions.build(opts, **overrides)
    map_path, product = Path(map_path), Path(product)
    legend, own, target = _legends(o)
    grid = _check_grids(map_path, product, o.resample)
    lut_product = target_lut(legend, target, o.level)
    lut_map = target_lut(own, target, o.level)
    codes = [c.code for c in target.at_level(o.level)]
    focus = codes.index(o.focus) + 1
    cm = ConfusionMatrix(labels=range(1, len(codes) + 1), names=codes, ignore=[0])
    counts = np.zeros(4, np.int64)
    staged = None
    try:
        with open_raster(map_path) as msrc, open_raster(product) as psrc:
            _band(msrc.count, o.band, "band", map_path)
            _band(psrc.count, o.product_band, "product_band", product)
            reader = psrc
            if o.resample:
                from rasterio.enums import Resampling
                from rasterio.vrt import WarpedVRT

                reader = WarpedVRT(
                    psrc, crs=grid.crs, transform=grid.transform, width=grid.width,
                    height=grid.height, resampling=Resampling.nearest,
                )  # fmt: skip
            if diff is not None:
                staged = StagedCOG(
                    diff, grid, 1, np.uint8, 0, ["agree=1,under=2,over=3"], _DIFF_COLOURS,
                    {"focus": o.focus, "legend": o.legend},
                )  # fmt: skip
            for row in range(0, grid.height, o.block):
                window = Window(0, row, grid.width, min(o.block, grid.height - row))
                ours = _classes(msrc.read(o.band, window=window, masked=True), lut_map)
                theirs = _classes(
                    reader.read(o.product_band, window=window, masked=True), lut_product
                )
                cm.update(theirs, ours)
                state = _states(theirs, ours, focus)
                counts += np.bincount(state.ravel(), minlength=4)
                if staged is not None:
                    staged.write(state, row)
            if reader is not psrc:
                reader.close()
        if staged is not None:
            if out is not None:  # fail on an unwritable metrics path before the COG lands
                Path(out).parent.mkdir(parents=True, exist_ok=True)
            staged.finish()
            staged = None
    except BaseException:
        if staged is not None:
            staged.abort()
        raise
    metrics = cm.summary(
        task=f"{product.name} (reference) vs {map_path.name} at {target.name} level {o.level}"
    )
    area = float(grid.res[0] * grid.res[1])
    compared = int(counts[1:].sum())
    metrics["focus"] = {
        "class": o.focus,
        **{DIFF_STATES[s]: int(counts[s]) for s in range(4)},
        "agree_fraction": float(counts[1] / compared) if compared else None,
        "pixel_area": area,
    }
    metrics["inputs"] = {
        "map": str(map_path), "product": str(product), "legend": o.legend,
        "map_legend": o.map_legend or target.name, "level": o.level, "resampled": o.resample,
    }  # fmt: skip
    if out is not None:
        with atomic_path(out) as tmp:
            Path(tmp).write_text(json.dumps(jsonable(metrics), indent=2))
    return metrics


def _classes(data: np.ma.MaskedArray, lut: np.ndarray) -> np.ndarray:
    """Target class index (0 = none) of every pixel of a masked block."""
    values = np.ma.getdata(data)
    ok = ~np.ma.getmaskarray(data)
    if values.dtype.kind == "f":
        ok &= np.isfinite(values) & (values == np.floor(values))
    ok &= (values >= 0) & (values < lut.size)
    out = np.zeros(values.shape, np.uint8)
    out[ok] = lut[values[ok].astype(np.int64)]
    return out


def _states(reference: np.ndarray, ours: np.ndarray, focus: int) -> np.ndarray:
    """Difference states: 0 nodata, 1 agree, 2 under, 3 over (about ``focus``)."""
    both = (reference > 0) & (ours > 0)
    ref_f, our_f = reference == focus, ours == focus
    state = np.where(ref_f == our_f, 1, np.where(ref_f, 2, 3)).astype(np.uint8)
    state[~both] = 0
    return state


def _band(count: int, band: int, field: str, path: Path) -> None:
    if not 1 <= band <= count:
        raise OptionError(field, f"band {band} does not exist: {path.name} has {count} band(s)")
