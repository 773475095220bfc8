"""Sentinel-1/2 monthly composites from a folder of dated scenes (FUSU A.2).

FUSU composites its Sentinel series per month: Sentinel-2 bands resampled to 10 m,
clouds masked, the mean of the clear observations of each month; Sentinel-1 VV/VH as
monthly means. Here:

* every ``.tif`` / ``.jp2`` of the folder is a scene, except Sentinel-2 band files
  (``T33UUU_20170216T102101_B02.jp2``, ``..._B02_10m.jp2``: the layout of a SAFE's
  ``IMG_DATA``): those with the same prefix are one scene, their bands stacked in
  FUSU's order (B01-B08, B8A, B09, B11, B12; B10, the cirrus band, is left out) on the
  finest band's grid by nearest neighbour (a virtual raster, nothing copied); its
  cloud mask is ``masks/<prefix>.tif``. The date comes from the file name
  (``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY-MM``) or, failing that, from the tags
  ``date`` / ``ACQUISITION_DATE`` / ``TIFFTAG_DATETIME``; a scene without a date is an
  error (nothing is written);
* every scene is read onto one output grid, the first scene's extent and CRS at ``res``
  metres, by nearest-neighbour resampling (GDAL warp);
* Sentinel-2: a pixel is cloudy where the cloud mask or probability is >= ``cloud_threshold``,
  taken from ``masks/<scene file name>`` (on the scene's grid) or a band of the scene
  (``cloud_band``, default the band described ``cloud``/``CLM``/``CLP``); nodata pixels
  are not observations either;
* Sentinel-1: the mean is taken in linear power (input in dB is converted first:
  ``s1_units``), written in linear power or, with ``db``, in dB;
* each month gets the mean of its clear observations and their count; a month without
  any clear observation is all nodata (NaN) and is counted, not an error.

Output: one COG per month ``OUT/YYYY-MM.tif`` (the bands + a ``count`` band), or with
``stack`` one COG with a band per month and band (descriptions ``YYYY-MM`` or
``YYYY-MM B04``) plus ``<stem>.count.tif``: the dated-bands layout of a time series.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
import xml.sax.saxutils
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import (
    RasterGrid,
    StagedCOG,
    bounded_read_cache,
    check_same_grid,
    iter_blocks,
    open_raster,
)
from landforge.prep.options import MonthlyOptions
from landforge.prep.windows import check_bands

__all__ = ["Scene", "find_scenes", "monthly_composites", "scene_date"]

_FULL = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_MONTH = re.compile(r"(?<!\d)(\d{4})-(\d{2})(?![\d-])")
_DATE_TAGS = ("date", "DATE", "ACQUISITION_DATE", "acquisition_date", "TIFFTAG_DATETIME")
_CLOUD_NAMES = ("cloud", "clm", "clp", "cloud_mask", "cloud_prob")


@dataclass(frozen=True)
class Scene:
    """One dated scene of the folder."""

    path: Path
    date: dt.date
    mask_name: str | None = None

    @property
    def mask_file(self) -> str:
        """The file name of its cloud mask in the ``masks`` folder."""
        return self.mask_name or self.path.name

    @property
    def month(self) -> str:
        """``YYYY-MM``."""
        return f"{self.date.year:04d}-{self.date.month:02d}"


def _parse(match: re.Match[str] | None, full: bool) -> dt.date | None:
    if match is None:
        return None
    try:
        y, m = int(match.group(1)), int(match.group(2))
        return dt.date(y, m, int(match.group(3)) if full else 1)
    except ValueError:
        return None


def scene_date(path: str | os.PathLike[str], tags: dict[str, str] | None = None) -> dt.date | None:
    """The date of a scene from its file name, else from its tags; None when neither has one."""
    stem = Path(path).stem
    found = _parse(_FULL.search(stem), True)
    if found is None:
        for key in _DATE_TAGS:
            if key in (tags or {}):
                text = str((tags or {})[key]).replace(":", "-", 2)
                found = _parse(_FULL.search(text), True) or _parse(_MONTH.search(text), False)
                if found is not None:
                    break
    return found or _parse(_MONTH.search(stem), False)


def find_scenes(folder: str | os.PathLike[str], stack_dir: Path | None = None) -> list[Scene]:
    """The scenes of ``folder`` with their dates, sorted by date then name.

    Sentinel-2 band files are stacked per prefix into a virtual raster written to
    ``stack_dir`` (a temporary folder of the caller's; required when there are any).

    Raises:
        InputError: the folder does not exist or holds no scene, or a scene has no date.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            root, "scene folder does not exist" if not root.exists() else "not a folder"
        )
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in _SCENE_SUFFIXES)
    groups, paths = band_groups(files)
    if not paths and not groups:
        raise InputError(root, "no .tif or .jp2 scenes in the folder")
    if groups and stack_dir is None:
        raise ValueError("Sentinel-2 band files need a stack_dir for their virtual stacks")
    scenes = []
    for p in paths:
        with open_raster(p) as src:
            scenes.append(Scene(p, _dated(p, scene_date(p, src.tags()))))
    for prefix, bands in groups.items():
        assert stack_dir is not None
        vrt = band_stack(bands, stack_dir / f"{prefix}.vrt")
        scenes.append(
            Scene(vrt, _dated(bands[next(iter(bands))], scene_date(prefix)), f"{prefix}.tif")
        )
    return sorted(scenes, key=lambda s: (s.date, s.path.name))


def _dated(path: Path, date: dt.date | None) -> dt.date:
    if date is None:
        raise InputError(
            path,
            "scene has no date: put YYYY-MM-DD or YYYYMMDD in the file name or a 'date' "
            "tag in the file",
        )
    return date


_SCENE_SUFFIXES = (".tif", ".tiff", ".jp2")
_BAND_FILE = re.compile(r"^(?P<prefix>.+?)_(?P<band>B(?:0[1-9]|1[0-2]|8A))(?:_\d+m)?$", re.I)
#: Sentinel-2 bands of a stacked scene, in FUSU's channel order (B10 left out).
S2_BAND_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


def band_groups(files: list[Path]) -> tuple[dict[str, dict[str, Path]], list[Path]]:
    """Sentinel-2 band files grouped by prefix (band -> file), and the other files."""
    groups: dict[str, dict[str, Path]] = {}
    other = []
    for f in files:
        m = _BAND_FILE.match(f.stem)
        if m is None:
            other.append(f)
            continue
        band = m.group("band").upper()
        if band in S2_BAND_ORDER:  # B10 (cirrus) is not a surface band
            groups.setdefault(m.group("prefix"), {})[band] = f
    return groups, other


def band_stack(bands: dict[str, Path], out: Path) -> Path:
    """A VRT stacking single-band files in :data:`S2_BAND_ORDER` on the finest grid.

    Every band is resampled to the finest band's pixels by nearest neighbour (FUSU's
    rule for the 20 and 60 m bands); the files must cover the same extent.
    """
    order = [b for b in S2_BAND_ORDER if b in bands]
    info = {}
    for b in order:
        with open_raster(bands[b]) as src:
            if src.count != 1:
                raise InputError(bands[b], f"a band file has {src.count} bands, not 1")
            if src.crs is None:
                raise InputError(bands[b], "band file has no CRS")
            info[b] = (src.width, src.height, src.res, src.bounds, src.crs, src.dtypes[0])
    fine = min(order, key=lambda b: info[b][2][0])
    width, height, (rx, ry), bounds, crs, _ = info[fine]
    for b in order:
        if any(abs(x - y) > 1e-6 * max(rx, 1.0) for x, y in zip(info[b][3], bounds, strict=True)):
            raise InputError(
                bands[b], f"band covers {tuple(info[b][3])}, not the extent of {bands[fine].name}"
            )
    # JPEG 2000 bands coarser than the grid are decoded once (see _decoded)
    coarse = {b for b in order if info[b][2][0] > rx * (1 + 1e-9) and _is_jp2(bands[b])}
    sources = {b: _decoded(bands[b], out) if b in coarse else bands[b] for b in order}
    esc = xml.sax.saxutils.escape
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{esc(crs.to_wkt())}</SRS>",
        f"  <GeoTransform>{bounds[0]!r}, {rx!r}, 0.0, {bounds[3]!r}, 0.0, {-ry!r}</GeoTransform>",
    ]
    for i, b in enumerate(order, start=1):
        w, h, *_, dtype = info[b]
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, "Float32")}" band="{i}">',
            f"    <Description>{b}</Description>",
            '    <SimpleSource resampling="nearest">',
            f'      <SourceFilename relativeToVRT="0">{esc(str(sources[b].resolve()))}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
            f'      <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
            "    </SimpleSource>",
            "  </VRTRasterBand>",
        ]
    lines.append("</VRTDataset>")
    out.write_text("\n".join(lines) + "\n")
    return out


def _is_jp2(path: Path) -> bool:
    return path.suffix.lower() in (".jp2", ".j2k")


def _decoded(band: Path, vrt: Path) -> Path:
    """A JPEG 2000 band decoded once into a plain tiled GeoTIFF beside ``vrt``.

    GDAL's JPEG 2000 driver decodes the codestream again for every block of an
    upsampled read: the 20 m bands of one 1536 x 768 Brandenburg scene took 7-9 CPU s
    each read through the VRT, against 0.06 s decoded at their own resolution and
    upsampled from a GeoTIFF (measured). Costs scratch disk of the coarse bands' raw
    size (a quarter of a 10 m band per 20 m band).
    """
    out = vrt.with_name(f"{vrt.stem}.{band.stem}.tif")
    with open_raster(band) as src:
        profile = {**src.profile, "driver": "GTiff", "tiled": True, "blockxsize": 256,
                   "blockysize": 256, "compress": None}  # fmt: skip
        data = src.read()
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


_GDAL_TYPES = {
    "uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
    "int32": "Int32", "float32": "Float32", "float64": "Float64",
}  # fmt: skip


def _cloud_band(src: Any, o: MonthlyOptions) -> int | None:
    if o.sensor != "s2":
        return None
    if o.cloud_band is not None:
        if o.cloud_band > src.count:
            raise OptionError(
                "cloud_band",
                f"band {o.cloud_band} does not exist (the scenes have {src.count} bands)",
            )
        return o.cloud_band
    for i, name in enumerate(src.descriptions or [], start=1):
        if name and name.strip().lower() in _CLOUD_NAMES:
            return i
    return None


@dataclass
class _Plan:
    grid: RasterGrid
    bands: list[int]
    names: list[str]
    cloud_band: int | None
    in_db: bool


def _plan(scenes: list[Scene], o: MonthlyOptions) -> _Plan:
    """Check every scene (bands, masks) before anything is written; the output grid."""
    first = scenes[0].path
    with open_raster(first) as src:
        if src.crs is None:
            raise InputError(first, "scene has no CRS")
        count = src.count
        cloud = _cloud_band(src, o)
        default = [b for b in range(1, count + 1) if b != cloud]
        bands = check_bands(o.bands, count) if o.bands is not None else default
        names = [src.descriptions[b - 1] or f"band{b}" for b in bands]
        units = str(src.tags().get("units", "")).strip().lower()
        left, bottom, right, top = src.bounds
        grid = RasterGrid.from_bounds(left, bottom, right, top, o.res, src.crs)
    in_db = o.s1_units == "db" or (o.s1_units == "auto" and units == "db")
    for scene in scenes:
        with open_raster(scene.path) as src:
            if src.count != count:
                raise InputError(
                    scene.path, f"scene has {src.count} bands; {first.name} has {count}"
                )
            if src.crs is None:
                raise InputError(scene.path, "scene has no CRS")
        if o.masks is not None and o.sensor == "s2":
            mask = Path(o.masks) / scene.mask_file
            if not mask.is_file():
                raise InputError(mask, f"no cloud mask for scene {scene.path.name}")
            check_same_grid(scene.path, mask)
    return _Plan(grid, bands, names, cloud if o.masks is None else None, in_db)


def _read(vrt: Any, indexes: list[int], window: Any) -> np.ndarray:
    return np.asarray(vrt.read(indexes=indexes, window=window), np.float64)


@contextlib.contextmanager
def _opened(paths: list[Path], grid: RasterGrid) -> Iterator[list[Any]]:
    """Every path warped onto ``grid`` by nearest neighbour, open for the whole run.

    A scene already on ``grid`` is read as it is: a warp reads its source in many small
    chunks, and for JPEG 2000 band files every chunk decodes the codestream again
    (measured: minutes instead of seconds for one 1536 x 768 Brandenburg scene).
    """
    with contextlib.ExitStack() as stack:
        vrts = []
        for p in paths:
            src = stack.enter_context(open_raster(p))
            if (src.crs, src.transform, src.width, src.height) == (
                grid.crs, grid.transform, grid.width, grid.height,
            ):  # fmt: skip
                vrts.append(src)
                continue
            vrts.append(
                stack.enter_context(
                    WarpedVRT(
                        src,
                        crs=grid.crs,
                        transform=grid.transform,
                        width=grid.width,
                        height=grid.height,
                        resampling=Resampling.nearest,
                    )
                )
            )
        yield vrts


def _month_window(
    idx: list[int],
    vrts: list[Any],
    masks: list[Any] | None,
    plan: _Plan,
    o: MonthlyOptions,
    window: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the clear observations and their count, for the scenes ``idx`` of one month."""
    h, w = int(window.height), int(window.width)
    total = np.zeros((len(plan.bands), h, w))
    count = np.zeros((h, w), np.int64)
    for i in idx:
        vrt = vrts[i]
        data = _read(vrt, plan.bands, window)
        clear = np.all(np.isfinite(data), axis=0)
        if vrt.nodata is not None and not np.isnan(vrt.nodata):
            clear &= ~np.all(data == vrt.nodata, axis=0)
        if masks is not None:
            clear &= _read(masks[i], [1], window)[0] < o.cloud_threshold
        elif plan.cloud_band is not None:
            clear &= _read(vrt, [plan.cloud_band], window)[0] < o.cloud_threshold
        if o.sensor == "s1" and plan.in_db:
            data = 10.0 ** (data / 10.0)
        total += np.where(clear, data, 0.0)
        count += clear
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if o.sensor == "s1" and o.db:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = 10.0 * np.log10(np.where(mean > 0, mean, np.nan))
    return mean.astype(np.float32), count


def monthly_composites(
    scenes_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: MonthlyOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Per-month means of the clear observations of the scenes in ``scenes_dir``.

    Args:
        scenes_dir: folder of dated scenes (``.tif``).
        out: output folder (one COG per month), or with ``stack`` the stack ``.tif``.
        opts: :class:`MonthlyOptions`.
        **overrides: fields of :class:`MonthlyOptions`.

    Returns:
        Summary: months, scenes per month, months without a clear observation, mean
        clear observations per pixel and month, output files.

    Raises:
        InputError: no scenes, a scene without a date, scenes with different bands, a
            missing cloud mask or one on another grid.
        OptionError: a band that does not exist.
    """
    o = MonthlyOptions.build(opts, **overrides)
    with tempfile.TemporaryDirectory(prefix="landforge-stacks-") as stacks:
        return _composites(find_scenes(scenes_dir, Path(stacks)), out, o)


def _composites(
    scenes: list[Scene], out: str | os.PathLike[str], o: MonthlyOptions
) -> dict[str, Any]:
    plan = _plan(scenes, o)
    months = sorted({s.month for s in scenes})
    members = {m: [i for i, s in enumerate(scenes) if s.month == m] for m in months}
    mask_paths = (
        [Path(o.masks) / s.mask_file for s in scenes] if o.masks and o.sensor == "s2" else None
    )
    clear_sum = dict.fromkeys(months, 0)
    with (
        bounded_read_cache(),
        _opened([s.path for s in scenes], plan.grid) as vrts,
        _opened(mask_paths or [], plan.grid) as mask_vrts,
    ):
        masks = mask_vrts if mask_paths else None
        write = _write_stack if o.stack else _write_months
        files = write(Path(out), months, members, vrts, masks, plan, o, clear_sum)
    pixels = plan.grid.width * plan.grid.height
    empty = [m for m in months if clear_sum[m] == 0]
    return {
        "scenes": len(scenes),
        "months": months,
        "scenes_per_month": {m: len(members[m]) for m in months},
        "months_without_clear": empty,
        "mean_clear_per_pixel": {m: round(clear_sum[m] / pixels, 3) for m in months},
        "bands": plan.names,
        "grid": [plan.grid.width, plan.grid.height, o.res],
        "files": [str(f) for f in files],
    }


def _tags(o: MonthlyOptions, plan: _Plan) -> dict[str, str]:
    units = "" if o.sensor == "s2" else ("dB" if o.db else "linear power")
    return {"composite": "monthly mean of clear observations", "sensor": o.sensor, "units": units}


def _write_months(
    out: Path, months: list[str], members: dict[str, list[int]], vrts: list[Any],
    masks: list[Any] | None, plan: _Plan, o: MonthlyOptions, clear_sum: dict[str, int],
) -> list[Path]:  # fmt: skip
    written = []
    with atomic_dir(out) as tmp:
        staged = {
            m: StagedCOG(
                tmp / f"{m}.tif",
                plan.grid,
                len(plan.bands) + 1,
                np.float32,
                float("nan"),
                descriptions=[*plan.names, "count"],
                tags={**_tags(o, plan), "month": m},
            )
            for m in months
        }
        try:
            for window in iter_blocks(plan.grid, o.block):
                if window.col_off != 0:
                    continue
                full = window.__class__(0, window.row_off, plan.grid.width, window.height)
                for m in months:
                    mean, count = _month_window(members[m], vrts, masks, plan, o, full)
                    clear_sum[m] += int(count.sum())
                    staged[m].write(
                        np.concatenate([mean, count[None].astype(np.float32)]), int(full.row_off)
                    )
            for m in months:
                staged[m].finish()
                written.append(out / f"{m}.tif")
        except BaseException:
            for s in staged.values():
                s.abort()
            raise
    return written


def _write_stack(
    out: Path, months: list[str], members: dict[str, list[int]], vrts: list[Any],
    masks: list[Any] | None, plan: _Plan, o: MonthlyOptions, clear_sum: dict[str, int],
) -> list[Path]:  # fmt: skip
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise OptionError("out", "a stack is written as one GeoTIFF: give a .tif file")
    single = len(plan.bands) == 1
    names = [m if single else f"{m} {n}" for m in months for n in plan.names]
    count_path = out.with_suffix(".count.tif")
    tags = {**_tags(o, plan), "months": ",".join(months), "bands": ",".join(plan.names)}
    stack = StagedCOG(out, plan.grid, len(names), np.float32, float("nan"), names, tags=tags)
    counts = StagedCOG(count_path, plan.grid, len(months), np.uint16, None, months, tags=tags)
    finished = False
    try:
        for window in iter_blocks(plan.grid, o.block):
            if window.col_off != 0:
                continue
            full = window.__class__(0, window.row_off, plan.grid.width, window.height)
            means, nums = [], []
            for m in months:
                mean, count = _month_window(members[m], vrts, masks, plan, o, full)
                clear_sum[m] += int(count.sum())
                means.append(mean)
                nums.append(count.astype(np.uint16))
            stack.write(np.concatenate(means), int(full.row_off))
            counts.write(np.stack(nums), int(full.row_off))
        stack.finish()
        finished = True
        counts.finish()
    except BaseException:
        stack.abort()
        counts.abort()
        if finished:  # no stack without its count file
            out.unlink(missing_ok=True)
        raise
    return [out, count_path]
