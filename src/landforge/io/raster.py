"""Raster I/O: one grid type, windowed reads, Cloud-Optimised GeoTIFF writes.

All raster access in landforge goes through this module so that errors name the file,
large rasters are read by windows, and every output is a tiled COG with CRS and nodata.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landforge.errors import InputError
from landforge.io.atomic import (
    atomic_path,
    ensure_writable_parent,
    remove_stale_temporaries,
    temp_sibling,
)

__all__ = [
    "READ_CACHE_MB",
    "READ_ERRORS",
    "bounded_read_cache",
    "CheckedReader",
    "RasterGrid",
    "open_raster",
    "read_error",
    "read_raster",
    "read_grid",
    "write_cog",
    "cog_options",
    "stage_to_cog",
    "COG_COMPRESSION",
    "COG_THREADS",
    "iter_blocks",
    "check_same_grid",
    "resample_to_grid",
    "StagedCOG",
]


#: GDAL block cache (MB) while a windowed stage reads, unless ``GDAL_CACHEMAX`` is set.
READ_CACHE_MB = 64


def bounded_read_cache() -> contextlib.AbstractContextManager[Any]:
    """A ``rasterio.Env`` capping GDAL's block cache at :data:`READ_CACHE_MB`.

    Used while a windowed stage reads its rasters window by window: GDAL's default
    cache (5 % of RAM) keeps every tile read until it fills, so such a pass would end
    up holding the raster all the same. A no-op when the environment sets
    ``GDAL_CACHEMAX`` (the user's choice wins).
    """
    if "GDAL_CACHEMAX" in os.environ:
        return contextlib.nullcontext()
    return rasterio.Env(GDAL_CACHEMAX=READ_CACHE_MB)


@dataclass(frozen=True)
class RasterGrid:
    """A georeferenced pixel grid: CRS, affine transform and shape.

    The core raster type of landforge: POI maps, predictions and labels are computed
    "on the grid of" an image, and two rasters can be combined only on the same grid.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @classmethod
    def from_bounds(
        cls, left: float, bottom: float, right: float, top: float, res: float, crs: Any
    ) -> RasterGrid:
        """A north-up grid covering the bounds at square pixels of size ``res``."""
        width = int(round((right - left) / res))
        height = int(round((top - bottom) / res))
        return cls(CRS.from_user_input(crs), Affine(res, 0, left, 0, -res, top), width, height)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """(x, y) pixel size, positive, in CRS units."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid CRS."""
        west, south, east, north = rasterio.transform.array_bounds(
            self.height, self.width, self.transform
        )
        return (west, south, east, north)

    def window_grid(self, window: Window) -> RasterGrid:
        """The sub-grid covered by ``window``."""
        return RasterGrid(
            self.crs,
            rasterio.windows.transform(window, self.transform),
            int(window.width),
            int(window.height),
        )

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """The x and y coordinates of pixel centres, each of shape (width,) and (height,).

        Valid for north-up grids (no rotation), which is all landforge writes.
        """
        t = self.transform
        xs = t.c + t.a * (np.arange(self.width) + 0.5)
        ys = t.f + t.e * (np.arange(self.height) + 0.5)
        return xs, ys

    def profile(self, count: int, dtype: Any, nodata: float | None = None) -> dict[str, Any]:
        """A tiled GeoTIFF profile on this grid with ``count`` bands of ``dtype``."""
        return {
            "driver": "GTiff",
            "crs": self.crs,
            "transform": self.transform,
            "width": self.width,
            "height": self.height,
            "count": count,
            "dtype": np.dtype(dtype).name,
            "nodata": nodata,
        }


try:  # GDAL errors raised as such (rasterio wraps most of them in RasterioIOError)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - a rasterio without the private module
    CPLE_BaseError = RasterioIOError  # type: ignore[misc,assignment]

#: The exceptions of a failed GDAL read: a truncated or corrupt file found mid-read.
READ_ERRORS: tuple[type[BaseException], ...] = (RasterioIOError, CPLE_BaseError)


def read_error(path: str | os.PathLike[str], exc: BaseException) -> InputError:
    """The InputError for a failed read of ``path``: names the file and GDAL's reason."""
    return InputError(
        path, f"cannot read pixels ({_gdal_text(exc, path)}); is the file truncated or corrupt?"
    )


class CheckedReader(DatasetReader):
    """A rasterio dataset whose pixel reads raise InputError naming the file.

    :func:`open_raster` yields one: a tile that turns out truncated or corrupt in the
    middle of a run is then reported as ``error: <file>: cannot read pixels ...``
    wherever it is read, not as a GDAL traceback. Everything else is rasterio's.
    """

    _landforge_path: str

    def read(self, *args: Any, **kwargs: Any) -> Any:
        """``DatasetReader.read``; a GDAL read error raises InputError naming the file."""
        try:
            return super().read(*args, **kwargs)
        except READ_ERRORS as exc:
            raise read_error(self._landforge_path, exc) from None

    def read_masks(self, *args: Any, **kwargs: Any) -> Any:
        """``DatasetReader.read_masks``; a GDAL read error raises InputError."""
        try:
            return super().read_masks(*args, **kwargs)
        except READ_ERRORS as exc:
            raise read_error(self._landforge_path, exc) from None

    def dataset_mask(self, *args: Any, **kwargs: Any) -> Any:
        """``DatasetReader.dataset_mask``; a GDAL read error raises InputError."""
        try:
            return super().dataset_mask(*args, **kwargs)
        except READ_ERRORS as exc:
            raise read_error(self._landforge_path, exc) from None


@contextlib.contextmanager
def open_raster(path: str | os.PathLike[str]) -> Iterator[CheckedReader]:
    """Open a raster for reading; every problem raises InputError naming the file.

    A missing, empty, unrecognised or corrupt file fails here; a read that fails later
    (a truncated tile) fails in ``read`` / ``read_masks`` / ``dataset_mask`` of the
    yielded :class:`CheckedReader`.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "raster does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    try:
        src = rasterio.open(p)
    except READ_ERRORS as exc:
        raise InputError(p, f"not a readable raster ({_gdal_text(exc, p)})") from None
    try:
        # the dataset keeps rasterio's class behaviour; only its reads name the file
        src.__class__ = CheckedReader
        src._landforge_path = str(p)
        yield src  # type: ignore[misc]
    finally:
        src.close()


def read_grid(path: str | os.PathLike[str], require_crs: bool = True) -> RasterGrid:
    """The grid of a raster file."""
    with open_raster(path) as src:
        if require_crs and src.crs is None:
            raise InputError(path, "raster has no CRS")
        return RasterGrid(src.crs, src.transform, src.width, src.height)


def read_raster(
    path: str | os.PathLike[str],
    window: Window | None = None,
    bands: Sequence[int] | None = None,
    masked: bool = False,
) -> np.ndarray:
    """Read (bands, rows, cols) from ``path``, optionally a window and a band subset.

    ``bands`` are 1-based as in GDAL. With ``masked=True`` a numpy masked array marks
    nodata.
    """
    with open_raster(path) as src:
        return src.read(indexes=list(bands) if bands else None, window=window, masked=masked)


def check_same_grid(
    reference: str | os.PathLike[str] | RasterGrid,
    other: str | os.PathLike[str],
    atol: float = 1e-6,
) -> None:
    """Raise InputError if ``other`` is not on the same grid as ``reference``."""
    ref = reference if isinstance(reference, RasterGrid) else read_grid(reference, False)
    grid = read_grid(other, require_crs=False)
    if ref.shape != grid.shape:
        raise InputError(
            other,
            f"grid {grid.width}x{grid.height} differs from reference {ref.width}x{ref.height}",
        )
    if ref.crs and not grid.crs:
        raise InputError(
            other,
            f"raster has no CRS (the reference grid is in {ref.crs.to_string()}); "
            "set it (e.g. gdal_edit.py -a_srs) and retry",
        )
    if grid.crs and not ref.crs:
        where = other if isinstance(reference, RasterGrid) else reference
        raise InputError(
            where,
            f"raster has no CRS but {Path(other).name} is in {grid.crs.to_string()}; "
            "set it (e.g. gdal_edit.py -a_srs) and retry",
        )
    if ref.crs and grid.crs and ref.crs != grid.crs:
        raise InputError(other, f"CRS {grid.crs.to_string()} differs from {ref.crs.to_string()}")
    if not ref.transform.almost_equals(grid.transform, precision=atol):
        raise InputError(other, "raster is misaligned with the reference grid (transform differs)")


def iter_blocks(grid: RasterGrid | tuple[int, int], block: int = 1024) -> Iterator[Window]:
    """Windows of at most ``block`` x ``block`` covering the grid row by row."""
    height, width = grid.shape if isinstance(grid, RasterGrid) else grid
    for row in range(0, height, block):
        for col in range(0, width, block):
            yield Window(col, row, min(block, width - col), min(block, height - row))


def write_cog(
    path: str | os.PathLike[str],
    array: np.ndarray,
    grid: RasterGrid,
    nodata: float | None = None,
    band_descriptions: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    tags: Mapping[str, Any] | None = None,
    compress: str | None = None,
    blocksize: int = 512,
    overview_resampling: str | None = None,
    level: int | None = None,
    max_z_error: float | None = None,
) -> Path:
    """Write ``array`` (bands, rows, cols) or (rows, cols) as a Cloud-Optimised GeoTIFF.

    Written atomically through GDAL's COG driver: tiled, compressed (by default
    :data:`COG_COMPRESSION` for the array's data type, see :func:`cog_options`), with
    overviews, CRS, nodata, band descriptions and optional colour table (single-band
    uint8). The array is staged on disk strip by strip (:class:`StagedCOG`), so the
    write never holds a second copy of it.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[1:] != grid.shape:
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid {grid.shape}")
    cog = cog_options(arr.dtype, compress, blocksize, overview_resampling, level, max_z_error)
    staged = StagedCOG(
        path, grid, arr.shape[0], arr.dtype, nodata, band_descriptions, colormap,
        {k: str(v) for k, v in (tags or {}).items()}, cog_options=cog,
    )  # fmt: skip
    try:
        rows = max(1, _STRIP_BYTES // max(arr.shape[0] * arr.shape[2] * arr.itemsize, 1))
        for row in range(0, arr.shape[1], rows):
            staged.write(arr[:, row : row + rows], row)
    except BaseException:
        staged.abort()
        raise
    return staged.finish()


#: Rows handed to GDAL at a time when :func:`write_cog` stages an in-memory array.
_STRIP_BYTES = 16 * 2**20

COG_CACHE_MB = 256
"""GDAL block cache (MB) while a staged raster is converted to a COG."""

COG_THREADS = "ALL_CPUS"
"""Threads GDAL compresses COG tiles with (``NUM_THREADS``); ``LANDFORGE_COG_THREADS`` wins."""

COG_COMPRESSION: dict[str, tuple[str, int]] = {"float": ("ZSTD", 1), "integer": ("ZSTD", 1)}
"""Default (codec, level) of a COG by data type, chosen by measurement (docs/scaling.md).

With a predictor (floating point, 3, for float bands; horizontal, 2, for integers) ZSTD
level 1 compresses POI maps and class maps within a few per cent of DEFLATE level 6 and
ZSTD level 9 at a fraction of the CPU time.
"""

LOSSLESS_CODECS = frozenset({"DEFLATE", "LZW", "ZSTD", "LZMA", "NONE"})
LERC_CODECS = frozenset({"LERC", "LERC_DEFLATE", "LERC_ZSTD"})

#: Staging files up to this size are uncompressed (cheapest to write and to read back);
#: larger ones are compressed with ZSTD level 1 to bound the scratch disk they take.
STAGE_RAW_MAX_BYTES = 2 * 2**30


def cog_threads() -> str:
    """``NUM_THREADS`` for GDAL's COG writes: ``LANDFORGE_COG_THREADS`` or :data:`COG_THREADS`."""
    return os.environ.get("LANDFORGE_COG_THREADS", COG_THREADS)


def cog_options(
    dtype: Any,
    compress: str | None = None,
    blocksize: int = 512,
    overview_resampling: str | None = None,
    level: int | None = None,
    max_z_error: float | None = None,
) -> dict[str, Any]:
    """GDAL COG creation options for bands of ``dtype``.

    ``compress`` defaults to :data:`COG_COMPRESSION` for the data type (with its
    level unless ``level`` is given); lossless codecs get the floating-point predictor
    for float bands and the horizontal one for integers. LERC codecs are lossy and need
    ``max_z_error`` (the largest absolute error allowed per pixel, e.g. 1e-3 for
    probabilities): only on the user's explicit request.
    """
    integer = not np.issubdtype(np.dtype(dtype), np.floating)
    default, default_level = COG_COMPRESSION["integer" if integer else "float"]
    codec = (compress or default).upper()
    if codec not in LOSSLESS_CODECS | LERC_CODECS:
        raise ValueError(f"unknown COG compression {compress!r}")
    options: dict[str, Any] = {
        "driver": "COG",
        "compress": codec,
        "blocksize": blocksize,
        "overview_resampling": overview_resampling or ("nearest" if integer else "average"),
        "num_threads": cog_threads(),
        "BIGTIFF": "IF_SAFER",
    }
    if codec in {"DEFLATE", "LZW", "ZSTD"}:
        options["predictor"] = 2 if integer else 3
    if level is not None:
        options["level"] = level
    elif codec == default:  # the measured level; other codecs keep GDAL's default
        options["level"] = default_level
    if codec in LERC_CODECS:
        if max_z_error is None:
            raise ValueError(f"{codec} is lossy: give max_z_error (the largest error allowed)")
        options["max_z_error"] = max_z_error
    elif max_z_error is not None:
        raise ValueError(f"max_z_error applies to LERC compression, not {codec}")
    return options


def _cog_options(
    dtype: Any,
    compress: str | None = None,
    blocksize: int = 512,
    overview_resampling: str | None = None,
) -> dict[str, Any]:
    """:func:`cog_options` under its former private name (kept for callers)."""
    return cog_options(dtype, compress, blocksize, overview_resampling)


def _cog_env(cog: Mapping[str, Any]) -> dict[str, Any]:
    """GDAL configuration while a staged raster is copied to a COG.

    * ``GDAL_CACHEMAX``: GDAL's block cache defaults to 5 % of RAM and fills up while
      the COG driver copies a large raster and builds its overviews; bounded at
      :data:`COG_CACHE_MB` so memory stays flat with the raster size.
    * ``COG_TMP_COMPRESSION=NONE``: the COG driver first writes the overviews to a
      temporary file beside the output, by default ZSTD-compressed at ZSTD's default
      level in 128-pixel tiles, recompressed as they fill: measured at 85 % of the
      whole write of POI maps (docs/scaling.md). Uncompressed, it costs disk (a third
      of the raster) instead; the tiles are compressed once, in the final file.
    * ``GDAL_TIFF_OVR_BLOCKSIZE``: that temporary file in the COG's own tiles.

    A variable the user set in the environment wins.
    """
    env: dict[str, Any] = {
        "GDAL_CACHEMAX": COG_CACHE_MB,
        "COG_TMP_COMPRESSION": "NONE",
        "ZSTD_LEVEL_OVERVIEW": 1,  # if a GDAL ignores COG_TMP_COMPRESSION
        "GDAL_TIFF_OVR_BLOCKSIZE": int(cog.get("blocksize", 512)),
    }
    return {k: v for k, v in env.items() if k not in os.environ}


#: The exceptions of a failed GDAL write (a full or failing disk).
_WRITE_ERRORS: tuple[type[BaseException], ...] = (*READ_ERRORS, OSError)


def stage_to_cog(stage: Path, final: Path, cog: Mapping[str, Any]) -> Path:
    """Copy the staged GeoTIFF ``stage`` to the COG ``final`` atomically; delete ``stage``.

    A failed write (a full or failing disk) raises InputError naming ``final`` and
    leaves neither a partial output nor the temporaries.
    """
    try:
        with atomic_path(final) as tmp, rasterio.Env(**_cog_env(cog)):
            try:
                rasterio.shutil.copy(stage, tmp, **cog)
            except _WRITE_ERRORS as exc:
                raise InputError(final, f"cannot write the COG ({_gdal_text(exc, tmp)})") from None
            finally:
                for leftover in tmp.parent.glob(f"{tmp.name}.*.tmp"):  # GDAL's own temporaries
                    leftover.unlink(missing_ok=True)
    finally:
        stage.unlink(missing_ok=True)
    return final


def _describe(
    dst: Any,
    descriptions: Sequence[str] | None,
    colormap: Mapping[int, tuple[int, ...]] | None,
    tags: Mapping[str, Any] | None,
) -> None:
    for i, desc in enumerate(descriptions or [], start=1):
        dst.set_band_description(i, desc)
    if colormap is not None:
        dst.write_colormap(1, dict(colormap))
    if tags:
        dst.update_tags(**{k: str(v) for k, v in tags.items()})


class StagedCOG:
    """A COG written strip by strip through a temporary striped GeoTIFF.

    For outputs too large to hold whole: ``write(rows_array, row)`` full-width strips
    in any order, then ``finish()`` copies the staging file to a COG atomically (or
    ``abort()`` removes it). The staging file is striped one row per strip, so every
    strip write is whole blocks (no read-modify-write), and uncompressed up to
    :data:`STAGE_RAW_MAX_BYTES` (ZSTD level 1 above): the tiles are compressed once,
    by the COG copy, in :data:`COG_THREADS` threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: RasterGrid,
        count: int,
        dtype: Any,
        nodata: float | None,
        descriptions: Sequence[str] | None = None,
        colormap: Mapping[int, tuple[int, ...]] | None = None,
        tags: Mapping[str, str] | None = None,
        scale: float | None = None,
        cog_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.final = ensure_writable_parent(path)
        self.dtype = np.dtype(dtype)
        self.cog_options = dict(cog_options or _cog_options(self.dtype))
        # named after this process: a killed run's stage is removed by the next write
        remove_stale_temporaries(self.final)
        self.stage = temp_sibling(self.final, ".stage.tif")
        profile = grid.profile(count, self.dtype, nodata)
        # one row per strip: every strip write is whole blocks, written straight to
        # disk. (Staged in the COG's tiles instead, the COG copy takes 20 % less CPU,
        # but partly written tiles wait in GDAL's block cache: +258 MiB at 4096² x 3
        # float32 against +98 MiB striped, growing with the raster up to the cache.)
        profile.update(tiled=False, blockysize=1, BIGTIFF="IF_SAFER")
        if count * self.dtype.itemsize * grid.width * grid.height > STAGE_RAW_MAX_BYTES:
            profile.update(compress="zstd", zstd_level=1)
        try:
            self.ds = rasterio.open(self.stage, "w", **profile)
        except READ_ERRORS as exc:
            self.stage.unlink(missing_ok=True)
            raise InputError(self.final, f"cannot write ({_gdal_text(exc, self.stage)})") from None
        _describe(self.ds, descriptions, colormap, tags)
        if scale is not None:
            self.ds.scales = [scale] * count
            self.ds.offsets = [0.0] * count

    def write(self, array: np.ndarray, row: int) -> None:
        """Write a full-width strip (bands, rows, width) starting at ``row``."""
        arr = array if array.ndim == 3 else array[None]
        try:
            self.ds.write(arr, window=Window(0, row, arr.shape[2], arr.shape[1]))
        except READ_ERRORS as exc:
            raise InputError(self.final, f"cannot write ({_gdal_text(exc, self.stage)})") from None

    def finish(self) -> Path:
        """Convert the staged raster to the final COG (atomically); return its path."""
        try:
            self.ds.close()
        except READ_ERRORS as exc:
            self.stage.unlink(missing_ok=True)
            raise InputError(self.final, f"cannot write ({_gdal_text(exc, self.stage)})") from None
        return stage_to_cog(self.stage, self.final, self.cog_options)

    def abort(self) -> None:
        """Close and delete the staged raster after a failure."""
        with contextlib.suppress(Exception):
            self.ds.close()
        self.stage.unlink(missing_ok=True)


def resample_to_grid(
    path: str | os.PathLike[str],
    grid: RasterGrid,
    resampling: Resampling = Resampling.nearest,
    band: int = 1,
    dtype: Any = None,
) -> np.ndarray:
    """Read band ``band`` of ``path`` warped onto ``grid`` (any CRS and resolution)."""
    from rasterio.vrt import WarpedVRT

    with open_raster(path) as src:
        if src.crs is None:
            raise InputError(path, "raster has no CRS, cannot resample it onto another grid")
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
        ) as vrt:
            try:
                out = vrt.read(band)
            except READ_ERRORS as exc:
                raise read_error(path, exc) from None
    return out.astype(dtype) if dtype is not None else out


def _gdal_text(exc: BaseException, path: str | os.PathLike[str] | None = None) -> str:
    """GDAL's own reason for ``exc``, one line, without the file's path repeated.

    rasterio's "Read failed. See previous exception for details." hides the reason in
    the chained GDAL error; that one is shown instead.
    """
    text = ""
    seen: BaseException | None = exc
    while seen is not None and not text.strip():
        text = str(seen)
        if "see previous exception" in text.lower():
            text = ""
        seen = seen.__cause__ or seen.__context__
    text = text.strip().splitlines()[0] if text.strip() else str(exc).strip()
    if path is not None:
        for form in (f"'{path}' ", f"{path}: ", f"{path}, ", str(path)):
            text = text.replace(form, "")
        name = Path(path).name
        if text.startswith((f"{name}: ", f"{name}, ")):
            text = text[len(name) + 2 :]
    text = text.strip() or type(exc).__name__
    return text[:200]


import rasterio.shutil  # noqa: E402  (imported for rasterio.shutil.copy)
import rasterio.transform  # noqa: E402
import rasterio.windows  # noqa: E402
