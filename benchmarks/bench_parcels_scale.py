"""Parcel generation at city scale: untiled vs tiled in-process vs tiled on 2 Dask workers.

Synthetic road networks (``landforge.synth`` road generator, no imagery) with boundaries
of 10, 25, 50 and 100 km². For each size: the untiled ``generate_parcels``, the tiled run
in-process and the tiled run on a local Dask cluster (2 worker processes, 1 thread each;
started once, its start-up reported apart). Checks tiled == untiled (same count, every
parcel within 1 cm Hausdorff distance: tiles buffer clipped roads), and reports parcels/s, km²/s and the cost per
km² of 100 km² relative to 10 km² (target <= 1.2). Prints one JSON line last.

Run: ``python benchmarks/bench_parcels_scale.py [--sizes 10 25 50 100] [--repeat 2]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from landforge.parcels.generate import generate_parcels
from landforge.parcels.tiled import generate_parcels_tiled
from landforge.synth.layout import make_frame
from landforge.synth.roads import make_roads

CRS = "EPSG:32650"
SEED = 0


def city_roads(km2: float) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, float]:
    """Roads and boundary of a synthetic city whose boundary covers ``km2``."""
    probe = make_frame(SEED, 1000.0, 0.0, 0.0).boundary.area  # shape scales with size
    size = 1000.0 * (km2 * 1e6 / probe) ** 0.5
    frame = make_frame(SEED, size, 500_000.0, 3_000_000.0)
    roads = make_roads(frame, SEED).set_crs(CRS)
    boundary = gpd.GeoDataFrame(geometry=[frame.boundary], crs=CRS)
    return roads, boundary, frame.boundary.area / 1e6


def best_of(n: int, fn: Callable[[], gpd.GeoDataFrame]) -> tuple[float, gpd.GeoDataFrame]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def max_difference(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> float:
    """Largest Hausdorff distance between matching parcels (inf if counts differ)."""
    if len(a) != len(b):
        return float("inf")

    def ordered(g: gpd.GeoDataFrame) -> np.ndarray:
        geoms = g.geometry.values
        pts = shapely.centroid(geoms)  # the order of generate_parcels_tiled
        key = (np.round(shapely.get_y(pts), 3), np.round(shapely.get_x(pts), 3))
        return geoms[np.lexsort(key)]

    return float(shapely.hausdorff_distance(ordered(a), ordered(b)).max()) if len(a) else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=float, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tile-m", type=float, default=2000.0)
    ap.add_argument("--untiled-max-km2", type=float, default=100.0)
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    client.run(lambda: __import__("landforge.parcels.tiled"))  # workers import landforge
    startup = time.perf_counter() - t0

    rows: list[dict[str, Any]] = []
    ok = True
    try:
        for km2 in args.sizes:
            roads, boundary, real_km2 = city_roads(km2)
            row: dict[str, Any] = {"km2": round(real_km2, 1), "roads": len(roads)}
            data = (roads, boundary)
            runs: dict[str, Callable[[], gpd.GeoDataFrame]] = {
                "tiled": lambda d=data: generate_parcels_tiled(*d, tile_m=args.tile_m),
                "dask2": lambda d=data: generate_parcels_tiled(
                    *d, tile_m=args.tile_m, scheduler=client
                ),
            }
            if km2 <= args.untiled_max_km2:
                runs = {"untiled": lambda d=data: generate_parcels(*d), **runs}
            results = {}
            for name, fn in runs.items():
                seconds, parcels = best_of(args.repeat, fn)
                results[name] = parcels
                row[f"{name}_s"] = round(seconds, 3)
                row[f"{name}_parcels_per_s"] = round(len(parcels) / seconds, 1)
                row[f"{name}_km2_per_s"] = round(real_km2 / seconds, 2)
            row["parcels"] = len(results["tiled"])
            if "untiled" in results:
                for name in ("tiled", "dask2"):
                    diff = max_difference(results["untiled"], results[name])
                    row[f"{name}_max_diff_m"] = diff
                    ok &= diff < 1e-2
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        client.close()
        cluster.close()

    summary: dict[str, Any] = {"dask_startup_s": round(startup, 1), "tile_m": args.tile_m}
    first, last = rows[0], rows[-1]
    for name in ("untiled", "tiled", "dask2"):
        if f"{name}_s" in first and f"{name}_s" in last:
            per_first = first[f"{name}_s"] / first["km2"]
            per_last = last[f"{name}_s"] / last["km2"]
            summary[f"{name}_cost_per_km2_ratio"] = round(per_last / per_first, 2)
    summary["tiled_equals_untiled"] = bool(ok)
    summary["target_cost_ratio"] = 1.2
    summary["sizes"] = rows
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
