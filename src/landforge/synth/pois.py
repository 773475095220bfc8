"""Points of interest with a use-dependent category mix and realistic noise.

Each parcel draws a Poisson number of POIs from a density that depends on its use (high
in the commercial core, low on farmland), mostly placed in its buildings. Categories use
the Gaode primary ids and the GB/T 35648 top-level ids of docs/dev/CONTRACTS.md. Noise
as in real POI feeds: some parcels have none at all, ~15 % of POIs carry an unrelated
category, ~10 % are geocoded onto the street just outside their parcel and a few are
pure noise (``parcel_id`` -1).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["GAODE_TO_GBT", "POI_MIX", "POI_DENSITY_KM2", "make_pois"]

# Default GB/T 35648 class of each of the 23 Gaode primary categories.
GAODE_TO_GBT: dict[str, str] = {
    "auto_service": "vehicle_sales_service",
    "auto_dealers": "vehicle_sales_service",
    "auto_repair": "vehicle_sales_service",
    "motorcycle_service": "vehicle_sales_service",
    "food_beverages": "catering",
    "shopping": "wholesale_retail",
    "daily_life_service": "resident_services",
    "sports_recreation": "sports_leisure",
    "medical_service": "healthcare_social",
    "accommodation": "residence_lodging",
    "tourist_attraction": "sports_leisure",
    "commercial_house": "commercial_facilities",
    "government_organization": "government_public",
    "science_culture_education": "education_culture",
    "transportation_service": "transportation_warehousing",
    "finance_insurance": "finance_insurance",
    "enterprises": "enterprises_companies",
    "road_furniture": "transportation_warehousing",
    "place_name_address": "place_names_addresses",
    "public_facility": "government_public",
    "incidents_events": "place_names_addresses",
    "indoor_facilities": "commercial_facilities",
    "pass_facilities": "transportation_warehousing",
}

# Expected POIs per km² of parcel by secondary use (before the missing-parcel noise).
POI_DENSITY_KM2: dict[str, float] = {
    "B1": 2600,
    "B2": 2000,
    "R1": 300,
    "R2": 700,
    "R3": 1100,
    "A1": 600,
    "A3": 400,
    "A5": 600,
    "G1": 60,
    "M1": 250,
    "M2": 150,
    "W1": 120,
    "S4": 300,
    "E1": 2,
    "E2": 8,
    "E9": 5,
    "X0": 80,
}

_Mix = list[tuple[str, str | None, float]]  # (gaode, gbt or None = default, weight)
_RESIDENTIAL: _Mix = [
    ("commercial_house", "residence_lodging", 0.28),
    ("daily_life_service", None, 0.25),
    ("food_beverages", None, 0.15),
    ("shopping", None, 0.15),
    ("medical_service", None, 0.05),
    ("science_culture_education", None, 0.05),
    ("place_name_address", None, 0.07),
]
_PUBLIC_MIX: dict[str, _Mix] = {
    "A1": [
        ("government_organization", None, 0.6),
        ("public_facility", None, 0.15),
        ("place_name_address", None, 0.1),
        ("food_beverages", None, 0.15),
    ],
    "A3": [
        ("science_culture_education", None, 0.65),
        ("science_culture_education", "research_institutes", 0.05),
        ("sports_recreation", None, 0.1),
        ("food_beverages", None, 0.1),
        ("shopping", None, 0.1),
    ],
    "A5": [
        ("medical_service", None, 0.7),
        ("shopping", None, 0.1),
        ("food_beverages", None, 0.1),
        ("daily_life_service", None, 0.1),
    ],
    "G1": [
        ("tourist_attraction", None, 0.5),
        ("sports_recreation", None, 0.3),
        ("public_facility", None, 0.2),
    ],
}
POI_MIX: dict[str, _Mix] = {
    "B1": [
        ("food_beverages", None, 0.3),
        ("shopping", None, 0.33),
        ("daily_life_service", None, 0.1),
        ("finance_insurance", None, 0.05),
        ("accommodation", None, 0.05),
        ("sports_recreation", None, 0.05),
        ("indoor_facilities", None, 0.04),
        ("auto_dealers", None, 0.02),
        ("auto_service", None, 0.02),
        ("place_name_address", None, 0.04),
    ],
    "B2": [
        ("enterprises", None, 0.35),
        ("commercial_house", None, 0.15),
        ("finance_insurance", None, 0.15),
        ("food_beverages", None, 0.15),
        ("shopping", None, 0.05),
        ("daily_life_service", None, 0.05),
        ("science_culture_education", "research_institutes", 0.05),
        ("place_name_address", None, 0.05),
    ],
    "R1": _RESIDENTIAL,
    "R2": _RESIDENTIAL,
    "R3": _RESIDENTIAL,
    **_PUBLIC_MIX,
    "M1": [
        ("enterprises", None, 0.6),
        ("auto_repair", None, 0.1),
        ("food_beverages", None, 0.1),
        ("transportation_service", None, 0.1),
        ("place_name_address", None, 0.1),
    ],
    "M2": [
        ("enterprises", None, 0.7),
        ("motorcycle_service", None, 0.05),
        ("transportation_service", None, 0.15),
        ("place_name_address", None, 0.1),
    ],
    "W1": [
        ("transportation_service", None, 0.5),
        ("enterprises", None, 0.3),
        ("auto_repair", None, 0.1),
        ("road_furniture", None, 0.1),
    ],
    "S4": [
        ("transportation_service", None, 0.6),
        ("pass_facilities", None, 0.1),
        ("auto_service", None, 0.2),
        ("shopping", None, 0.1),
    ],
    "E1": [("tourist_attraction", None, 0.7), ("place_name_address", None, 0.3)],
    "E2": [("enterprises", "primary_sector_services", 0.5), ("place_name_address", None, 0.5)],
    "E9": [
        ("place_name_address", None, 0.6),
        ("tourist_attraction", None, 0.3),
        ("incidents_events", None, 0.1),
    ],
    "X0": [("place_name_address", None, 0.5), ("enterprises", None, 0.5)],
}

_NAME_WORDS: dict[str, list[str]] = {
    "food_beverages": ["Noodle House", "Hotpot", "Tea House", "Bakery", "Dumpling Bar"],
    "shopping": ["Mart", "Supermarket", "Mall", "Pharmacy", "Convenience Store"],
    "enterprises": ["Technology Co.", "Trading Co.", "Manufacturing Co.", "Industrial Park"],
    "commercial_house": ["Garden Residence", "Tower", "Court", "Plaza"],
    "science_culture_education": ["Primary School", "Middle School", "Library", "Institute"],
    "medical_service": ["Hospital", "Clinic", "Health Centre"],
    "government_organization": ["District Office", "Street Office", "Bureau"],
    "transportation_service": ["Logistics Centre", "Bus Station", "Parking", "Depot"],
}

_MISSING_PARCEL_RATE = 0.15
_OFF_CATEGORY_RATE = 0.15
_DISPLACED_RATE = 0.10
_NOISE_RATE = 0.03
_IN_BUILDING_RATE = 0.7


def _uniform_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly inside ``poly`` by vectorised rejection sampling."""
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    out = np.zeros((0, 2))
    while len(out) < n:
        m = max(16, 3 * (n - len(out)))
        cand = np.c_[rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)]
        out = np.r_[out, cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]]
    return out[:n]


def _in_buildings(corners: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points inside random rectangles given by corners (m, 4, 2)."""
    pick = corners[rng.integers(len(corners), size=n)]
    u, v = rng.uniform(0.1, 0.9, (2, n, 1))
    return pick[:, 0] + u * (pick[:, 1] - pick[:, 0]) + v * (pick[:, 3] - pick[:, 0])


def make_pois(
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    boundary: shapely.Geometry,
    rng: np.random.Generator,
    crs: object,
) -> gpd.GeoDataFrame:
    """POIs for a city, as GeoParquet-ready GeoDataFrame in EPSG:4326.

    Returns:
        Columns poi_id, name, gaode_category, gbt_category, parcel_id, lon, lat, geometry.
    """
    corners_by_parcel: dict[int, np.ndarray] = {}
    if len(buildings):
        xy = shapely.get_coordinates(buildings.geometry.to_numpy()).reshape(-1, 5, 2)[:, :4]
        pid = buildings["parcel_id"].to_numpy()
        order = np.argsort(pid, kind="stable")
        bounds = np.searchsorted(pid[order], np.unique(pid), side="left")
        for p, group in zip(np.unique(pid), np.split(order, bounds[1:]), strict=True):
            corners_by_parcel[int(p)] = xy[group]

    all_pairs = [(g, GAODE_TO_GBT[g]) for g in GAODE_TO_GBT]
    pts, gaode, gbt, pids = [], [], [], []
    geoms = parcels.geometry.to_numpy()
    for k, row in enumerate(parcels.itertuples(index=False)):
        code = row.use_secondary
        if rng.random() < _MISSING_PARCEL_RATE:
            continue  # a parcel the POI provider never surveyed
        lam = POI_DENSITY_KM2.get(code, 20) * geoms[k].area / 1e6
        if row.mixed and row.use_secondary_2:
            lam = (
                0.7 * lam + 0.3 * POI_DENSITY_KM2.get(row.use_secondary_2, 20) * geoms[k].area / 1e6
            )
        n = int(rng.poisson(lam))
        if n == 0:
            continue
        corners = corners_by_parcel.get(int(row.parcel_id))
        n_b = int((rng.random(n) < _IN_BUILDING_RATE).sum()) if corners is not None else 0
        p = np.r_[
            _in_buildings(corners, n_b, rng) if n_b else np.zeros((0, 2)),
            _uniform_in(geoms[k], n - n_b, rng) if n - n_b else np.zeros((0, 2)),
        ]
        mix = POI_MIX.get(code, POI_MIX["X0"])
        if row.mixed and row.use_secondary_2 in POI_MIX:
            second = POI_MIX[row.use_secondary_2]
            mix = [(g, b, w * 0.6) for g, b, w in mix] + [(g, b, w * 0.4) for g, b, w in second]
        w = np.array([m[2] for m in mix])
        pick = rng.choice(len(mix), size=n, p=w / w.sum())
        for i in pick:
            g, b, _ = mix[i]
            gaode.append(g)
            gbt.append(b or GAODE_TO_GBT[g])
        pts.append(p)
        pids.append(np.full(n, row.parcel_id))
    pts_arr = np.concatenate(pts) if pts else np.zeros((0, 2))
    pid_arr = np.concatenate(pids).astype(np.int64) if pids else np.zeros(0, np.int64)
    gaode_arr = np.array(gaode, dtype=object)
    gbt_arr = np.array(gbt, dtype=object)
    n = len(pts_arr)

    # Off-category: the POI's category has nothing to do with its parcel's use.
    off = np.flatnonzero(rng.random(n) < _OFF_CATEGORY_RATE)
    draws = rng.integers(len(all_pairs), size=off.size)
    for i, j in zip(off, draws, strict=True):
        gaode_arr[i], gbt_arr[i] = all_pairs[j]

    # Displaced: geocoded onto the street, a few metres outside the parcel edge.
    moved = np.flatnonzero(rng.random(n) < _DISPLACED_RATE)
    if moved.size:
        by_id = dict(zip(parcels["parcel_id"].to_numpy(), geoms, strict=True))
        outward = rng.uniform(2.0, 12.0, moved.size)
        for i, dist in zip(moved, outward, strict=True):
            poly = by_id[pid_arr[i]]
            pt = shapely.points(pts_arr[i])
            edge = shapely.get_coordinates(shapely.shortest_line(pt, poly.exterior))[-1]
            direction = edge - pts_arr[i]
            norm = np.hypot(*direction)
            if norm < 1e-6:
                direction = edge - np.array(poly.centroid.coords[0])
                norm = max(np.hypot(*direction), 1e-6)
            pts_arr[i] = edge + direction / norm * dist

    # Pure noise: POIs anywhere in the city that belong to no parcel.
    n_noise = int(rng.binomial(max(n, 1), _NOISE_RATE))
    if n_noise:
        pts_arr = np.r_[pts_arr, _uniform_in(boundary, n_noise, rng)]
        pid_arr = np.r_[pid_arr, np.full(n_noise, -1, np.int64)]
        draws = rng.integers(len(all_pairs), size=n_noise)
        gaode_arr = np.r_[gaode_arr, np.array([all_pairs[j][0] for j in draws], dtype=object)]
        gbt_arr = np.r_[gbt_arr, np.array([all_pairs[j][1] for j in draws], dtype=object)]

    total = len(pts_arr)
    poi_id = np.arange(1, total + 1, dtype=np.int64)
    word_pick = rng.integers(0, 1000, total)
    names = []
    for i, g in enumerate(gaode_arr):
        words = _NAME_WORDS.get(g, [g.replace("_", " ").title()])
        names.append(f"{words[word_pick[i] % len(words)]} {poi_id[i]:05d}")
    gdf = gpd.GeoDataFrame(
        {
            "poi_id": poi_id,
            "name": names,
            "gaode_category": gaode_arr.astype(str),
            "gbt_category": gbt_arr.astype(str),
            "parcel_id": pid_arr,
        },
        geometry=shapely.points(pts_arr) if total else [],
        crs=crs,
    ).to_crs("EPSG:4326")
    gdf.insert(5, "lon", np.round(gdf.geometry.x.to_numpy(), 7))
    gdf.insert(6, "lat", np.round(gdf.geometry.y.to_numpy(), 7))
    return gdf
