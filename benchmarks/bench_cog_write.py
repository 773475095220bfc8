"""Where COG writing time goes, and the codec per data type, all in one run.

Data: the POI probability maps of ``bench_poi_maps.py`` (3 float32 bands, 5,000 random
POIs per class) on an N x N grid at 0.5 m, a uint8 class map derived from them (argmax,
0 where no class) and uint8 probabilities (x 250). For each: wall and CPU seconds
(``process_time``: the machine is shared) and the file size.

* ``old``: the writer before issue 18: the whole array in a GDAL memory file, then the
  COG driver (DEFLATE at GDAL's default level 6, predictor, overviews built by the driver
  in its ZSTD-compressed temporary file);
* ``phases``: staging the array on disk (striped, uncompressed), the COG copy without
  overviews (compression alone), with overviews the driver's way (temporary file
  ZSTD-compressed) and with an uncompressed temporary file (landforge's setting);
* ``codecs``: ``write_cog`` with each codec and level (threads as configured);
* ``write_cog``: the default, end to end.

Prints one JSON line last. Usage: ``python benchmarks/bench_cog_write.py [--size 4096]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LANDFORGE_QUIET", "1")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import rasterio.shutil  # noqa: E402
import shapely  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from landforge.features.poi_maps import poi_probability_maps  # noqa: E402
from landforge.io.raster import RasterGrid, cog_options, write_cog  # noqa: E402

CRS = "EPSG:32650"
X0, Y0 = 560_000.0, 3_370_000.0
DMAX = {"residential": 300.0, "commercial": 300.0, "industrial": 800.0}


def _timed(fn: Callable[[], Path | None]) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    row: dict[str, Any] = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(time.process_time() - c0, 2),
    }
    if out is not None:
        row["mib"] = round(Path(out).stat().st_size / 2**20, 1)
        Path(out).unlink()
    return row


def _old(path: Path, arr: np.ndarray, grid: RasterGrid) -> Path:
    integer = np.issubdtype(arr.dtype, np.integer)
    profile = grid.profile(arr.shape[0], arr.dtype, None)
    profile.update(tiled=True, blockxsize=512, blockysize=512)
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(arr)
        with mem.open() as src:
            rasterio.shutil.copy(
                src, path, driver="COG", compress="DEFLATE", blocksize=512,
                predictor=2 if integer else 3, BIGTIFF="IF_SAFER",
                overview_resampling="nearest" if integer else "average",
            )  # fmt: skip
    return path


def _stage(path: Path, arr: np.ndarray, grid: RasterGrid) -> Path:
    profile = grid.profile(arr.shape[0], arr.dtype, None)
    profile.update(tiled=False, blockysize=1, BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, arr.shape[1], 256):
            dst.write(arr[:, r : r + 256], window=Window(0, r, arr.shape[2], 256))
    return path


def _copy(stage: Path, out: Path, arr: np.ndarray, env: dict[str, Any], **kw: Any) -> Path:
    with rasterio.Env(GDAL_CACHEMAX=256, **env):
        rasterio.shutil.copy(stage, out, **dict(cog_options(arr.dtype), **kw))
    return out


def _measure(name: str, arr: np.ndarray, grid: RasterGrid, tmp: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"bands": arr.shape[0], "dtype": arr.dtype.name}
    res["old"] = _timed(lambda: _old(tmp / "old.tif", arr, grid))
    stage = tmp / "stage.tif"
    res["phase_stage"] = {k: v for k, v in _timed(lambda: _stage(stage, arr, grid)).items()}
    _stage(stage, arr, grid)
    tmp_none = {"COG_TMP_COMPRESSION": "NONE", "GDAL_TIFF_OVR_BLOCKSIZE": 512}
    res["phase_copy_no_overviews"] = _timed(
        lambda: _copy(stage, tmp / "a.tif", arr, tmp_none, overviews="NONE")
    )
    res["phase_copy_overviews_tmp_zstd"] = _timed(lambda: _copy(stage, tmp / "b.tif", arr, {}))
    res["phase_copy_overviews_tmp_none"] = _timed(
        lambda: _copy(stage, tmp / "c.tif", arr, tmp_none)
    )
    stage.unlink()
    codecs: dict[str, Any] = {}
    for codec, level in [("ZSTD", 1), ("ZSTD", 3), ("ZSTD", 9), ("DEFLATE", 1), ("DEFLATE", 6)]:
        codecs[f"{codec}{level}"] = _timed(
            lambda c=codec, lv=level: write_cog(tmp / "x.tif", arr, grid, compress=c, level=lv)
        )
    if not np.issubdtype(arr.dtype, np.integer):
        codecs["LERC_ZSTD max_z_error=1e-3"] = _timed(
            lambda: write_cog(tmp / "x.tif", arr, grid, compress="LERC_ZSTD", max_z_error=1e-3)
        )
    res["codecs"] = codecs
    res["write_cog"] = _timed(lambda: write_cog(tmp / "d.tif", arr, grid))
    print(name, json.dumps(res), flush=True)
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    n, res = args.size, 0.5
    side = n * res
    grid = RasterGrid.from_bounds(X0, Y0, X0 + side, Y0 + side, res, CRS)
    rng = np.random.default_rng(42)
    xy = rng.uniform([X0 - 200, Y0 - 200], [X0 + side + 200, Y0 + side + 200], (15_000, 2))
    pois = gpd.GeoDataFrame(
        {"category": np.repeat(list(DMAX), 5000)}, geometry=shapely.points(xy), crs=CRS
    )
    maps = poi_probability_maps(pois, grid, dmax=DMAX, tile=32)
    classes = (maps.argmax(0) + 1).astype(np.uint8)[None]
    classes[:, maps.max(0) == 0] = 0
    probs_u8 = np.round(maps * 250).astype(np.uint8)
    out: dict[str, Any] = {
        "grid": f"{n}x{n}",
        "cog_threads": cog_options(np.float32)["num_threads"],
    }
    with tempfile.TemporaryDirectory() as d:
        for name, arr in [
            ("poi_float32", maps),
            ("classes_uint8", classes),
            ("probs_uint8", probs_u8),
        ]:
            out[name] = _measure(name, arr, grid, Path(d))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
