"""POI probability maps: landforge vs brute-force haversine and scipy's EDT, same run.

An 8192 x 8192 UTM grid at 0.5 m (4.1 km square, zone 50N at ~30.5 N), 5,000 uniform
random POIs per class (3 classes, some outside the grid), dmax 300/300/800 m.

* ours: ``poi_probability_maps`` for the whole job (``--workers`` threads, by default
  one per core as ``landforge poi-maps``), then ``write_poi_maps`` (COG) timed separately;
* the user's job: ``write_poi_probability_maps`` (what ``landforge poi-maps`` runs:
  the maps computed by windows and streamed into the COG, write included) in a fresh
  subprocess, with its peak RSS (``ru_maxrss``) beside that after the imports alone;
* brute force: vectorised haversine from a random subsample of pixels (PROJ per pixel)
  to every POI of each class, extrapolated to all pixels; also the reference for the
  maximum distance error of ours (|p - p_ref| * dmax);
* wall and CPU (``process_time``) seconds: the machine is shared; scipy's EDT has no
  threads, ours and GDAL's COG compression use every core by default (the wall ratio
  is what the user waits for; ``--workers 1`` for one thread);
* scipy EDT alone: ``scipy.ndimage.distance_transform_edt`` of the full grid with the
  POIs burnt in, distances only and with the feature transform (``return_indices``),
  one class timed and multiplied by 3 to keep the run short.

Prints one JSON line last. Usage: ``python benchmarks/bench_poi_maps.py [--size 8192]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LANDFORGE_QUIET", "1")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from pyproj import Transformer  # noqa: E402
from scipy import ndimage  # noqa: E402

from landforge.features.poi_distance import haversine_m  # noqa: E402
from landforge.features.poi_maps import poi_probability_maps, write_poi_maps  # noqa: E402
from landforge.io.raster import RasterGrid  # noqa: E402

CRS = "EPSG:32650"
X0, Y0 = 560_000.0, 3_370_000.0
DMAX = {"residential": 300.0, "commercial": 300.0, "industrial": 800.0}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_JOB = """
import json, os, sys, time
os.environ.setdefault("LANDFORGE_QUIET", "1")
import geopandas as gpd
from landforge.features.poi_maps import write_poi_probability_maps
from landforge.io.raster import RasterGrid
pois_path, out, n, res, tile, workers, dmax = sys.argv[1:8]
n, res = int(n), float(res)
grid = RasterGrid.from_bounds({x0}, {y0}, {x0} + n * res, {y0} + n * res, res, "{crs}")
pois = gpd.read_parquet(pois_path)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
rss0, hwm0 = status("VmRSS"), status("VmHWM")
t0, c0 = time.perf_counter(), time.process_time()
write_poi_probability_maps(out, pois, grid, dmax=json.loads(dmax), tile=int(tile),
                           workers=int(workers))
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
    "rss0": rss0, "hwm0": hwm0, "rss": status("VmHWM")}}))
"""


def _whole_job(
    pois: gpd.GeoDataFrame, n: int, res: float, tile: int, workers: int, tmp: Path
) -> dict:
    """``write_poi_probability_maps`` in a fresh interpreter: time and peak RSS (Linux)."""
    pois.to_parquet(tmp / "pois.parquet")
    code = _JOB.format(x0=X0, y0=Y0, crs=CRS)
    args = [str(tmp / "pois.parquet"), str(tmp / "job.tif"), str(n), str(res), str(tile)]
    args.append(str(workers))
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, json.dumps(DMAX)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["mib"] = (tmp / "job.tif").stat().st_size / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--res", type=float, default=0.5)
    parser.add_argument("--pois", type=int, default=5000, help="POIs per class")
    parser.add_argument("--sample", type=int, default=20_000, help="brute-force pixels")
    parser.add_argument("--tile", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=-1, help="threads of ours (-1: all cores, the default)"
    )
    parser.add_argument(
        "--job-only", action="store_true", help="only the user's job (time, peak RSS)"
    )
    args = parser.parse_args()

    n, res = args.size, args.res
    load_before = round(os.getloadavg()[0], 2)
    side = n * res
    grid = RasterGrid.from_bounds(X0, Y0, X0 + side, Y0 + side, res, CRS)
    rng = np.random.default_rng(42)
    margin = 200.0  # some POIs outside the grid, within dmax
    names = list(DMAX)
    xy = rng.uniform(
        [X0 - margin, Y0 - margin], [X0 + side + margin, Y0 + side + margin], (3 * args.pois, 2)
    )
    cats = np.repeat(names, args.pois)
    pois = gpd.GeoDataFrame({"category": cats}, geometry=shapely.points(xy), crs=CRS)

    if args.job_only:
        with tempfile.TemporaryDirectory() as tmp:
            job = _whole_job(pois, n, args.res, args.tile, args.workers, Path(tmp))
        print(json.dumps({"grid": f"{n}x{n}", "job": job}))
        return

    # (c) ours, whole job, then the COG write
    rss_before = _peak_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    maps = poi_probability_maps(pois, grid, dmax=DMAX, tile=args.tile, workers=args.workers)
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    rss_ours = _peak_mib()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_poi_maps(Path(tmp) / "poi.tif", maps, grid, names, DMAX)
        t_cog = time.perf_counter() - t0
        cog_mib = path.stat().st_size / 2**20
    rss_cog = _peak_mib()
    with tempfile.TemporaryDirectory() as tmp:
        job = _whole_job(pois, n, res, args.tile, args.workers, Path(tmp))

    # (a) brute force on a pixel subsample: PROJ per pixel, haversine to every POI
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    rows = rng.integers(0, n, args.sample)
    cols = rng.integers(0, n, args.sample)
    xs, ys = grid.pixel_centres()
    t0 = time.perf_counter()
    plon, plat = to_ll.transform(xs[cols], ys[rows])
    qlon, qlat = to_ll.transform(xy[:, 0], xy[:, 1])
    max_err = 0.0
    for band, name in enumerate(names):
        sel = cats == name
        d = np.full(args.sample, np.inf)
        for s in range(0, args.sample, 1000):  # chunks keep the (pixels, POIs) matrix small
            d[s : s + 1000] = haversine_m(
                plon[s : s + 1000, None], plat[s : s + 1000, None], qlon[sel], qlat[sel]
            ).min(axis=1)
        p_ref = 1 - np.minimum(d / DMAX[name], 1)
        err = np.abs(maps[band, rows, cols].astype(np.float64) - p_ref) * DMAX[name]
        max_err = max(max_err, float(err.max()))
    t_brute_sample = time.perf_counter() - t0
    t_brute = t_brute_sample * (n * n) / args.sample
    del maps

    # (b) scipy EDT alone on the full grid (one class, x3)
    r = ((Y0 + side - xy[cats == names[0], 1]) / res).astype(int)
    c = ((xy[cats == names[0], 0] - X0) / res).astype(int)
    inside = (r >= 0) & (r < n) & (c >= 0) & (c < n)
    background = np.ones((n, n), dtype=bool)
    background[r[inside], c[inside]] = False
    t0, c0 = time.perf_counter(), time.process_time()
    dist = ndimage.distance_transform_edt(background, sampling=res)
    t_edt, c_edt = 3 * (time.perf_counter() - t0), 3 * (time.process_time() - c0)
    del dist
    t0, c0 = time.perf_counter(), time.process_time()
    dist, idx = ndimage.distance_transform_edt(background, sampling=res, return_indices=True)
    t_edt_idx, c_edt_idx = 3 * (time.perf_counter() - t0), 3 * (time.process_time() - c0)
    del dist, idx

    print(
        json.dumps(
            {
                "grid": f"{n}x{n}",
                "res_m": res,
                "pois_per_class": args.pois,
                "classes": 3,
                "dmax_m": list(DMAX.values()),
                "tile": args.tile,
                "workers": args.workers,
                "load_before": load_before,
                "load_after": round(os.getloadavg()[0], 2),
                "ours_s": round(t_ours, 2),
                "ours_cpu_s": round(c_ours, 2),
                "cog_write_s": round(t_cog, 2),
                "cog_mib": round(cog_mib, 1),
                "scipy_edt_s": round(t_edt, 2),
                "scipy_edt_indices_s": round(t_edt_idx, 2),
                "scipy_edt_cpu_s": round(c_edt, 2),
                "scipy_edt_indices_cpu_s": round(c_edt_idx, 2),
                "job_s": round(job["wall"], 2),
                "job_cpu_s": round(job["cpu"], 2),
                "job_cog_mib": round(job["mib"], 1),
                "ratio_job_over_edt": round(job["wall"] / t_edt, 3),
                "cpu_ratio_job_over_edt": round(job["cpu"] / c_edt, 3),
                "job_peak_rss_mib": round(job["rss"]),
                "job_rss_mib_before_job": round(job["rss0"]),
                "job_peak_rss_mib_before_job": round(job["hwm0"]),
                "brute_sample_pixels": args.sample,
                "brute_sample_s": round(t_brute_sample, 2),
                "brute_extrapolated_s": round(t_brute, 0),
                "ratio_ours_over_edt": round(t_ours / t_edt, 3),
                "ratio_ours_over_edt_indices": round(t_ours / t_edt_idx, 3),
                "cpu_ratio_ours_over_edt": round(c_ours / c_edt, 3),
                "ratio_brute_over_ours": round(t_brute / t_ours, 0),
                "max_abs_error_m": max_err,
                "peak_rss_mib_before": round(rss_before),
                "peak_rss_mib_after_ours": round(rss_ours),
                "peak_rss_mib_after_cog": round(rss_cog),
                "output_mib": round(3 * n * n * 4 / 2**20),
            }
        )
    )


if __name__ == "__main__":
    main()
