"""Parcels vs momepy enclosures on the same OSM road network (Monaco, Helsinki).

``momepy.enclosures(lines, limit=area)`` polygonises the road centre lines (roads have no
width); ``generate_parcels`` removes the buffered roadbeds and opens the blocks by 5 m.
Both get the same input: the road lines ``generate_parcels`` keeps (width > 0, no
tunnels) in the same UTM CRS, and the roads' bounding box as the area. Reports counts,
area agreement, one-to-one matches by largest overlap, the time of each (best of
``--repeat``, the two interleaved; wall and CPU time), the ratio ours/momepy (target
<= 5) and where our time goes (each step as ``generate_parcels`` runs it). Extracts are
read from ``/work/shared/data/osm/*.osm.pbf``; a missing one is skipped with a message.
Prints one JSON line last.

Run: ``python benchmarks/bench_parcels_momepy.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from landforge.parcels.generate import (
    CLIP_MARGIN_M,
    ParcelConfig,
    block_area,
    generate_parcels,
    merge_roads,
    parcel_frame,
    parcels_from_blocks,
    prepare_roads,
    road_blocks,
    road_buffers,
)

DATA = Path("/work/shared/data/osm")
CITIES = ("monaco", "helsinki")


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def stage_times(
    roads: gpd.GeoDataFrame, boundary: gpd.GeoDataFrame, repeat: int
) -> dict[str, float]:
    """Seconds of each step of generate_parcels (best of ``repeat``), as it runs them."""
    cfg = ParcelConfig()
    out: dict[str, float] = {}
    t, prep = best_of(repeat, lambda: prepare_roads(roads, boundary, cfg))
    out["prepare_s"] = t  # validation, widths, boundary, centre estimate
    t, (lines, half) = best_of(repeat, lambda: merge_roads(prep.lines, prep.half))
    out["merge_s"] = t
    t, buffers = best_of(repeat, lambda: road_buffers(lines, half, cfg))
    out["buffer_s"] = t
    area = block_area(prep.area, cfg)
    # the union as road_blocks computes it: a zero-distance buffer of all buffers
    t, union = best_of(repeat, lambda: shapely.buffer(shapely.multipolygons(buffers), 0.0))
    out["union_s"] = t
    t, blocks = best_of(repeat, lambda: shapely.get_parts(shapely.difference(area, union)))
    out["difference_s"] = t
    t, _ = best_of(repeat, lambda: road_blocks(area, buffers))
    out["blocks_total_s"] = t
    t, parcels = best_of(repeat, lambda: parcels_from_blocks(blocks, cfg))
    out["opening_s"] = t
    # the opening's parts, as _open runs them
    r = cfg.clean_m
    normal = shapely.normalize(blocks)
    t, eroded = best_of(
        repeat, lambda: shapely.buffer(normal, -(r + CLIP_MARGIN_M), join_style="mitre")
    )
    out["erode_s"] = t
    alive = ~shapely.is_empty(eroded)
    t, dilated = best_of(repeat, lambda: shapely.buffer(eroded[alive], r, join_style="mitre"))
    out["dilate_s"] = t
    t, _ = best_of(repeat, lambda: shapely.intersection(dilated, normal[alive]))
    out["clip_s"] = t
    t, _ = best_of(repeat, lambda: parcel_frame(parcels, prep.crs, prep.centre))
    out["frame_s"] = t
    return {k: round(v, 4) for k, v in out.items()}


def agreement(parcels: np.ndarray, enclosures: np.ndarray) -> dict[str, Any]:
    """Area agreement and one-to-one matches (IoU >= 0.5 with the largest overlap)."""
    p_idx, e_idx = shapely.STRtree(enclosures).query(parcels, predicate="intersects")
    inter = shapely.area(shapely.intersection(parcels[p_idx], enclosures[e_idx]))
    pa, ea = shapely.area(parcels), shapely.area(enclosures)
    # the enclosure holding most of each parcel, and how much of the parcel it holds
    best_share = np.zeros(len(parcels))
    best_enc = np.full(len(parcels), -1)
    for k in np.argsort(inter):  # ascending: the largest overlap is written last
        best_share[p_idx[k]] = inter[k] / pa[p_idx[k]]
        best_enc[p_idx[k]] = e_idx[k]
    iou = np.zeros(len(parcels))
    has = best_enc >= 0
    overlap = best_share[has] * pa[has]
    iou[has] = overlap / (pa[has] + ea[best_enc[has]] - overlap)
    matched = iou >= 0.5
    covered = np.zeros(len(enclosures), dtype=bool)
    covered[e_idx[inter > 1.0]] = True
    return {
        "parcel_area_in_enclosures": round(float(inter.sum() / pa.sum()), 4),
        "parcel_area_over_enclosure_area": round(float(pa.sum() / ea.sum()), 4),
        "parcels_inside_one_enclosure_ge_99pct": int((best_share >= 0.99).sum()),
        "matched_iou_ge_0_5": int(matched.sum()),
        "median_iou_of_matches": round(float(np.median(iou[matched])), 3) if matched.any() else 0,
        "enclosures_without_parcel": int((~covered).sum()),
        "enclosures_without_parcel_area_share": round(float(ea[~covered].sum() / ea.sum()), 4),
    }


def run_city(name: str, repeat: int) -> dict[str, Any] | None:
    import momepy

    from landforge.io.osm import read_osm_roads

    path = DATA / f"{name}.osm.pbf"
    if not path.exists():
        print(f"skip {name}: {path} not found", file=sys.stderr)
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roads = read_osm_roads(path)
        cfg = ParcelConfig()
        prep = prepare_roads(roads, None, cfg)
    # the same input for both: kept road lines in the same metric CRS, the same area
    metric = gpd.GeoDataFrame(
        {"road_class": "x", "width_m": prep.half * 2}, geometry=prep.lines, crs=prep.crs
    )
    lines = gpd.GeoSeries(prep.lines, crs=prep.crs)
    limit = gpd.GeoSeries([prep.area], crs=prep.crs)
    boundary = gpd.GeoDataFrame(geometry=[prep.area], crs=prep.crs)
    # interleaved (ours, momepy, ours, ...) so that both see the same machine load; the
    # CPU time (process_time) is reported too: less sensitive to other jobs on the cores
    ours_s = momepy_s = ours_cpu = momepy_cpu = float("inf")
    for _ in range(repeat):
        c = time.process_time()
        t, parcels = best_of(1, lambda: generate_parcels(metric, boundary))
        ours_cpu = min(ours_cpu, time.process_time() - c)
        ours_s = min(ours_s, t)
        c = time.process_time()
        t, enc = best_of(1, lambda: momepy.enclosures(lines, limit=limit))
        momepy_cpu = min(momepy_cpu, time.process_time() - c)
        momepy_s = min(momepy_s, t)
    enc_geoms = enc.geometry.values
    enc_geoms = enc_geoms[shapely.area(enc_geoms) > 0]
    row: dict[str, Any] = {
        "roads": len(prep.lines),
        "area_km2": round(prep.area.area / 1e6, 2),
        "parcels": len(parcels),
        "enclosures": len(enc_geoms),
        "ours_s": round(ours_s, 4),
        "momepy_s": round(momepy_s, 4),
        "ratio_ours_over_momepy": round(ours_s / momepy_s, 2),
        "ours_cpu_s": round(ours_cpu, 4),
        "momepy_cpu_s": round(momepy_cpu, 4),
        "cpu_ratio_ours_over_momepy": round(ours_cpu / momepy_cpu, 2),
        **agreement(parcels.geometry.values, enc_geoms),
        "stages": stage_times(metric, boundary, repeat),
    }
    print(json.dumps({name: row}), file=sys.stderr, flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cities", nargs="+", default=list(CITIES))
    args = ap.parse_args()
    import momepy

    out: dict[str, Any] = {
        "momepy": momepy.__version__,
        "target_ratio": 5.0,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    for name in args.cities:
        row = run_city(name, args.repeat)
        if row is not None:
            out[name] = row
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
