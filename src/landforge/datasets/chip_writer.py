"""Writing a chip store: an image (+ extra bands) and label rasters cut into chips.

A chip store is a directory::

    STORE/index.parquet   GeoParquet, one row per chip: chip_id, file, row, col, height,
                          width, block_row, block_col, split, valid_fraction, per-label
                          class counts (``<label>_<value>``), geometry = chip bounds
                          (CRS of the image)
    STORE/chips/<chip_id>.npz
                          ``image`` (C,H,W: image bands, then extra bands), one (H,W)
                          array per label, and ``valid`` (H,W uint8) when some pixels
                          are nodata; read with ``np.load(..., allow_pickle=False)``
    STORE/stats.json      per-band mean / std / p2 / p98 over the valid pixels of the
                          **training** chips (each pixel once; ``"split": "train"``), so
                          no validation or test pixel leaks into the normalisation; a
                          store without training chips uses all chips (``"all"``)
    STORE/meta.json       image, extras and label paths, band and label names, gsd,
                          CRS (WKT), chip size, stride, sampler, split settings
    STORE/split_blocks.gpkg
                          the split blocks as polygons in the image CRS (clipped to the
                          raster): ``block_row``, ``block_col``, ``split``, ``n_chips``;
                          ``landforge evaluate --split-blocks`` scores one split with it

It is written atomically: a failed run leaves no half store behind. The options
(:class:`~landforge.datasets.options.ChipOptions`) choose the chip size, the window
sampler (:mod:`landforge.datasets.chip_windows`) and the split.

Splits are spatial blocks (as in raster-vision and torchgeo's block splits): chips are
grouped into blocks of ``block_size`` x ``block_size`` chip positions and whole blocks
are assigned to train / val / test (seeded, balancing the number of chips to the
requested ratios; see :mod:`landforge.datasets.splits`), so neighbouring chips, which
share texture and objects, do not leak across splits. With the ``grid`` sampler and
``stride < size`` chips on either side of a block border still overlap a little.
With ``random`` and ``poisson`` a chip belongs to the block holding its centre (blocks
of ``block_size * size`` pixels); such a chip may straddle a block border, and a chip
reaching into a block of another split would share pixels with that split's chips, so
it is **dropped** (blocks holding no chip centre take the split of the chips reaching
into them, the first in raster order). No two chips of different splits then share a
pixel; the number dropped is recorded in ``meta.json`` (``dropped_straddling``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landforge.datasets.chip_sources import Sources, band_stats, read_stack, stack_sources
from landforge.datasets.chip_windows import block_splits, drop_straddling, sample_windows
from landforge.datasets.options import (
    ChipOptions,
    PoissonSampler,
    RandomSampler,
    check_label_names,
    check_parcels,
)
from landforge.datasets.splits import normalise_ratios, split_windows
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, check_same_grid, open_raster, read_grid

__all__ = ["SPLIT_BLOCKS", "build_chips"]

#: the split blocks' file in a chip store
SPLIT_BLOCKS = "split_blocks.gpkg"


def build_chips(
    image: str | os.PathLike[str],
    labels: Mapping[str, str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    opts: ChipOptions | Mapping[str, Any] | None = None,
    *,
    extras: Sequence[str | os.PathLike[str]] = (),
    parcels: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path:
    """Cut ``image`` (+ ``extras``) and ``labels`` into a chip store at ``out_dir``.

    Args:
        image: multi-band image; band descriptions become band names.
        labels: label name -> single-band integer raster on the image grid
            (e.g. ``{"footprint": "footprint.tif", "use": "building_use.tif"}``).
        out_dir: the store directory (replaced atomically if it exists).
        opts: :class:`~landforge.datasets.options.ChipOptions`: chip ``size``,
            ``stride``, image ``bands``, the window ``sampler`` (``"grid"``,
            ``"random"``, ``"poisson"``, a mapping or a sampler model), ``split``
            ratios and ``block_size``, ``min_valid``, ``seed``; ``overrides`` replace
            its fields.
        extras: further rasters on the image grid (e.g. POI probability maps); their
            bands are stacked after the image bands.
        parcels: polygon layer (any vector format with a CRS) for the ``poisson``
            sampler, reprojected to the raster's CRS; only with that sampler.
        **overrides: option fields replacing those of ``opts`` (e.g. ``size=128,
            sampler="random", n_chips=50`` or ``sampler={"method": "poisson",
            "radius_m": 100}``).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        OptionError: a bad option (naming the field), labels or parcels given wrongly,
            or no chip passing ``min_valid``.
        InputError: a missing or unreadable raster, a raster on another grid (naming
            it).
    """
    o: ChipOptions = ChipOptions.build(opts, **overrides)
    try:
        check_label_names(labels)
    except ValueError as exc:
        raise OptionError("labels", str(exc)) from None
    check_parcels(o.sampler, parcels)
    image = Path(image)
    size = o.size
    stride = size if o.stride is None else o.stride
    if o.split is None:
        ratios, block_size = {"train": 1.0}, 1
    else:
        ratios, block_size = normalise_ratios(o.split), o.block_size

    grid = read_grid(image)
    extra_paths = [Path(e) for e in extras]
    label_paths = {name: Path(p) for name, p in labels.items()}
    for other in [*extra_paths, *label_paths.values()]:
        check_same_grid(grid, other)
    _check_labels(label_paths)
    if grid.height < size or grid.width < size:
        raise InputError(
            image, f"raster {grid.width}x{grid.height} is smaller than one {size}x{size} chip"
        )
    sources = stack_sources(image, extra_paths, o.bands)
    if o.sampler.method == "poisson" and (grid.crs is None or not grid.crs.is_projected):
        raise InputError(image, "the poisson sampler needs a raster in a projected (metric) CRS")
    positions = sample_windows(grid, size, stride, o.sampler, o.seed, parcels)
    if not positions:
        raise InputError(image, f"the {o.sampler.method} sampler gave no chip window")

    with atomic_dir(out_dir) as tmp:
        records = _cut_chips(tmp, sources, label_paths, grid, positions, size, o.min_valid)
        if not records:
            raise OptionError(
                "min_valid",
                f"no chip of {image.name} has at least {o.min_valid:.0%} valid pixels; lower it",
            )
        # Blocks are split after nodata chips are dropped, so every split gets blocks
        # that hold chips.
        _assign_splits(records, o, size, stride, ratios, block_size)
        # the blocks of each split, in pixels of block_px (before straddlers are dropped:
        # a block keeps its split when all its chips straddle)
        if o.sampler.method == "grid":
            block_px = stride * block_size
            split_of = {(r["block_row"], r["block_col"]): r["split"] for r in records}
        else:
            block_px = size * block_size
            split_of = block_splits(records, block_px, size)
        dropped = 0
        if o.sampler.method != "grid" and o.split is not None:
            keep = drop_straddling(records, block_px, size)
            dropped = len(records) - len(keep)
            kept = {id(r) for r in keep}
            for r in records:
                if id(r) not in kept:
                    (tmp / r["file"]).unlink()
            records = keep
            if not records:
                raise OptionError(
                    "block_size", "every chip straddles blocks of two splits; raise it"
                )
        index = _write_index(tmp / "index.parquet", records, grid, list(label_paths))
        stats = _train_stats(sources, grid, records, size, o.seed)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
        blocks = _write_split_blocks(tmp / SPLIT_BLOCKS, split_of, records, block_px, grid)
        meta = {
            "image": str(image.resolve()),
            "image_bands": sources.indexes[0],
            "extras": [str(p.resolve()) for p in extra_paths],
            "labels": {n: str(p.resolve()) for n, p in label_paths.items()},
            "bands": sources.band_names,
            "label_names": list(label_paths),
            "dtype": sources.dtype.name,
            "gsd": float(grid.res[0]),
            "crs": grid.crs.to_wkt() if grid.crs else None,
            "transform": list(grid.transform)[:6],
            "width": grid.width,
            "height": grid.height,
            "size": size,
            "stride": stride,
            **_sampler_meta(o, parcels),
            "dropped_straddling": dropped,
            "min_valid": o.min_valid,
            "split": {**ratios, "block_size": block_size} if o.split is not None else None,
            "seed": o.seed,
            "n_chips": len(index),
            "splits": {k: int(v) for k, v in index["split"].value_counts().items()},
            "stats_split": stats["split"],
            "split_blocks": {
                "file": SPLIT_BLOCKS,
                "block_px": block_px,
                "blocks": {k: int(v) for k, v in blocks["split"].value_counts().items()},
            },
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return Path(out_dir)


def _check_labels(label_paths: Mapping[str, Path]) -> None:
    for name, p in label_paths.items():
        with open_raster(p) as src:
            if src.count != 1:
                raise InputError(p, f"label {name!r} must have one band, found {src.count}")
            if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
                raise InputError(p, f"label {name!r} must be an integer raster ({src.dtypes[0]})")


def _cut_chips(
    tmp: Path,
    sources: Sources,
    label_paths: Mapping[str, Path],
    grid: RasterGrid,
    positions: Sequence[tuple[int, int]],
    size: int,
    min_valid: float,
) -> list[dict[str, Any]]:
    """Write ``tmp/chips/<chip_id>.npz`` for every window with enough valid pixels."""
    from shapely.geometry import box

    from landforge.progress import track

    records: list[dict[str, Any]] = []
    with contextlib.ExitStack() as files:
        opened = [files.enter_context(open_raster(p)) for p in sources.paths]
        opened_labels = {n: files.enter_context(open_raster(p)) for n, p in label_paths.items()}
        (tmp / "chips").mkdir()
        for row, col in track(positions, "cutting chips"):
            window = Window(col, row, size, size)
            img, valid = read_stack(opened, sources.indexes, window)
            fraction = float(valid.mean())
            if fraction < min_valid or fraction == 0.0:
                continue
            chip_id = f"r{row:06d}_c{col:06d}"
            arrays: dict[str, Any] = {"image": np.where(valid, img, 0).astype(sources.dtype)}
            counts: dict[str, int] = {}
            for name, src in opened_labels.items():
                lab = src.read(1, window=window)
                arrays[name] = lab
                values, n = np.unique(lab[valid], return_counts=True)
                counts.update({f"{name}_{int(v)}": int(c) for v, c in zip(values, n, strict=True)})
            if fraction < 1.0:
                arrays["valid"] = valid.astype(np.uint8)
            np.savez_compressed(tmp / "chips" / f"{chip_id}.npz", **arrays)
            x0, y0 = grid.transform @ (col, row + size)
            x1, y1 = grid.transform @ (col + size, row)
            records.append(
                {
                    "chip_id": chip_id,
                    "file": f"chips/{chip_id}.npz",
                    "row": row,
                    "col": col,
                    "height": size,
                    "width": size,
                    "block_row": 0,  # set with the split
                    "block_col": 0,
                    "valid_fraction": fraction,
                    **counts,
                    "geometry": box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
                }
            )
    return records


def _assign_splits(
    records: list[dict[str, Any]],
    o: ChipOptions,
    size: int,
    stride: int,
    ratios: Mapping[str, float],
    block_size: int,
) -> None:
    """Set ``block_row``, ``block_col`` and ``split`` of every record (in place)."""
    if o.sampler.method == "grid":
        split_of = split_windows(
            [r["row"] for r in records],
            [r["col"] for r in records],
            stride,
            block_size,
            ratios,
            o.seed,
        )
    else:
        # blocks of block_size chip sides, a chip in the block of its centre
        split_of = split_windows(
            [r["row"] + size // 2 for r in records],
            [r["col"] + size // 2 for r in records],
            size,
            block_size,
            ratios,
            o.seed,
        )
    for r, block_row, block_col, name in zip(
        records,
        split_of["block_row"].tolist(),
        split_of["block_col"].tolist(),
        split_of["split"].tolist(),
        strict=True,
    ):
        r["block_row"], r["block_col"], r["split"] = block_row, block_col, name


def _write_index(
    path: Path, records: list[dict[str, Any]], grid: RasterGrid, label_names: Sequence[str]
) -> Any:
    """The GeoParquet index: fixed columns, then class counts sorted by label and value."""
    import geopandas as gpd

    index = gpd.GeoDataFrame(records, geometry="geometry", crs=grid.crs)
    count_cols = sorted(
        (c for c in index.columns if any(c.startswith(f"{n}_") for n in label_names)),
        key=_count_key,
    )
    index[count_cols] = index[count_cols].fillna(0).astype("int64")
    fixed = [c for c in index.columns if c not in count_cols and c != "geometry"]
    index = index[[*fixed, *count_cols, "geometry"]]
    index.to_parquet(path)
    return index


def _count_key(col: str) -> tuple[str, int]:
    name, _, value = col.rpartition("_")
    return (name, int(value))


def _sampler_meta(o: ChipOptions, parcels: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The sampler's entries of ``meta.json``."""
    s = o.sampler
    meta: dict[str, Any] = {
        "sampler": s.method,
        "n_chips_requested": s.n_chips if isinstance(s, RandomSampler) else None,
        "parcels": str(Path(parcels).resolve()) if parcels is not None else None,
        "radius_m": s.radius_m if isinstance(s, PoissonSampler) else None,
    }
    if isinstance(s, PoissonSampler):
        meta.update(min_inside=s.min_inside, max_per_parcel=s.max_per_parcel)
    return meta


def _train_stats(
    sources: Sources,
    grid: RasterGrid,
    records: Sequence[Mapping[str, Any]],
    size: int,
    seed: int,
) -> dict[str, Any]:
    """Band statistics over the pixels of the training chips (all chips if none is)."""
    split = "train" if any(r["split"] == "train" for r in records) else "all"
    chosen = [r for r in records if split == "all" or r["split"] == split]
    windows = [(int(r["row"]), int(r["col"]), size, size) for r in chosen]
    stats = band_stats(sources, grid, seed, windows=windows)
    return {**stats, "split": split, "chips": len(chosen)}


def _write_split_blocks(
    path: Path,
    split_of: Mapping[tuple[int, int], str],
    records: Sequence[Mapping[str, Any]],
    block_px: int,
    grid: RasterGrid,
) -> Any:
    """Write the split blocks (``block_px`` pixels square, clipped to the raster)."""
    import geopandas as gpd
    from shapely.geometry import Polygon

    n_chips: dict[tuple[int, int], int] = {}
    for r in records:
        key = (r["block_row"], r["block_col"])
        n_chips[key] = n_chips.get(key, 0) + 1
    rows = []
    for (br, bc), split in sorted(split_of.items()):
        r0, c0 = br * block_px, bc * block_px
        r1, c1 = min(r0 + block_px, grid.height), min(c0 + block_px, grid.width)
        if r0 >= r1 or c0 >= c1:
            continue
        corners = [grid.transform @ (c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))]
        rows.append(
            {
                "block_row": int(br),
                "block_col": int(bc),
                "split": split,
                "n_chips": n_chips.get((br, bc), 0),
                "geometry": Polygon(corners),
            }
        )
    blocks = gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)
    blocks.to_file(path, driver="GPKG", engine="pyogrio", layer=path.stem)
    return blocks
