"""Raster I/O: one grid type, windowed reads, Cloud-Optimised GeoTIFF writes.

All raster access in landforge goes through this module so that errors name the file,
large rasters are read by windows, and every output is a tiled COG with CRS and nodata.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
from rasterio.windows import Window

from landforge.errors import InputError
from landforge.io.atomic import atomic_path, ensure_writable_parent

__all__ = [
    "RasterGrid",
    "open_raster",
    "read_raster",
    "read_grid",
    "write_cog",
    "iter_blocks",
    "check_same_grid",
    "resample_to_grid",
    "StagedCOG",
]


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


@contextlib.contextmanager
def open_raster(path: str | os.PathLike[str]) -> Iterator[rasterio.io.DatasetReader]:
    """Open a raster for reading; a missing or corrupt file raises InputError naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "raster does not exist")
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(p, f"not a readable raster ({_short(exc)})") from None
    try:
        yield src
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
        try:
            return src.read(indexes=list(bands) if bands else None, window=window, masked=masked)
        except RasterioIOError as exc:
            raise InputError(path, f"cannot read pixels ({_short(exc)})") from None


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


_MEMORY_STAGING_BYTES = 256 * 2**20


def write_cog(
    path: str | os.PathLike[str],
    array: np.ndarray,
    grid: RasterGrid,
    nodata: float | None = None,
    band_descriptions: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    tags: Mapping[str, Any] | None = None,
    compress: str = "DEFLATE",
    blocksize: int = 512,
    overview_resampling: str | None = None,
) -> Path:
    """Write ``array`` (bands, rows, cols) or (rows, cols) as a Cloud-Optimised GeoTIFF.

    Written atomically through GDAL's COG driver: tiled, compressed, with overviews,
    CRS, nodata, band descriptions and optional colour table (single-band uint8).
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[1:] != grid.shape:
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid {grid.shape}")
    cog = _cog_options(arr.dtype, compress, blocksize, overview_resampling)
    if arr.nbytes > _MEMORY_STAGING_BYTES:
        # large: staged in a scratch file, so the copy does not double the memory in use
        staged = StagedCOG(
            path, grid, arr.shape[0], arr.dtype, nodata, band_descriptions, colormap,
            {k: str(v) for k, v in (tags or {}).items()}, cog_options=cog,
        )  # fmt: skip
        try:
            staged.write(arr, 0)
        except BaseException:
            staged.abort()
            raise
        return staged.finish()
    final = Path(path)
    with atomic_path(final) as tmp, rasterio.MemoryFile() as mem:
        profile = grid.profile(arr.shape[0], arr.dtype, nodata)
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
        with mem.open(**profile) as dst:
            dst.write(arr)
            _describe(dst, band_descriptions, colormap, tags)
        with mem.open() as src:
            rasterio.shutil.copy(src, tmp, **cog)
    return final


COG_CACHE_MB = 256
"""GDAL block cache (MB) while a staged raster is converted to a COG."""


def _cog_options(
    dtype: Any,
    compress: str = "DEFLATE",
    blocksize: int = 512,
    overview_resampling: str | None = None,
) -> dict[str, Any]:
    """GDAL COG creation options: compression with the right predictor, overviews."""
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    options: dict[str, Any] = {
        "driver": "COG",
        "compress": compress,
        "blocksize": blocksize,
        "overview_resampling": overview_resampling or ("nearest" if integer else "average"),
        "BIGTIFF": "IF_SAFER",
    }
    if compress.upper() in {"DEFLATE", "LZW", "ZSTD"}:
        options["predictor"] = 2 if integer else 3
    return options


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
    strip write is whole blocks (no read-modify-write of compressed tiles).
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
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.final.stem}.", suffix=".stage.tif", dir=self.final.parent
        )
        os.close(fd)
        self.stage = Path(tmp)
        profile = grid.profile(count, self.dtype, nodata)
        profile.update(tiled=False, blockysize=1, compress="deflate", zlevel=1, BIGTIFF="IF_SAFER")
        self.ds = rasterio.open(self.stage, "w", **profile)
        _describe(self.ds, descriptions, colormap, tags)
        if scale is not None:
            self.ds.scales = [scale] * count
            self.ds.offsets = [0.0] * count

    def write(self, array: np.ndarray, row: int) -> None:
        """Write a full-width strip (bands, rows, width) starting at ``row``."""
        arr = array if array.ndim == 3 else array[None]
        self.ds.write(arr, window=Window(0, row, arr.shape[2], arr.shape[1]))

    def finish(self) -> Path:
        """Convert the staged raster to the final COG (atomically); return its path."""
        self.ds.close()
        try:
            # GDAL's block cache defaults to 5 % of RAM and fills up while the COG driver
            # copies a large raster and builds its overviews: bound it unless the user
            # chose a size (GDAL_CACHEMAX), so memory stays flat with the raster size.
            env = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": COG_CACHE_MB}
            with atomic_path(self.final) as tmp, rasterio.Env(**env):
                rasterio.shutil.copy(self.stage, tmp, **self.cog_options)
        finally:
            self.stage.unlink(missing_ok=True)
        return self.final

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
            out = vrt.read(band)
    return out.astype(dtype) if dtype is not None else out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


import rasterio.shutil  # noqa: E402  (imported for rasterio.shutil.copy)
import rasterio.transform  # noqa: E402
import rasterio.windows  # noqa: E402
