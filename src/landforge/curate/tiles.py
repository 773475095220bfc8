"""Frames -> patches with label and texture histograms (``landforge curate tiles``).

Each frame (an image, optionally with its label raster on the same grid) is cut into
``size`` x ``size`` patches. Every patch gets

* the first-level label histogram: the fraction of its labelled pixels in each
  first-level class of the taxonomy (or in values 1..``bins``), the bag-of-classes
  half of the national sample paper's patch descriptor;
* the rotation-invariant uniform LBP histogram (scikit-image ``local_binary_pattern``,
  method ``"uniform"``, ``P`` points -> ``P + 2`` bins; ``P = 20`` gives the paper's 22
  bins) over the valid pixels of the patch, computed on the mean of the chosen bands.

The LBP of a patch is computed on the patch plus a margin of ``ceil(radius) + 1``
pixels where the raster has them, so pixels at a patch border see their real
neighbours (skimage samples outside the array as 0). Patches are read window by window:
a frame is never loaded whole.

The result is a GeoParquet table, one row per patch: ``patch_id``, ``image``,
``labels`` (absolute paths), ``row``, ``col``, ``height``, ``width``,
``valid_fraction``, ``labelled_fraction``, ``label_<class>`` columns, ``lbp_<k>``
columns and the patch footprint as geometry (CRS of the image). The tiling settings
are stored in the file's metadata (key ``landforge``) so that a search for a new
image describes it the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landforge.curate.options import FeatureSet, TilesOptions
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path
from landforge.io.raster import check_same_grid, open_raster

__all__ = [
    "LABEL_PREFIX",
    "LBP_PREFIX",
    "METADATA_KEY",
    "describe_frame",
    "feature_columns",
    "label_bins",
    "label_histogram",
    "lbp_histogram",
    "patch_windows",
    "read_tiles",
    "tile_frames",
]

LABEL_PREFIX = "label_"
LBP_PREFIX = "lbp_"
#: key of the tiling settings in the GeoParquet file's metadata
METADATA_KEY = b"landforge"


# ---------------------------------------------------------------- features of one patch
def lbp_histogram(
    gray: np.ndarray,
    valid: np.ndarray | None = None,
    points: int = 20,
    radius: float = 3.0,
    inner: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """Normalised rotation-invariant uniform LBP histogram (``points + 2`` bins).

    Args:
        gray: 2-D grey image (the patch plus any margin).
        valid: pixels that count (same shape); default all.
        points: LBP sampling points P.
        radius: LBP radius in pixels.
        inner: the part of ``gray`` that is the patch (row and column slices); the codes
            are computed on all of ``gray`` and counted only there.

    Returns:
        float64 (points + 2,), summing to 1 (all zeros when no pixel is valid).
    """
    from skimage.feature import local_binary_pattern

    with warnings.catch_warnings():
        # skimage warns about float input; codes compare neighbours, floats are fine here
        warnings.simplefilter("ignore", UserWarning)
        codes = local_binary_pattern(np.asarray(gray, np.float64), points, radius, "uniform")
    keep = np.ones(codes.shape, bool) if valid is None else np.asarray(valid, bool)
    if inner is not None:
        codes, keep = codes[inner], keep[inner]
    hist = np.bincount(codes[keep].astype(np.int64), minlength=points + 2).astype(np.float64)
    total = hist.sum()
    return hist / total if total > 0 else hist


def label_bins(taxonomy: str | None, bins: int) -> tuple[list[str], dict[int, int]]:
    """Histogram bins of the labels: ``(bin names, label value -> bin index)``.

    With a taxonomy every valued class counts in the bin of its first-level ancestor
    (one bin per first-level class); without, values 1..``bins`` are the bins.
    """
    if taxonomy is None:
        return [str(v) for v in range(1, bins + 1)], {v: v - 1 for v in range(1, bins + 1)}
    from landforge.taxonomy import load_classes

    system = load_classes(taxonomy)
    primary = [c.code for c in system.primary()]
    index = {code: i for i, code in enumerate(primary)}
    lut = {
        int(c.value): index[system.ancestor(c.code, 0).code]
        for c in system.valued()
        if c.value is not None
    }
    return primary, lut


def label_histogram(
    labels: np.ndarray, valid: np.ndarray, lut: dict[int, int], n_bins: int
) -> tuple[np.ndarray, float]:
    """Fractions of the labelled pixels per bin, and the labelled fraction of ``valid``.

    Pixels whose value is not in ``lut`` (nodata, unlabelled) are not labelled.
    """
    values = np.asarray(labels)[np.asarray(valid, bool)]
    n_valid = values.size
    hist = np.zeros(n_bins, np.float64)
    if n_valid == 0:
        return hist, 0.0
    uniq, counts = np.unique(values, return_counts=True)
    for v, c in zip(uniq.tolist(), counts.tolist(), strict=True):
        b = lut.get(int(v)) if float(v).is_integer() else None
        if b is not None:
            hist[b] += c
    labelled = hist.sum()
    return (hist / labelled if labelled else hist), float(labelled / n_valid)


def patch_windows(
    height: int, width: int, size: int, stride: int | None = None, edge: str = "drop"
) -> list[tuple[int, int, int, int]]:
    """Patch windows ``(row, col, height, width)`` over a raster, row by row.

    ``edge``: ``"drop"`` keeps whole patches only; ``"shift"`` adds a last row/column
    of patches flush with the raster edge (overlapping the previous one); ``"partial"``
    keeps the patches cut by the edge, smaller.
    """
    step = stride or size

    def starts(n: int) -> list[int]:
        if edge == "partial":
            return list(range(0, n, step))
        out = list(range(0, n - size + 1, step)) if n >= size else []
        if edge == "shift" and n >= size and out[-1] + size < n:
            out.append(n - size)
        return out

    return [
        (r, c, min(size, height - r), min(size, width - c))
        for r in starts(height)
        for c in starts(width)
    ]


# ---------------------------------------------------------------- frames
def describe_frame(
    image: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    opts: TilesOptions | dict[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """Patches of one frame with their features, as a GeoDataFrame (see module doc).

    Raises:
        OptionError: a band that the image (or label raster) does not have.
        InputError: unreadable rasters, labels on another grid, a frame smaller than a
            patch (with ``edge`` other than ``partial``).
    """
    import geopandas as gpd
    from shapely.geometry import box

    from landforge.progress import track

    o = TilesOptions.build(opts, **overrides)
    image = Path(image)
    names, lut = label_bins(o.taxonomy, o.bins)
    if labels is not None:
        check_same_grid(image, labels)
    margin = int(math.ceil(o.lbp_radius)) + 1
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as files:
        src = files.enter_context(open_raster(image))
        bands = _bands(src.count, o.bands, "bands", image)
        windows = patch_windows(src.height, src.width, o.size, o.stride, o.edge)
        if not windows:
            raise InputError(
                image,
                f"raster {src.width}x{src.height} is smaller than one {o.size}x{o.size} "
                "patch; lower size or use edge=partial",
            )
        lab_src = files.enter_context(open_raster(labels)) if labels is not None else None
        if lab_src is not None:
            _bands(lab_src.count, [o.label_band], "label_band", str(labels))
        for row, col, h, w in track(windows, f"describing patches of {image.name}"):
            r0, c0 = max(row - margin, 0), max(col - margin, 0)
            r1, c1 = min(row + h + margin, src.height), min(col + w + margin, src.width)
            big = Window(c0, r0, c1 - c0, r1 - r0)
            inner = (slice(row - r0, row - r0 + h), slice(col - c0, col - c0 + w))
            pixels = src.read(bands, window=big, masked=True)
            valid_big = np.asarray(~np.ma.getmaskarray(pixels).any(axis=0), bool)
            valid = valid_big[inner]
            fraction = float(valid.mean())
            if fraction < o.min_valid or fraction == 0.0:
                continue
            gray = np.ma.getdata(pixels).astype(np.float64).mean(axis=0)
            lbp = lbp_histogram(gray, valid_big, o.lbp_points, o.lbp_radius, inner)
            record: dict[str, Any] = {
                "patch_id": f"{image.stem}_r{row:06d}_c{col:06d}",
                "image": str(image.resolve()),
                "labels": str(Path(labels).resolve()) if labels is not None else None,
                "row": row,
                "col": col,
                "height": h,
                "width": w,
                "valid_fraction": fraction,
            }
            if lab_src is not None:
                lab = lab_src.read(o.label_band, window=Window(col, row, w, h), masked=True)
                lab_valid = valid & ~np.ma.getmaskarray(lab)
                data = np.ma.getdata(lab)
                if not np.issubdtype(data.dtype, np.integer):
                    lab_valid &= np.isfinite(data)
                    data = np.where(lab_valid, data, 0)
                hist, labelled = label_histogram(data, lab_valid, lut, len(names))
                record["labelled_fraction"] = labelled * float(lab_valid.sum()) / valid.sum()
                record.update({f"{LABEL_PREFIX}{n}": v for n, v in zip(names, hist, strict=True)})
            record.update({f"{LBP_PREFIX}{k:02d}": v for k, v in enumerate(lbp)})
            x0, y0 = src.transform @ (col, row + h)
            x1, y1 = src.transform @ (col + w, row)
            record["geometry"] = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            rows.append(record)
        crs = src.crs
    if not rows:
        raise OptionError(
            "min_valid", f"no patch of {image.name} has {o.min_valid:.0%} valid pixels; lower it"
        )
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    frame.attrs["landforge"] = {"tiles": o.model_dump(mode="json"), "label_bins": names}
    return frame


def tile_frames(
    images: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    labels: Sequence[str | os.PathLike[str]] = (),
    opts: TilesOptions | dict[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """Describe the patches of every frame and write them as one GeoParquet table.

    Args:
        images: frame rasters (all in one CRS).
        out: the GeoParquet file to write (atomically).
        labels: one label raster per image, on its grid (empty: texture only).
        opts: :class:`TilesOptions`; ``overrides`` replace its fields.
        **overrides: option fields replacing those of ``opts``.

    Returns:
        the patches as a GeoDataFrame.

    Raises:
        OptionError: labels given for some frames only.
        InputError: see :func:`describe_frame`; frames in different CRSs.
    """
    import pandas as pd

    o = TilesOptions.build(opts, **overrides)
    if not images:
        raise OptionError("images", "give at least one image")
    if labels and len(labels) != len(images):
        raise OptionError(
            "labels",
            f"give one label raster per image ({len(images)} images, {len(labels)} labels)",
        )
    frames: list[Any] = []
    for i, image in enumerate(images):
        frames.append(describe_frame(image, labels[i] if labels else None, o))
        if frames[-1].crs != frames[0].crs:
            raise InputError(image, f"CRS differs from that of {images[0]}")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if table["patch_id"].duplicated().any():
        raise InputError(images[0], "two frames share a file name; patch ids would clash")
    table.attrs["landforge"] = frames[0].attrs["landforge"]
    write_tiles(table, out)
    return table


def write_tiles(table: Any, out: str | os.PathLike[str]) -> Path:
    """Write a patch table as GeoParquet with its tiling settings in the metadata."""
    import pyarrow.parquet as pq

    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
        pa_table = pq.read_table(tmp)
        meta = dict(pa_table.schema.metadata or {})
        meta[METADATA_KEY] = json.dumps(table.attrs.get("landforge", {})).encode()
        pq.write_table(pa_table.replace_schema_metadata(meta), tmp)
    return Path(out)


def read_tiles(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> Any:
    """Patch tables written by :func:`tile_frames`, concatenated (settings of the first)."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow.parquet as pq

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise OptionError("tiles", "give at least one patch table")
    frames: list[Any] = []
    settings: dict[str, Any] = {}
    for p in items:
        path = Path(p)
        if not path.is_file():
            raise InputError(path, "patch table does not exist (write one with `curate tiles`)")
        try:
            meta = pq.read_schema(path).metadata or {}
            frame = gpd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(path, f"not a GeoParquet patch table ({type(exc).__name__})") from None
        if "patch_id" not in frame.columns or not any(c.startswith(LBP_PREFIX) for c in frame):
            raise InputError(path, "not a patch table: no patch_id or lbp_ columns")
        if not settings and METADATA_KEY in meta:
            settings = json.loads(meta[METADATA_KEY])
        if frames and frame.crs != frames[0].crs:
            raise InputError(path, f"CRS differs from that of {items[0]}")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    table.attrs["landforge"] = settings
    return table


def feature_columns(table: Any, which: FeatureSet) -> list[str]:
    """The feature columns of a patch table for ``label``, ``texture`` or ``combined``.

    Raises:
        OptionError: label features asked for a table written without labels.
    """
    label = [c for c in table.columns if c.startswith(LABEL_PREFIX)]
    texture = [c for c in table.columns if c.startswith(LBP_PREFIX)]
    if which != "texture" and not label:
        raise OptionError(
            "features",
            f"{which!r} needs label histograms: the patches were described "
            "without labels; use features=texture",
        )
    return {"label": label, "texture": texture, "combined": [*label, *texture]}[which]


def _bands(
    count: int, bands: Sequence[int] | None, field: str, path: str | os.PathLike[str]
) -> list[int]:
    """1-based band list, checked against the raster's band count (OptionError)."""
    chosen = list(bands) if bands else list(range(1, count + 1))
    bad = [b for b in chosen if not 1 <= b <= count]
    if bad:
        raise OptionError(
            field, f"band {bad[0]} does not exist: {Path(path).name} has {count} band(s)"
        )
    return chosen
