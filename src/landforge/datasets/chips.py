"""Chip store: an image (+ extra bands) and label rasters cut into training chips.

A chip store is a directory::

    STORE/index.parquet   GeoParquet, one row per chip: chip_id, file, row, col, height,
                          width, block_row, block_col, split, valid_fraction, per-label
                          class counts (``<label>_<value>``), geometry = chip bounds
                          (CRS of the image)
    STORE/chips/<chip_id>.npz
                          ``image`` (C,H,W: image bands, then extra bands), one (H,W)
                          array per label, and ``valid`` (H,W uint8) when some pixels
                          are nodata; read with ``np.load(..., allow_pickle=False)``
    STORE/stats.json      per-band mean / std / p2 / p98 over the image's valid pixels
    STORE/meta.json       image, extras and label paths, band and label names, gsd,
                          CRS (WKT), chip size, stride, sampler, split settings

It is written atomically: a failed run leaves no half store behind.

Windows come from a sampler: ``grid`` (regular windows every ``stride`` pixels),
``random`` (seeded uniformly random windows; as many as the grid would give, or
``n_chips``) or ``poisson`` (chip centres from Poisson-disk sampling inside parcels,
:mod:`landforge.parcels.poisson`, at least ``radius_m`` apart within a parcel, default
one chip side, so chips of one parcel barely overlap). Every window lies inside the
raster (poisson windows near the edge are shifted inwards).

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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.errors import RasterioIOError
from rasterio.windows import Window
from torch.utils.data import Dataset

from landforge.datasets.splits import normalise_ratios, split_windows
from landforge.errors import InputError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, check_same_grid, iter_blocks, open_raster, read_grid

__all__ = [
    "build_chips",
    "load_chip",
    "read_index",
    "read_stats",
    "read_meta",
    "plot_chip",
    "ChipDataset",
    "SAMPLERS",
    "DEFAULT_SPLIT",
]

SAMPLERS = ("grid", "random", "poisson")
"""Window samplers: regular grid, seeded uniform random windows, Poisson-disk centres
inside parcels."""

DEFAULT_SPLIT: dict[str, Any] = {"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 4}

_STATS_SAMPLE = 1_000_000  # pixels per band kept for the percentiles


# ----------------------------------------------------------------------------- writing


def build_chips(
    image: str | os.PathLike[str],
    labels: Mapping[str, str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    extras: Sequence[str | os.PathLike[str]] = (),
    bands: Sequence[int] | None = None,
    size: int = 256,
    stride: int | None = None,
    sampler: str = "grid",
    split: Mapping[str, Any] | None = None,
    min_valid: float = 0.5,
    seed: int = 0,
    n_chips: int | None = None,
    parcels: str | os.PathLike[str] | None = None,
    radius_m: float | None = None,
) -> Path:
    """Cut ``image`` (+ ``extras``) and ``labels`` into a chip store at ``out_dir``.

    Args:
        image: multi-band image; band descriptions become band names.
        labels: label name -> single-band integer raster on the image grid
            (e.g. ``{"footprint": "footprint.tif", "use": "building_use.tif"}``).
        out_dir: the store directory (replaced atomically if it exists).
        extras: further rasters on the image grid (e.g. POI probability maps); their
            bands are stacked after the image bands.
        bands: 1-based image bands to use (e.g. ``[1, 2, 3]`` for RGB of an RGB+NIR
            image); default all. Extras always contribute all their bands.
        size: chip side in pixels.
        stride: step between chips (default ``size``: no overlap). Pixels in the last
            strip narrower than ``size`` are not chipped.
        sampler: ``"grid"`` (regular windows every ``stride`` pixels), ``"random"``
            (seeded uniformly random windows, ``n_chips`` of them, default as many as
            the grid gives) or ``"poisson"`` (Poisson-disk chip centres inside
            ``parcels``, at least ``radius_m`` apart in a parcel). Random and poisson
            chips that reach into a split block of another split are dropped (see the
            module doc).
        split: None (every chip in ``train``) or ratios per split name plus an optional
            ``block_size`` (chip positions per block side, default 4), e.g.
            ``{"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 4}``.
        min_valid: smallest fraction of valid pixels a chip needs (nodata: all bands
            of the image, or of an extra, are nodata; or a band is NaN).
        seed: seeds the block shuffle, the percentile sample and the samplers.
        n_chips: number of ``random`` windows (default: the grid's count).
        parcels: polygon layer (any vector format with a CRS) for ``poisson``;
            reprojected to the raster's CRS.
        radius_m: smallest distance between poisson centres in one parcel (default:
            the chip side in metres).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: a missing or unreadable raster, a raster on another grid (naming
            it), a bad option, or no chip passing ``min_valid``.
    """
    import geopandas as gpd
    from shapely.geometry import box

    image = Path(image)
    stride = size if stride is None else int(stride)
    if size < 1:
        raise InputError("--size", f"chip size must be positive, got {size}")
    if stride < 1:
        raise InputError("--stride", f"stride must be positive, got {stride}")
    if sampler not in SAMPLERS:
        raise InputError(
            "--sampler", f"unknown sampler {sampler!r}; available: {', '.join(SAMPLERS)}"
        )
    if n_chips is not None and n_chips < 1:
        raise InputError("--n-chips", f"must be at least 1, got {n_chips}")
    if n_chips is not None and sampler != "random":
        raise InputError("--n-chips", f"only applies to the random sampler, not {sampler!r}")
    if sampler == "poisson" and parcels is None:
        raise InputError("--parcels", "the poisson sampler needs a parcels layer")
    if parcels is not None and sampler != "poisson":
        raise InputError("--parcels", f"only applies to the poisson sampler, not {sampler!r}")
    if radius_m is not None and not radius_m > 0:
        raise InputError("--radius-m", f"must be positive, got {radius_m}")
    if not 0.0 <= min_valid <= 1.0:
        raise InputError("--min-valid", f"must be between 0 and 1, got {min_valid}")
    if not labels:
        raise InputError("--labels", "give at least one label raster, e.g. footprint=mask.tif")
    for name in labels:
        if not name.isidentifier() or name in ("image", "valid"):
            raise InputError(
                "--labels", f"label name {name!r} must be a plain identifier other than image/valid"
            )
    ratios, block_size = _parse_split(split)

    grid = read_grid(image)
    extras = [Path(e) for e in extras]
    label_paths = {name: Path(p) for name, p in labels.items()}
    for other in [*extras, *label_paths.values()]:
        check_same_grid(grid, other)
    for name, p in label_paths.items():
        with open_raster(p) as src:
            if src.count != 1:
                raise InputError(p, f"label {name!r} must have one band, found {src.count}")
            if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
                raise InputError(p, f"label {name!r} must be an integer raster ({src.dtypes[0]})")
    if grid.height < size or grid.width < size:
        raise InputError(
            image, f"raster {grid.width}x{grid.height} is smaller than one {size}x{size} chip"
        )

    sources = [image, *extras]
    with open_raster(image) as src:
        n_image = src.count
    if bands is not None:
        bands = [int(b) for b in bands]
        bad = [b for b in bands if not 1 <= b <= n_image]
        if not bands or bad:
            raise InputError(
                "--bands", f"image {image.name} has bands 1..{n_image}; cannot use {bad or bands}"
            )
    indexes: list[list[int]] = [list(bands) if bands else list(range(1, n_image + 1))]
    for p in extras:
        with open_raster(p) as src:
            indexes.append(list(range(1, src.count + 1)))
    band_names = _band_names(sources, indexes)
    dtype = np.result_type(*[_dtype(p, ix) for p, ix in zip(sources, indexes, strict=True)])
    stats = _band_stats(sources, indexes, grid, band_names, seed)

    if sampler == "grid":
        positions = list(_grid_windows(grid, size, stride))
    elif sampler == "random":
        positions = _random_windows(grid, size, stride, n_chips, seed)
    else:
        assert parcels is not None
        positions = _poisson_windows(grid, size, Path(parcels), radius_m, seed)
    if not positions:
        raise InputError(image, f"the {sampler} sampler gave no chip window")

    records: list[dict[str, Any]] = []
    from landforge.progress import track

    with atomic_dir(out_dir) as tmp, contextlib.ExitStack() as files:
        opened = [files.enter_context(open_raster(p)) for p in sources]
        opened_labels = {n: files.enter_context(open_raster(p)) for n, p in label_paths.items()}
        (tmp / "chips").mkdir()
        for row, col in track(positions, "cutting chips"):
            window = Window(col, row, size, size)
            img, valid = _read_stack(opened, indexes, window)
            fraction = float(valid.mean())
            if fraction < min_valid or fraction == 0.0:
                continue
            chip_id = f"r{row:06d}_c{col:06d}"
            arrays: dict[str, np.ndarray] = {"image": np.where(valid, img, 0).astype(dtype)}
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
                    "block_row": 0,  # set with the split below
                    "block_col": 0,
                    "valid_fraction": fraction,
                    **counts,
                    "geometry": box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
                }
            )
        if not records:
            raise InputError(
                image, f"no chip has at least {min_valid:.0%} valid pixels; lower --min-valid"
            )
        # Blocks are split after nodata chips are dropped, so every split gets blocks
        # that hold chips.
        dropped = 0
        if sampler == "grid":
            split_of = split_windows(
                [r["row"] for r in records],
                [r["col"] for r in records],
                stride,
                block_size,
                ratios,
                seed,
            )
        else:
            # blocks of block_size chip sides, a chip in the block of its centre
            split_of = split_windows(
                [r["row"] + size // 2 for r in records],
                [r["col"] + size // 2 for r in records],
                size,
                block_size,
                ratios,
                seed,
            )
        for r, block_row, block_col, name in zip(
            records,
            split_of["block_row"].tolist(),
            split_of["block_col"].tolist(),
            split_of["split"].tolist(),
            strict=True,
        ):
            r["block_row"], r["block_col"], r["split"] = block_row, block_col, name
        if sampler != "grid" and split is not None:
            keep = _drop_straddling(records, size * block_size, size)
            dropped = len(records) - len(keep)
            kept = {id(r) for r in keep}
            for r in records:
                if id(r) not in kept:
                    (tmp / r["file"]).unlink()
            records = keep
            if not records:
                raise InputError(
                    image, "every chip straddles blocks of two splits; raise --block-size"
                )
        index = gpd.GeoDataFrame(records, geometry="geometry", crs=grid.crs)
        count_cols = sorted(
            (c for c in index.columns if any(c.startswith(f"{n}_") for n in label_paths)),
            key=_count_key,
        )
        index[count_cols] = index[count_cols].fillna(0).astype("int64")
        fixed = [c for c in index.columns if c not in count_cols and c != "geometry"]
        index = index[[*fixed, *count_cols, "geometry"]]
        index.to_parquet(tmp / "index.parquet")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
        meta = {
            "image": str(image.resolve()),
            "image_bands": indexes[0],
            "extras": [str(p.resolve()) for p in extras],
            "labels": {n: str(p.resolve()) for n, p in label_paths.items()},
            "bands": band_names,
            "label_names": list(label_paths),
            "dtype": np.dtype(dtype).name,
            "gsd": float(grid.res[0]),
            "crs": grid.crs.to_wkt() if grid.crs else None,
            "transform": list(grid.transform)[:6],
            "width": grid.width,
            "height": grid.height,
            "size": size,
            "stride": stride,
            "sampler": sampler,
            "n_chips_requested": n_chips,
            "parcels": str(Path(parcels).resolve()) if parcels is not None else None,
            "radius_m": radius_m,
            "dropped_straddling": dropped,
            "min_valid": min_valid,
            "split": {**ratios, "block_size": block_size} if split is not None else None,
            "seed": seed,
            "n_chips": len(index),
            "splits": {k: int(v) for k, v in index["split"].value_counts().items()},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return Path(out_dir)


def _count_key(col: str) -> tuple[str, int]:
    name, _, value = col.rpartition("_")
    return (name, int(value))


def _parse_split(split: Mapping[str, Any] | None) -> tuple[dict[str, float], int]:
    if split is None:
        return {"train": 1.0}, 1
    split = dict(split)
    block_size = split.pop("block_size", 4)
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int | float)
        or block_size != int(block_size)
        or block_size < 1
    ):
        raise InputError("split.block_size", f"must be a positive integer, got {block_size!r}")
    block_size = int(block_size)
    return normalise_ratios(split), block_size


def _grid_windows(grid: RasterGrid, size: int, stride: int) -> Iterator[tuple[int, int]]:
    for row in range(0, grid.height - size + 1, stride):
        for col in range(0, grid.width - size + 1, stride):
            yield row, col


def _random_windows(
    grid: RasterGrid, size: int, stride: int, n_chips: int | None, seed: int
) -> list[tuple[int, int]]:
    """Seeded uniformly random top-left corners (distinct, in raster order)."""
    if n_chips is None:
        n_chips = ((grid.height - size) // stride + 1) * ((grid.width - size) // stride + 1)
    rng = np.random.default_rng([seed, 1])
    rows = rng.integers(0, grid.height - size + 1, n_chips)
    cols = rng.integers(0, grid.width - size + 1, n_chips)
    return sorted({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)})


def _poisson_windows(
    grid: RasterGrid, size: int, parcels: Path, radius_m: float | None, seed: int
) -> list[tuple[int, int]]:
    """Windows centred on Poisson-disk points inside ``parcels`` (clipped to the raster)."""
    import shapely

    from landforge.io.vector import read_vector
    from landforge.parcels.poisson import poisson_patches

    if grid.crs is None or not grid.crs.is_projected:
        raise InputError(
            "--sampler", "the poisson sampler needs a raster in a projected (metric) CRS"
        )
    layer = read_vector(parcels).to_crs(grid.crs)
    size_m = size * float(abs(grid.res[0]))
    # centres inside the parcels, their chips as much inside as the parcel allows
    points = poisson_patches(
        layer,
        patch_size_m=size_m,
        radius_m=radius_m if radius_m is not None else size_m,
        min_inside=_POISSON_MIN_INSIDE,
        seed=seed,
    )
    if len(points) == 0:
        return []
    xy = shapely.get_coordinates(np.asarray(points.geometry.values))
    inv = ~grid.transform
    cols, rows = inv @ (xy[:, 0], xy[:, 1])
    rows = np.clip(np.round(np.asarray(rows) - size / 2), 0, grid.height - size).astype(int)
    cols = np.clip(np.round(np.asarray(cols) - size / 2), 0, grid.width - size).astype(int)
    # a centre outside the raster would clip onto the edge: keep only centres inside it
    inside = (
        (np.asarray(xy[:, 0]) >= grid.bounds[0])
        & (np.asarray(xy[:, 0]) <= grid.bounds[2])
        & (np.asarray(xy[:, 1]) >= grid.bounds[1])
        & (np.asarray(xy[:, 1]) <= grid.bounds[3])
    )
    return sorted({(int(r), int(c)) for r, c in zip(rows[inside], cols[inside], strict=True)})


_POISSON_MIN_INSIDE = 0.25
"""Smallest share of a poisson chip inside its parcel (parcels are often smaller than a
chip; chips then reach into the neighbours)."""


def _drop_straddling(
    records: list[dict[str, Any]], block_px: int, size: int
) -> list[dict[str, Any]]:
    """Keep the chips whose window touches only blocks of their own split.

    Blocks without a chip centre take the split of the first chip (raster order)
    reaching into them, so kept chips of different splits never share a block.
    """
    split_of: dict[tuple[int, int], str] = {
        (r["block_row"], r["block_col"]): r["split"] for r in records
    }

    def touched(r: dict[str, Any]) -> list[tuple[int, int]]:
        b_rows = range(r["row"] // block_px, (r["row"] + size - 1) // block_px + 1)
        b_cols = range(r["col"] // block_px, (r["col"] + size - 1) // block_px + 1)
        return [(i, j) for i in b_rows for j in b_cols]

    for r in sorted(records, key=lambda r: (r["row"], r["col"])):
        for b in touched(r):
            split_of.setdefault(b, r["split"])
    return [r for r in records if all(split_of[b] == r["split"] for b in touched(r))]


def _dtype(path: Path, indexes: Sequence[int]) -> np.dtype[Any]:
    with open_raster(path) as src:
        return np.result_type(*[src.dtypes[b - 1] for b in indexes])


def _band_names(sources: Sequence[Path], indexes: Sequence[Sequence[int]]) -> list[str]:
    names: list[str] = []
    for i, (p, bands) in enumerate(zip(sources, indexes, strict=True)):
        with open_raster(p) as src:
            for b in bands:
                desc = src.descriptions[b - 1]
                name = desc or (f"b{b}" if i == 0 else f"{p.stem}_{b}" if src.count > 1 else p.stem)
                base, k = name, 2
                while name in names:
                    name, k = f"{base}_{k}", k + 1
                names.append(name)
    return names


def _read_stack(
    sources: Sequence[Any], indexes: Sequence[Sequence[int]], window: Window
) -> tuple[np.ndarray, np.ndarray]:
    """(bands, rows, cols) stacked over open ``sources`` and the mask of valid pixels.

    As in inference: a pixel is nodata when all (selected) bands of a source are
    nodata there (GDAL's dataset-mask rule) or any band is NaN, in any source.
    """
    parts, valid = [], None
    for src, bands in zip(sources, indexes, strict=True):
        try:
            arr = src.read(list(bands), window=window, masked=True)
        except RasterioIOError as exc:
            raise InputError(src.name, f"cannot read pixels ({str(exc)[:200]})") from None
        mask = ~np.ma.getmaskarray(arr).all(axis=0)
        if np.issubdtype(arr.dtype, np.floating):
            mask &= ~np.isnan(np.ma.getdata(arr)).any(axis=0)
        valid = mask if valid is None else valid & mask
        parts.append(np.ma.getdata(arr))
    assert valid is not None
    return np.concatenate(parts, axis=0), valid


def _band_stats(
    sources: Sequence[Path],
    indexes: Sequence[Sequence[int]],
    grid: RasterGrid,
    band_names: Sequence[str],
    seed: int,
) -> dict[str, Any]:
    """Per-band mean/std (exact, float64 sums) and p2/p98 (from a seeded sample of at
    most ~1e6 valid pixels) over pixels valid in every source, read by blocks."""
    rng = np.random.default_rng(seed)
    nb = len(band_names)
    # Chan et al.'s pairwise merge of per-block (count, mean, M2): exact and free of the
    # cancellation a global sum of squares suffers on large-valued bands.
    count = 0
    mean = np.zeros(nb)
    m2 = np.zeros(nb)
    keep = min(1.0, _STATS_SAMPLE / max(1, grid.width * grid.height))
    samples: list[np.ndarray] = []
    with contextlib.ExitStack() as files:
        opened = [files.enter_context(open_raster(p)) for p in sources]
        for window in iter_blocks(grid, 1024):
            img, valid = _read_stack(opened, indexes, window)
            pix = img[:, valid].astype(np.float64)  # (bands, n)
            n = pix.shape[1]
            if n == 0:
                continue
            block_mean = pix.mean(axis=1)
            block_m2 = ((pix - block_mean[:, None]) ** 2).sum(axis=1)
            delta = block_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + block_m2 + delta**2 * (count * n / total)
            count = total
            take = rng.random(n) < keep if keep < 1.0 else slice(None)
            samples.append(pix[:, take])
    if count == 0:
        raise InputError(sources[0], "raster has no valid pixel (all nodata)")
    std = np.sqrt(m2 / count)
    sample = np.concatenate(samples, axis=1)
    p2, p98 = np.percentile(sample, [2, 98], axis=1)
    return {
        "bands": list(band_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "p2": [float(v) for v in p2],
        "p98": [float(v) for v in p98],
        "valid_pixels": int(count),
    }


# ----------------------------------------------------------------------------- reading


def _store(store_dir: str | os.PathLike[str]) -> Path:
    p = Path(store_dir)
    if not (p / "index.parquet").is_file():
        raise InputError(p, "not a chip store (no index.parquet); build one with `landforge chips`")
    return p


def read_index(store_dir: str | os.PathLike[str]) -> Any:
    """The chip index of a store as a GeoDataFrame."""
    import geopandas as gpd

    return gpd.read_parquet(_store(store_dir) / "index.parquet")


def read_stats(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``stats.json`` of a store: bands, mean, std, p2, p98."""
    return json.loads((_store(store_dir) / "stats.json").read_text())


def read_meta(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``meta.json`` of a store."""
    return json.loads((_store(store_dir) / "meta.json").read_text())


def load_chip(store_dir: str | os.PathLike[str], chip_id: str) -> dict[str, np.ndarray]:
    """The arrays of one chip (``image``, one per label, ``valid``), never unpickled."""
    path = Path(store_dir) / "chips" / f"{chip_id}.npz"
    if not path.is_file():
        raise InputError(path, "chip file does not exist")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if "valid" not in arrays:
        arrays["valid"] = np.ones(arrays["image"].shape[1:], dtype=np.uint8)
    return arrays


def plot_chip(
    chip: Mapping[str, Any],
    rgb: Sequence[int] = (0, 1, 2),
    stats: Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """A matplotlib Figure: the chip's RGB bands beside each of its label masks.

    Args:
        chip: a chip from :func:`load_chip` or a :class:`ChipDataset` sample (numpy
            arrays or tensors; ``image`` (C,H,W) plus label arrays).
        rgb: band indices shown as red, green, blue.
        stats: store stats; their p2/p98 stretch the bands (otherwise the chip's own
            2nd/98th percentiles do).
        labels: label keys to draw (default: every 2-D array except ``valid``).
        title: figure title.
    """
    from matplotlib.figure import Figure

    arrays = {
        k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in chip.items()
    }
    image = arrays["image"].astype(np.float64)
    bands = [min(b, image.shape[0] - 1) for b in rgb]
    shown = image[bands]
    if stats is not None:
        lo = np.array([stats["p2"][b] for b in bands])[:, None, None]
        hi = np.array([stats["p98"][b] for b in bands])[:, None, None]
    else:
        lo = np.percentile(shown, 2, axis=(1, 2))[:, None, None]
        hi = np.percentile(shown, 98, axis=(1, 2))[:, None, None]
    shown = np.clip((shown - lo) / np.maximum(hi - lo, 1e-9), 0, 1).transpose(1, 2, 0)
    names = (
        list(labels)
        if labels is not None
        else [k for k, v in arrays.items() if k not in ("image", "valid") and v.ndim == 2]
    )
    fig = Figure(figsize=(3 * (1 + len(names)), 3.2), layout="constrained")
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    axes[0].imshow(shown)
    axes[0].set_title("image")
    for ax, name in zip(axes[1:], names, strict=True):
        mask = arrays[name].astype(np.float64)
        mask = np.ma.masked_less(mask, 0)  # ignored pixels stay blank
        ax.imshow(mask, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        ax.set_title(name)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def _dihedral_np(x: np.ndarray, k: int) -> np.ndarray:
    """:func:`landforge.training.augment.dihedral` on a numpy array (a view)."""
    out = np.rot90(x, k % 4, axes=(-2, -1)) if k % 4 else x
    return np.swapaxes(out, -2, -1) if k >= 4 else out


class ChipDataset(Dataset):
    """A torch Dataset over one split of a chip store.

    Each item is ``{"image": float32 (C,H,W), <label>: int64 (H,W), ...}``. The image is
    normalised by the store's per-band mean/std (``normalise=True``); nodata pixels are
    0 in the image and ``ignore_index`` in every label. With ``augment=True`` one random
    square symmetry (flips, 90° rotations, transpose) is applied to image and labels
    alike.

    Args:
        store_dir: a store written by :func:`build_chips`.
        split: split name, or None for every chip.
        augment: apply synchronised random flips / rotations.
        normalise: subtract mean and divide by std per band.
        ignore_index: label value of nodata pixels.
        mean_std: per-band (mean, std) to normalise with instead of the store's own
            statistics, e.g. a model card's when a model trained on another store is
            fine-tuned or evaluated here.
    """

    def __init__(
        self,
        store_dir: str | os.PathLike[str],
        split: str | None = "train",
        augment: bool = False,
        normalise: bool = True,
        ignore_index: int = -100,
        mean_std: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        self.store_dir = _store(store_dir)
        index = read_index(self.store_dir)
        if split is not None:
            index = index[index["split"] == split]
        self.index = index.reset_index(drop=True)
        self.split = split
        self.stats = read_stats(self.store_dir)
        self.meta = read_meta(self.store_dir)
        self.label_names: list[str] = list(self.meta["label_names"])
        self.band_names: list[str] = list(self.stats["bands"])
        self.augment = augment
        self.normalise = normalise
        self.ignore_index = ignore_index
        mean, std = mean_std if mean_std is not None else (self.stats["mean"], self.stats["std"])
        if len(mean) != len(self.band_names) or len(std) != len(self.band_names):
            raise InputError(
                self.store_dir,
                f"normalisation has {len(mean)} bands, the store {len(self.band_names)}",
            )
        self._mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        std = np.asarray(std, dtype=np.float32)
        self._std = np.where(std > 0, std, 1.0).astype(np.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        chip = load_chip(self.store_dir, str(self.index.at[i, "chip_id"]))
        invalid = ~chip["valid"].astype(bool)
        masked = bool(invalid.any())  # most chips have no nodata: skip the masking
        image = chip["image"].astype(np.float32, copy=True)
        if self.normalise:
            image -= self._mean  # in place: no temporaries per band
            image /= self._std
        if masked:
            image[:, invalid] = 0.0
        arrays = {"image": image}
        for name in self.label_names:
            lab = chip[name].astype(np.int64)
            if masked:
                lab[invalid] = self.ignore_index
            arrays[name] = lab
        if self.augment:
            # the same draw as training.augment.random_dihedral (torch's RNG, which
            # Lightning seeds per worker), applied in numpy: torch.rot90 + contiguous
            # costs ~10x more on CPU
            k = int(torch.randint(8, (1,)))
            arrays = {n: _dihedral_np(a, k) for n, a in arrays.items()}
        return {n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in arrays.items()}

    def plot(self, sample: Mapping[str, Any], title: str | None = None) -> Any:
        """Plot a sample of this dataset (see :func:`plot_chip`); undoes normalisation."""
        arrays = dict(sample)
        image = np.asarray(arrays["image"])
        if self.normalise:
            arrays["image"] = image * self._std + self._mean
        return plot_chip(arrays, stats=self.stats, labels=self.label_names, title=title)
