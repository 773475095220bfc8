"""Change chips: bi-temporal patches, labels, change labels and series footprints (FUSU).

:func:`build_change_chips` cuts aligned T1/T2 images and label rasters into patches of
``size`` pixels and writes per patch one chip file (``.npz`` or ``.safetensors``,
never pickle) holding

- ``t1``, ``t2``: (C, H, W) images in their own dtype;
- ``y1``, ``y2``: (H, W) uint8 class labels (0..K-1 of the taxonomy);
- ``yc``: (H, W) uint8 binary change label ``y1 != y2``. **Class 0** (FUSU's "others /
  too difficult", the background of any landforge taxonomy): a pixel whose label is 0
  at exactly one date is 255 (ignored), as its change cannot be told; 0 at both dates
  is "no change" (ours: FUSU does not say);
- ``series``: (T, Cs, h, w) float32 cut over the patch's **footprint**, a square
  centred on the patch and ``footprint_scale`` (5) times its side by geographic bounds,
  at ``series_res`` (10 m): at 0.5 m, 512 px = 256 m -> 1,280 m = 128 px; channels in
  FUSU's order (Sentinel-2 B1-B8, B8A, B9, B11, B12, then Sentinel-1 VV, VH);
  ``days`` (T,) int32 day offsets and ``mask`` (T,) bool (False: missing or dropped).

Beside them: ``index.parquet`` (GeoParquet, one patch polygon per chip with its file,
split, changed pixels, dates kept and frames dropped for cloud), ``footprints.parquet``
(the series footprint of every patch as a polygon) and ``chips.json`` (classes,
channels, dates and the train split's per-channel mean / std). The split is spatially
blocked (:func:`landforge.datasets.splits.split_windows`): blocks of ``split_block`` x
``split_block`` patches go whole into one subset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landforge.change.options import ChangeChipOptions
from landforge.change.series import Series, open_series
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, open_raster, read_grid
from landforge.progress import track

__all__ = [
    "CHIPS_FORMAT",
    "IGNORE",
    "build_change_chips",
    "change_label",
    "check_pair",
    "footprint_bounds",
    "load_chip",
    "save_chip",
]

CHIPS_FORMAT = "landforge-change-chips/1"
#: value of an ignored pixel in the change label
IGNORE = 255


def change_label(y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """``y1 != y2`` as uint8; 255 where exactly one date is class 0 (see the module doc)."""
    yc = (y1 != y2).astype(np.uint8)
    yc[(y1 == 0) != (y2 == 0)] = IGNORE
    return yc


def _describe(grid: RasterGrid) -> str:
    res = grid.res
    b = grid.bounds
    crs = grid.crs.to_string() if grid.crs else "no CRS"
    return (
        f"{grid.width}x{grid.height} px at {res[0]:g} m, {crs}, "
        f"bounds ({b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f})"
    )


def check_pair(t1: str | os.PathLike[str], t2: str | os.PathLike[str]) -> RasterGrid:
    """The grid of ``t1``; InputError naming both grids when ``t2`` is on another."""
    g1, g2 = read_grid(t1), read_grid(t2)
    same = (
        g1.shape == g2.shape
        and g1.crs == g2.crs
        and g1.transform.almost_equals(g2.transform, precision=1e-6)
    )
    if not same:
        raise InputError(
            t2,
            f"not on the grid of T1 {t1} [{_describe(g1)}]: T2 is [{_describe(g2)}] "
            "(resample it onto T1's grid)",
        )
    return g1


def footprint_bounds(
    grid: RasterGrid, window: Window, scale: float
) -> tuple[float, float, float, float]:
    """Bounds of the square ``scale`` times the window's extent, centred on it."""
    left, bottom, right, top = grid.window_grid(window).bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    hw, hh = (right - left) * scale / 2, (top - bottom) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def save_chip(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a chip as ``.npz`` (compressed) or ``.safetensors`` by suffix."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    else:
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def load_chip(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a chip written by :func:`save_chip` (no pickle: ``allow_pickle=False``)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(p)))
    with np.load(p, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _taxonomy(name: str) -> tuple[int, list[str], list[tuple[int, int, int]]]:
    """(K, names by value 0..K-1, colours) of a class system with label values."""
    from landforge.taxonomy.loader import load_classes

    try:
        cs = load_classes(name)
    except OptionError:
        raise
    except InputError as exc:
        if exc.source in (None, "taxonomy"):  # a name, not a file: the option is wrong
            raise OptionError("taxonomy", exc.problem) from None
        raise
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise OptionError("taxonomy", f"unknown taxonomy {name!r} ({exc})") from None
    valued = {int(c.value): c for c in cs if c.value is not None}
    if not valued:
        raise OptionError("taxonomy", f"{name!r} has no label values")
    k = max(valued) + 1
    names = [valued[v].name if v in valued else str(v) for v in range(k)]
    names[0] = getattr(cs, "nodata_name", "background")
    colours: list[tuple[int, int, int]] = []
    for v in range(k):
        col = valued[v].color if v in valued else None
        colours.append((int(col[0]), int(col[1]), int(col[2])) if col else (0, 0, 0))
    return k, names, colours


def _check_labels(y: np.ndarray, k: int, path: Path, taxonomy: str) -> None:
    bad = np.unique(y[(y < 0) | (y >= k)]) if y.size else np.array([])
    if bad.size:
        vals = ", ".join(str(int(v)) for v in bad[:8])
        raise InputError(path, f"label value(s) {vals} outside taxonomy {taxonomy} (0..{k - 1})")


class _Stats:
    """Running per-channel sums for the mean / std of the train split."""

    def __init__(self, n: int) -> None:
        self.s = np.zeros(n)
        self.s2 = np.zeros(n)
        self.n = np.zeros(n)

    def add(self, x: np.ndarray) -> None:
        """Add (C, ...) values."""
        x = x.reshape(x.shape[0], -1).astype(np.float64)
        self.s += x.sum(1)
        self.s2 += (x * x).sum(1)
        self.n += x.shape[1]

    def result(self) -> tuple[list[float], list[float]]:
        """(mean, std), std at least 1e-6."""
        n = np.maximum(self.n, 1)
        mean = self.s / n
        std = np.sqrt(np.maximum(self.s2 / n - mean**2, 0.0))
        return mean.tolist(), np.maximum(std, 1e-6).tolist()


def build_change_chips(
    t1: str | os.PathLike[str],
    t2: str | os.PathLike[str],
    label1: str | os.PathLike[str],
    label2: str | os.PathLike[str],
    out: str | os.PathLike[str],
    series: str | os.PathLike[str] | None = None,
    opts: ChangeChipOptions | None = None,
    *,
    series_cloud: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the change chips of one scene (see the module doc); returns a summary.

    ``series_cloud``: a cloud-mask stack for a series stack (see
    :func:`~landforge.change.series.open_series`).

    Raises:
        InputError: T1/T2 or labels on different grids, labels outside the taxonomy,
            a series with too few dates or unreadable dates, no patch left.
    """
    o = ChangeChipOptions.build(opts, **overrides)
    grid = check_pair(t1, t2)
    for lab in (label1, label2):
        check_pair(t1, lab)
    k, names, colours = _taxonomy(o.taxonomy)
    size, stride = o.size, o.stride or o.size
    if grid.height < size or grid.width < size:
        raise InputError(t1, f"{grid.width}x{grid.height} px is smaller than one {size} px patch")
    rows = list(range(0, grid.height - size + 1, stride))
    cols = list(range(0, grid.width - size + 1, stride))
    ser = open_series(series, o.min_dates, series_cloud) if series is not None else None
    try:
        with atomic_dir(out, marker="chips.json") as tmp:
            summary = _write(tmp, grid, (t1, t2, label1, label2), ser, o, k, rows, cols)
            summary.update(classes=names, colours=colours, taxonomy=o.taxonomy)
            meta = {"format": CHIPS_FORMAT, **summary}
            (tmp / "chips.json").write_text(json.dumps(meta, indent=2) + "\n")
    finally:
        if ser is not None:
            ser.close()
    return summary


def _write(
    tmp: Path,
    grid: RasterGrid,
    paths: tuple[Any, Any, Any, Any],
    ser: Series | None,
    o: ChangeChipOptions,
    k: int,
    rows: list[int],
    cols: list[int],
) -> dict[str, Any]:
    import geopandas as gpd
    from shapely.geometry import box

    from landforge.datasets.splits import split_windows

    (tmp / "chips").mkdir()
    size = o.size
    records: list[dict[str, Any]] = []
    footprints = []
    skipped = {"unchanged": 0, "unlabelled": 0, "uncovered": 0}
    dropped_total = 0
    srcs = [open_raster(p) for p in paths]
    try:
        ds = [s.__enter__() for s in srcs]
        bands = [str(d or f"band{i + 1}") for i, d in enumerate(ds[0].descriptions)]
        positions = [(r, c) for r in rows for c in cols]
        for r, c in track(positions, "change chips", quiet=True):
            win = Window(c, r, size, size)
            y1 = ds[2].read(1, window=win)
            y2 = ds[3].read(1, window=win)
            _check_labels(y1, k, Path(paths[2]), o.taxonomy)
            _check_labels(y2, k, Path(paths[3]), o.taxonomy)
            y1, y2 = y1.astype(np.uint8), y2.astype(np.uint8)
            yc = change_label(y1, y2)
            changed = int((yc == 1).sum())
            if o.changed_only and changed == 0:
                skipped["unchanged"] += 1
                continue
            if float((y1 > 0).mean()) < o.min_labelled:
                skipped["unlabelled"] += 1
                continue
            arrays = {
                "t1": ds[0].read(window=win),
                "t2": ds[1].read(window=win),
                "y1": y1,
                "y2": y2,
                "yc": yc,
            }
            fp = footprint_bounds(grid, win, o.footprint_scale)
            n_dates = dropped = 0
            if ser is not None:
                if ser.coverage(fp, grid.crs) < o.min_coverage:
                    skipped["uncovered"] += 1
                    continue
                cut = ser.read(fp, grid.crs, o.series_res, o.max_cloud)
                arrays.update(series=cut.data, days=cut.days, mask=cut.mask)
                n_dates, dropped = int(cut.mask.sum()), cut.dropped
                dropped_total += dropped
            name = f"c{r:06d}_{c:06d}.{o.format}"
            save_chip(tmp / "chips" / name, arrays)
            records.append(
                {
                    "chip": f"chips/{name}",
                    "row": r,
                    "col": c,
                    "changed_pixels": changed,
                    "changed_fraction": changed / float(size * size),
                    "dates": n_dates,
                    "dropped_cloud": dropped,
                    "geometry": box(*grid.window_grid(win).bounds),
                }
            )
            footprints.append({"chip": f"chips/{name}", "geometry": box(*fp)})
    finally:
        for s in srcs:
            s.__exit__(None, None, None)
    if not records:
        why = ", ".join(f"{v} {k_}" for k_, v in skipped.items() if v) or "none cut"
        where = paths[0] if not skipped["uncovered"] else (ser.path if ser else paths[0])
        raise InputError(where, f"no patch left ({why}); check min_coverage / changed_only")
    index = gpd.GeoDataFrame(records, geometry="geometry", crs=grid.crs)
    split = split_windows(
        index["row"].to_numpy(),
        index["col"].to_numpy(),
        o.stride or size,
        o.split_block,
        o.split,
        o.seed,
    )
    index["split"] = split["split"].to_numpy()
    index.to_parquet(tmp / "index.parquet")
    gpd.GeoDataFrame(footprints, geometry="geometry", crs=grid.crs).to_parquet(
        tmp / "footprints.parquet"
    )
    stats = _train_stats(tmp, index, ser is not None)
    counts = index["split"].value_counts().to_dict()
    return {
        "chips": len(index),
        "changed_chips": int((index["changed_pixels"] > 0).sum()),
        "splits": {str(k_): int(v) for k_, v in counts.items()},
        "skipped": skipped,
        "dropped_cloud_frames": dropped_total,
        "size": size,
        "gsd": grid.res[0],
        "crs": grid.crs.to_string(),
        "bands": bands,
        "series_channels": ser.channels if ser is not None else [],
        "series_dates": [d.isoformat() for d in ser.dates] if ser is not None else [],
        "footprint_scale": o.footprint_scale,
        "series_res": o.series_res,
        **stats,
    }


def _train_stats(root: Path, index: Any, with_series: bool) -> dict[str, Any]:
    """Per-channel mean / std of images (both dates) and series (real frames), train split."""
    subset = index[index["split"] == "train"]
    if subset.empty:
        subset = index
    img: _Stats | None = None
    ser: _Stats | None = None
    for chip in subset["chip"]:
        a = load_chip(root / chip)
        img = img or _Stats(a["t1"].shape[0])
        img.add(a["t1"])
        img.add(a["t2"])
        if with_series and a["mask"].any():
            s = a["series"][a["mask"]]  # (t, C, h, w)
            ser = ser or _Stats(s.shape[1])
            ser.add(np.moveaxis(s, 1, 0))
    assert img is not None
    mean, std = img.result()
    out: dict[str, Any] = {"mean": mean, "std": std}
    if with_series:
        smean, sstd = ser.result() if ser is not None else ([], [])
        out.update(series_mean=smean, series_std=sstd)
    return out
