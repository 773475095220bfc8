"""Memory bounded by design: ``builtup`` and ``sample-design`` on a raster larger than the budget.

Each command runs in a fresh interpreter that reports its own peak RSS; a second one
does only the same imports. The difference (what the command itself held at its peak)
must stay under ``BUDGET_MB`` while the raster, held whole, would take more. Numbers
and the command to reproduce them: BENCHMARKS.md, "Memory: builtup and sample-design".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

pytestmark = pytest.mark.slow

SIDE = 12_000  # 144 MB as uint8, whole
BLOCK = 1024
BUDGET_MB = 100  # above the interpreter with the command's imports

_PEAK = """
import json, resource, sys
import geopandas, pyogrio, rasterio, shapely  # what the stages import when they run
import landforge.cli, landforge.inference.builtup, landforge.io.vector, landforge.parcels.lsi
from landforge.cli import main
args = json.loads(sys.argv[1])
code = main(args) if args else 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "peak_mb": peak / (2**20 if sys.platform == "darwin" else 2**10)}))
"""


def write_landcover(path: Path, side: int = SIDE) -> Path:
    """A blocky 5-class uint8 raster, tiled and compressed (small on disk), 1 m pixels."""
    profile = dict(
        driver="GTiff", width=side, height=side, count=1, dtype="uint8", crs="EPSG:32650",
        transform=Affine(1, 0, 500_000, 0, -1, 3_400_000), tiled=True, blockxsize=512,
        blockysize=512, compress="deflate", nodata=255,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, side, 1024):
            h = min(1024, side - row)
            coarse = rng.integers(1, 6, (h // 16 + 1, side // 16 + 1)).astype(np.uint8)
            strip = np.kron(coarse, np.ones((16, 16), np.uint8))[:h, :side]
            dst.write(strip, 1, window=Window(0, row, side, h))
    return path


def write_regions(path: Path, side: int = SIDE) -> Path:
    """Two regions, the raster's west and east halves."""
    import geopandas as gpd
    import shapely

    x0, y0 = 500_000, 3_400_000
    gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[
            shapely.box(x0, y0 - side, x0 + side / 2, y0),
            shapely.box(x0 + side / 2, y0 - side, x0 + side, y0),
        ],
        crs="EPSG:32650",
    ).to_file(path)
    return path


def peak_mb(args: list[str]) -> float:
    """Peak RSS (MB) of a fresh interpreter running ``landforge ARGS`` (none: imports only)."""
    env = {k: v for k, v in os.environ.items() if k != "GDAL_CACHEMAX"}
    env["LANDFORGE_QUIET"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, json.dumps(args)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return float(result["peak_mb"])


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("memory")
    return {
        "landcover": write_landcover(root / "lc.tif"),
        "regions": write_regions(root / "regions.gpkg"),
        "root": root,
    }


@pytest.fixture(scope="module")
def baseline() -> float:
    return peak_mb([])


def test_the_raster_does_not_fit_the_budget() -> None:
    assert SIDE * SIDE / 2**20 > BUDGET_MB


def test_builtup_stays_within_the_budget(big, baseline) -> None:
    out = big["root"] / "builtup.tif"
    peak = peak_mb(
        ["builtup", "--inputs", str(big["landcover"]), "--values", ">3", "--like",
         str(big["landcover"]), "--block", str(BLOCK), "--out", str(out)]
    )  # fmt: skip
    with rasterio.open(out) as src:
        assert (src.width, src.height) == (SIDE, SIDE)
    assert peak - baseline < BUDGET_MB, f"peak {peak:.0f} MB, imports {baseline:.0f} MB"


def test_sample_design_stays_within_the_budget(big, baseline) -> None:
    out = big["root"] / "sites.gpkg"
    peak = peak_mb(
        ["sample-design", "--landcover", str(big["landcover"]), "--regions",
         str(big["regions"]), "--region-col", "name", "--n", "1600", "--unit-size-m", "100",
         "--block", str(BLOCK), "--out", str(out)]
    )  # fmt: skip
    assert out.exists()
    assert peak - baseline < BUDGET_MB, f"peak {peak:.0f} MB, imports {baseline:.0f} MB"


def _bench(sides: list[int]) -> None:
    """Peak RSS of both commands at several raster sizes (BENCHMARKS.md numbers)."""
    import tempfile
    import time

    base = peak_mb([])
    rows = []
    for side in sides:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            lc = write_landcover(root / "lc.tif", side)
            regions = write_regions(root / "regions.gpkg", side)
            row: dict[str, float] = {"side": side, "raster_mb": round(side * side / 2**20)}
            commands = {
                "builtup": ["builtup", "--inputs", str(lc), "--values", ">3", "--like", str(lc),
                            "--block", str(BLOCK), "--out", str(root / "b.tif")],
                "sample_design": ["sample-design", "--landcover", str(lc), "--regions",
                                  str(regions), "--region-col", "name", "--n", "1600",
                                  "--unit-size-m", "100", "--block", str(BLOCK),
                                  "--out", str(root / "s.gpkg")],
            }  # fmt: skip
            for name, args in commands.items():
                t0 = time.perf_counter()
                row[f"{name}_mb"] = round(peak_mb(args) - base, 1)
                row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"imports_mb": round(base, 1), "block": BLOCK, "rows": rows}))


if __name__ == "__main__":  # python tests/test_memory_budget.py [SIDE ...]
    _bench([int(a) for a in sys.argv[1:]] or [4000, SIDE, 20000])
