"""Tiny georeferenced rasters for the prep tests, and a CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from landforge.cli import main

CRS = "EPSG:32633"


def write_tif(
    path: Path,
    array: np.ndarray,
    res: float = 10.0,
    origin: tuple[float, float] = (500000.0, 5100000.0),
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    tags: dict[str, Any] | None = None,
) -> Path:
    """Write ``array`` (bands, rows, cols) or (rows, cols) as a plain GeoTIFF."""
    arr = array if array.ndim == 3 else array[None]
    profile = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": CRS,
        "transform": Affine(res, 0, origin[0], 0, -res, origin[1]),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path


def read(path: Path) -> np.ndarray:
    """All bands of ``path``."""
    with rasterio.open(path) as src:
        return src.read()


def run_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """``landforge ARGS``: exit code, stdout, stderr."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code: int, err: str, *words: str) -> None:
    """Exit 2 with one ``error:`` line holding every word."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]


def smooth_field(shape: tuple[int, int], seed: int, scale: float = 6.0) -> np.ndarray:
    """A smooth random field in 0..1 (a stand-in for a real band)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    f = gaussian_filter(rng.normal(size=shape), scale)
    return (f - f.min()) / (np.ptp(f) + 1e-12)
