"""Generate a whole synthetic city into a directory: :func:`make_city`.

Orchestrates the components (each in its own module, each with its own random stream)
and writes every output atomically: the city is built in a temporary directory beside
``out_dir`` and moved into place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import box

from landforge.errors import InputError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, write_cog
from landforge.io.vector import write_vector
from landforge.progress import track
from landforge.synth.buildings import place_buildings
from landforge.synth.change import make_epoch2
from landforge.synth.imagery import Illumination, render_image
from landforge.synth.labels import building_use_raster, footprint_raster, landuse_raster
from landforge.synth.layout import CityFrame, component_rng, make_frame
from landforge.synth.parcels import assign_uses, make_lake, make_parcels
from landforge.synth.pois import make_pois
from landforge.synth.roads import make_roads, road_buffers

__all__ = ["CityInfo", "make_city", "city_statistics"]

_MAX_PIXELS_SIDE = 40_000  # 20 km at 0.5 m: beyond this the in-memory renderer is unwise
_LANDUSE_COLOURS = {
    0: (0, 0, 0),
    1: (230, 85, 75),
    2: (250, 160, 40),
    3: (60, 120, 220),
    4: (150, 90, 200),
    5: (90, 180, 80),
    6: (128, 128, 128),
    7: (220, 220, 220),
}
_RCI_COLOURS = {0: (0, 0, 0), 1: (230, 85, 75), 2: (60, 120, 220), 3: (150, 90, 200)}
_DISTRICT_NAMES = ("Old Town", "Riverside", "Hillside", "Harbour", "Newtown", "Lakeside")
_FIXED_DATE = "2024-01-01T00:00:00.000Z"  # GeoPackage timestamps, for byte-identical files


@dataclass
class CityInfo:
    """What :func:`make_city` wrote.

    Attributes:
        out_dir: the city directory.
        seed, size_m, gsd, crs: the generation parameters.
        files: paths relative to ``out_dir`` of every file written.
        counts: numbers of parcels, buildings, POIs, roads and class counts.
        stats: density statistics for the ``core`` and the ``periphery``.
        seconds: wall time of the generation.
    """

    out_dir: Path
    seed: int
    size_m: float
    gsd: float
    crs: str
    files: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def path(self, name: str) -> Path:
        """Absolute path of an output, e.g. ``info.path("labels/landuse.tif")``."""
        return self.out_dir / name

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


def _check_inputs(
    out_dir: Path, seed: int, size_m: float, gsd: float, crs: str, mixed_rate: float, months: int
) -> CRS:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError("--seed", f"must be a non-negative integer, got {seed!r}")
    if not np.isfinite(size_m) or size_m <= 0:
        raise InputError("--size-m", f"must be a positive number of metres, got {size_m}")
    if size_m < 200:
        raise InputError("--size-m", f"a city needs at least 200 m, got {size_m:g}")
    if not np.isfinite(gsd) or gsd <= 0:
        raise InputError("--gsd", f"must be a positive pixel size in metres, got {gsd}")
    if gsd > size_m / 16:
        raise InputError("--gsd", f"{gsd:g} m is too coarse for a {size_m:g} m city")
    if size_m / gsd > _MAX_PIXELS_SIDE:
        raise InputError(
            "--size-m",
            f"{size_m / gsd:.0f} pixels a side is too large; use a larger --gsd "
            f"or at most {_MAX_PIXELS_SIDE * gsd:.0f} m",
        )
    if not 0 <= mixed_rate <= 1:
        raise InputError("--mixed-rate", f"must be between 0 and 1, got {mixed_rate}")
    if months < 1:
        raise InputError("--months", f"must be at least 1, got {months}")
    try:
        crs_obj = CRS.from_user_input(crs)
    except CRSError:
        raise InputError("--crs", f"unknown CRS {crs!r}") from None
    if not crs_obj.is_projected or crs_obj.axis_info[0].unit_name not in ("metre", "meter"):
        raise InputError("--crs", f"{crs} is not a projected CRS in metres (try EPSG:32650)")
    for parent in out_dir.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(out_dir, f"cannot create it: {parent} is not a directory")
            break
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, "exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / "city.json").exists():
            # Replacing the directory would delete the user's files.
            raise InputError(
                out_dir, "exists, is not empty and is not a synthetic city; choose a new directory"
            )
    return crs_obj


@contextlib.contextmanager
def _fixed_gpkg_date() -> Iterator[None]:
    """GeoPackages record a write time; pin it so the same seed gives the same bytes."""
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _FIXED_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def make_city(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    size_m: float = 3000.0,
    gsd: float = 0.5,
    crs: str = "EPSG:32650",
    *,
    x0: float = 400_000.0,
    y0: float = 3_400_000.0,
    mixed_rate: float = 0.10,
    change_rate: float = 0.07,
    t2: bool = True,
    s2: bool = True,
    s1: bool = True,
    population: bool = True,
    months: int = 25,
    start_month: str = "2023-01",
    quiet: bool = False,
) -> CityInfo:
    """Generate a seeded synthetic city with true vectors, imagery and labels.

    Args:
        out_dir: directory to write (created; an earlier synthetic city there is replaced).
        seed: random seed; the same seed gives byte-identical files.
        size_m: side of the square extent in metres.
        gsd: pixel size of the very-high-resolution image and labels, metres.
        crs: a projected metric CRS for all outputs except the POIs (EPSG:4326).
        x0, y0: lower-left corner of the extent in ``crs``.
        mixed_rate: share of parcels with a second use.
        change_rate: share of parcels that change between the two epochs.
        t2, s2, s1, population: write the second epoch, the Sentinel-2 / Sentinel-1
            monthly stacks and the hourly population table.
        months: number of monthly Sentinel scenes (from ``start_month``).
        start_month: first month, ``YYYY-MM``.
        quiet: no progress bar.

    Returns:
        A :class:`CityInfo` with paths, counts and statistics (also in ``city.json``).

    Raises:
        InputError: for an impossible size, GSD, CRS or an unusable output directory.
    """
    out = Path(out_dir)
    crs_obj = _check_inputs(out, seed, float(size_m), float(gsd), crs, mixed_rate, months)
    seed = int(seed)
    t_start = time.perf_counter()
    info = CityInfo(out, seed, float(size_m), float(gsd), crs_obj.to_string())
    state: dict[str, Any] = {}

    frame = make_frame(seed, float(size_m), x0, y0)
    grid = RasterGrid.from_bounds(*frame.bounds, res=float(gsd), crs=crs_obj)

    with atomic_dir(out) as tmp, _fixed_gpkg_date():

        def vectors() -> None:
            roads = make_roads(frame, seed).set_crs(crs_obj)
            polys = road_buffers(roads)
            parcels = make_parcels(frame, polys, make_lake(frame, seed))
            parcels = assign_uses(parcels, roads, frame, seed, mixed_rate).set_crs(crs_obj)
            buildings = place_buildings(
                parcels, component_rng(seed, "buildings"), frame=frame
            ).set_crs(crs_obj)
            pois = make_pois(
                parcels, buildings, frame.boundary, component_rng(seed, "pois"), crs_obj
            )
            state.update(
                roads=roads, road_polygons=polys, parcels=parcels, buildings=buildings, pois=pois
            )
            _write_boundary(tmp / "boundary.gpkg", frame, crs_obj)
            write_vector(roads, tmp / "roads.gpkg", layer="roads")
            write_vector(parcels, tmp / "parcels.gpkg", layer="parcels")
            write_vector(buildings, tmp / "buildings.gpkg", layer="buildings")
            write_vector(pois, tmp / "pois.parquet", index=False)

        def image() -> None:
            img = render_image(
                grid,
                state["parcels"],
                state["roads"],
                state["road_polygons"],
                state["buildings"],
                seed,
                Illumination(),
                component_rng(seed, "image_sensor"),
            )
            write_cog(
                tmp / "image.tif",
                img,
                grid,
                band_descriptions=["red", "green", "blue", "nir"],
                tags={"landforge_synth_seed": seed, "gsd_m": gsd},
            )

        def labels() -> None:
            state["landuse"] = _write_labels(tmp, grid, frame, state["parcels"], state["buildings"])

        def epoch2() -> None:
            e2 = make_epoch2(state["parcels"], state["buildings"], seed, change_rate, frame=frame)
            d = tmp / "t2"
            write_vector(e2.parcels, d / "parcels.gpkg", layer="parcels")
            write_vector(e2.buildings, d / "buildings.gpkg", layer="buildings")
            e2.changes.to_csv(d / "changes.csv", index=False)
            light = Illumination.draw(component_rng(seed, "image_t2"))
            img = render_image(
                grid,
                e2.parcels,
                state["roads"],
                state["road_polygons"],
                e2.buildings,
                seed,
                light,
                component_rng(seed, "image_t2", 1),
                bare_parcel_ids=e2.bare_parcel_ids,
            )
            write_cog(
                d / "image.tif",
                img,
                grid,
                band_descriptions=["red", "green", "blue", "nir"],
                tags={"landforge_synth_seed": seed, "epoch": 2},
            )
            landuse2 = _write_labels(d, grid, frame, e2.parcels, e2.buildings)
            change = ((landuse2 != state["landuse"]) & (landuse2 > 0)).astype(np.uint8)
            write_cog(
                d / "change.tif",
                change,
                grid,
                band_descriptions=["change"],
                colormap={0: (0, 0, 0), 1: (255, 0, 0)},
            )
            state["changes"] = e2.changes

        def sentinel() -> None:
            from landforge.synth.sentinel import write_sentinel1, write_sentinel2

            if s2:
                write_sentinel2(
                    tmp / "s2",
                    frame,
                    state["parcels"],
                    state["road_polygons"],
                    state["buildings"],
                    crs_obj,
                    seed,
                    months,
                    start_month,
                )
            if s1:
                write_sentinel1(
                    tmp / "s1",
                    frame,
                    state["parcels"],
                    state["road_polygons"],
                    state["buildings"],
                    crs_obj,
                    seed,
                    months,
                    start_month,
                )

        def people() -> None:
            from landforge.synth.population import population_table

            table = population_table(state["parcels"], seed)
            table.to_parquet(tmp / "population.parquet", index=False)

        steps: list[tuple[str, Callable[[], None]]] = [
            ("vectors", vectors),
            ("image", image),
            ("labels", labels),
        ]
        if t2:
            steps.append(("epoch 2", epoch2))
        if s2 or s1:
            steps.append(("sentinel", sentinel))
        if population:
            steps.append(("population", people))
        for _, step in track(steps, "synth city", quiet=quiet):
            step()

        info.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + [
            "city.json"
        ]
        info.counts = _counts(state)
        info.stats = city_statistics(
            frame,
            state["parcels"],
            state["buildings"],
            state["pois"].to_crs(crs_obj),
            state["roads"],
        )
        info.seconds = round(time.perf_counter() - t_start, 2)
        meta = info.to_json()
        meta.pop("out_dir")
        meta.pop("seconds")  # wall time differs between runs; city.json must not
        meta["extent"] = list(frame.bounds)
        meta["grid"] = {"width": grid.width, "height": grid.height, "res": gsd}
        (tmp / "city.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return info


def _write_boundary(path: Path, frame: CityFrame, crs: CRS) -> None:
    whole = gpd.GeoDataFrame(
        {"name": ["Synthetic City"], "area_km2": [round(frame.boundary.area / 1e6, 4)]},
        geometry=[frame.boundary],
        crs=crs,
    )
    districts = gpd.GeoDataFrame(
        {
            "district_id": np.arange(1, len(frame.districts) + 1, dtype=np.int64),
            "name": [
                _DISTRICT_NAMES[i % len(_DISTRICT_NAMES)] for i in range(len(frame.districts))
            ],
        },
        geometry=list(frame.districts),
        crs=crs,
    )
    # separate files: a single-layer boundary opens without a layer name everywhere
    whole.to_file(path, layer="boundary", driver="GPKG", engine="pyogrio")
    districts.to_file(
        path.with_name("districts.gpkg"), layer="districts", driver="GPKG", engine="pyogrio"
    )


def _write_labels(
    d: Path,
    grid: RasterGrid,
    frame: CityFrame,
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
) -> np.ndarray:
    landuse = landuse_raster(grid, frame.boundary, parcels)
    write_cog(
        d / "labels" / "landuse.tif",
        landuse,
        grid,
        nodata=0,
        band_descriptions=["mslu_primary"],
        colormap=_LANDUSE_COLOURS,
    )
    write_cog(
        d / "labels" / "footprint.tif",
        footprint_raster(grid, buildings),
        grid,
        band_descriptions=["footprint"],
        colormap={0: (0, 0, 0), 1: (255, 255, 255)},
    )
    write_cog(
        d / "labels" / "building_use.tif",
        building_use_raster(grid, buildings),
        grid,
        band_descriptions=["building_use"],
        colormap=_RCI_COLOURS,
    )
    return landuse


def _counts(state: dict[str, Any]) -> dict[str, Any]:
    parcels, buildings, pois = state["parcels"], state["buildings"], state["pois"]
    out: dict[str, Any] = {
        "parcels": len(parcels),
        "buildings": len(buildings),
        "pois": len(pois),
        "roads": len(state["roads"]),
        "mixed_parcels": int(parcels["mixed"].sum()),
        "parcels_by_primary": {
            k: int(v) for k, v in parcels["use_primary"].value_counts().sort_index().items()
        },
        "parcels_by_secondary": {
            k: int(v) for k, v in parcels["use_secondary"].value_counts().sort_index().items()
        },
        "buildings_by_use": {
            k: int(v) for k, v in buildings["use"].value_counts().sort_index().items()
        },
        "roads_by_class": {
            k: int(v) for k, v in state["roads"]["road_class"].value_counts().sort_index().items()
        },
        "pois_by_gaode": {
            k: int(v) for k, v in pois["gaode_category"].value_counts().sort_index().items()
        },
    }
    if "landuse" in state:
        values, n = np.unique(state["landuse"], return_counts=True)
        out["landuse_pixels"] = {str(int(v)): int(c) for v, c in zip(values, n, strict=True)}
    if "changes" in state:
        out["changed_parcels"] = {
            k: int(v) for k, v in state["changes"]["kind"].value_counts().sort_index().items()
        }
    return out


def city_statistics(
    frame: CityFrame,
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
) -> dict[str, dict[str, float]]:
    """Density statistics of the core (central square of up to 1 km²) and the periphery.

    Buildings and parcels count in the zone holding their centroid; coverage is the
    footprint area inside the zone; POIs count with their location, noise included.
    """
    cx, cy = frame.centre
    half = min(500.0, frame.size_m / 4)
    core = frame.boundary.intersection(box(cx - half, cy - half, cx + half, cy + half))
    zones = {"core": core, "periphery": frame.boundary.difference(core)}
    b_geoms = buildings.geometry.to_numpy()
    b_cent = shapely.centroid(b_geoms)
    p_geoms = parcels.geometry.to_numpy()
    p_cent = shapely.centroid(p_geoms)
    poi_xy = shapely.get_coordinates(pois.geometry.to_numpy())
    out = {}
    for name, zone in zones.items():
        shapely.prepare(zone)
        km2 = zone.area / 1e6
        in_b = shapely.contains(zone, b_cent)
        in_p = shapely.contains(zone, p_cent)
        cover = shapely.area(shapely.intersection(b_geoms[in_b], zone)).sum() if in_b.any() else 0.0
        n_poi = (
            int(shapely.contains_xy(zone, poi_xy[:, 0], poi_xy[:, 1]).sum()) if len(poi_xy) else 0
        )
        road_km = shapely.length(shapely.intersection(roads.geometry.to_numpy(), zone)).sum() / 1000
        out[name] = {
            "area_km2": round(km2, 4),
            "buildings_per_km2": round(float(in_b.sum()) / km2, 1),
            "building_coverage_pct": round(float(100 * cover / zone.area), 2),
            "pois_per_km2": round(n_poi / km2, 1),
            "median_parcel_area_m2": round(float(np.median(shapely.area(p_geoms[in_p]))), 1)
            if in_p.any()
            else 0.0,
            "road_km_per_km2": round(float(road_km / km2), 2),
        }
    return out
