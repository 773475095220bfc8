"""Compare the synthetic city's density statistics with real OSM extracts.

Measures buildings/km², building coverage, POIs/km² and the median area of blocks between
drivable roads in the central square kilometre of each OSM extract (pyrosm), and the same
statistics of a synthetic city (core and periphery). Prints a Markdown table for
docs/synth.md.

Usage: python benchmarks/synth_calibration.py [--data ../shared/data/osm] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box

# Centre points (lon, lat) of the central square kilometre measured in each extract.
CENTRES = {"helsinki": (24.9410, 60.1690), "monaco": (7.4230, 43.7380)}


def measure_osm(path: Path, centre: tuple[float, float]) -> dict[str, float]:
    import pyrosm

    osm = pyrosm.OSM(str(path))
    pt = gpd.GeoSeries(gpd.points_from_xy([centre[0]], [centre[1]]), crs="EPSG:4326")
    crs = pt.estimate_utm_crs()
    c = pt.to_crs(crs).iloc[0]
    core = box(c.x - 500, c.y - 500, c.x + 500, c.y + 500)
    buildings = osm.get_buildings().to_crs(crs)
    buildings = buildings.set_geometry(shapely.make_valid(buildings.geometry.to_numpy()))
    buildings = buildings[buildings.geometry.centroid.within(core)]
    pois = osm.get_pois().to_crs(crs)
    pois = pois[pois.geometry.centroid.within(core)]
    roads = osm.get_network("driving").to_crs(crs)
    roads = roads[roads.intersects(core.buffer(500))]
    blocks = shapely.get_parts(shapely.difference(core.buffer(500), roads.buffer(5).union_all()))
    blocks = blocks[shapely.contains(core, shapely.centroid(blocks))]
    blocks = blocks[shapely.area(blocks) > 200]
    return {
        "buildings_per_km2": float(len(buildings)),
        "building_coverage_pct": float(
            100
            * shapely.area(shapely.intersection(buildings.geometry.to_numpy(), core)).sum()
            / core.area
        )
        if len(buildings)
        else 0.0,
        "pois_per_km2": float(len(pois)),
        "median_parcel_area_m2": float(np.median(shapely.area(blocks))) if len(blocks) else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/osm"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size-m", type=float, default=3000.0)
    args = parser.parse_args()

    from landforge.synth import make_city

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        info = make_city(
            Path(tmp) / "city",
            seed=args.seed,
            size_m=args.size_m,
            t2=False,
            s2=False,
            s1=False,
            population=False,
            quiet=True,
        )
        rows.append((f"synthetic core (seed {args.seed}, {args.size_m:g} m)", info.stats["core"]))
        rows.append((f"synthetic periphery (seed {args.seed})", info.stats["periphery"]))
    for name, centre in CENTRES.items():
        pbf = args.data / f"{name}.osm.pbf"
        if pbf.exists():
            rows.append((f"OSM {name}, central km²", measure_osm(pbf, centre)))
    keys = ["buildings_per_km2", "building_coverage_pct", "pois_per_km2", "median_parcel_area_m2"]
    print("| area | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, stats in rows:
        print(f"| {name} | " + " | ".join(f"{stats[k]:.0f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
