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
from shapely.geometry import box

from landforge.errors import InputError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, write_cog
from landforge.io.vector import write_vector
from landforge.progress import track
from landforge.synth.buildings import appearance_uses, place_buildings, pooled_looks
from landforge.synth.change import make_epoch2
from landforge.synth.imagery import Illumination, render_image
from landforge.synth.labels import building_use_raster, footprint_raster, landuse_raster
from landforge.synth.layout import CityFrame, component_rng, make_frame
from landforge.synth.options import CityOptions
from landforge.synth.parcels import assign_uses, make_lake, make_parcels
from landforge.synth.pois import make_pois
from landforge.synth.roads import make_roads, road_buffers
from landforge.synth.sentinel import SeriesChange, month_names

__all__ = ["CityInfo", "make_city", "city_statistics"]

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
        """JSON-able dict of every attribute (``out_dir`` as text)."""
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


def _check_out_dir(out_dir: Path) -> None:
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
    out_dir: str | os.PathLike[str], opts: CityOptions | None = None, **overrides: Any
) -> CityInfo:
    """Generate a seeded synthetic city with true vectors, imagery and labels.

    Args:
        out_dir: directory to write (created; an earlier synthetic city there is replaced).
        opts: :class:`~landforge.synth.options.CityOptions`: ``seed`` (the same seed gives
            byte-identical files), ``size_m`` (side of the square extent), ``gsd`` (pixel
            size of the very-high-resolution image and labels), ``crs`` (a projected
            metric CRS for all outputs except the POIs, which are EPSG:4326), ``x0``,
            ``y0`` (lower-left corner of the extent), ``mixed_rate`` (share of parcels
            with a second use), ``change_rate`` (share of parcels that change between
            the two epochs), ``t2``, ``s2``, ``s1``, ``population`` (write the second
            epoch, the Sentinel-2 / Sentinel-1 monthly stacks and the hourly population
            table), ``months`` and ``start_month`` (the monthly Sentinel scenes),
            ``use_ambiguity`` (share of urban parcels whose buildings look use-independent,
            see :func:`~landforge.synth.buildings.pooled_looks`), ``quiet`` (no progress bar).
        **overrides: fields of ``opts`` to replace, e.g. ``make_city(out, seed=1)``.

    Returns:
        A :class:`CityInfo` with paths, counts and statistics (also in ``city.json``).

    Raises:
        OptionError: an impossible size, GSD or CRS.
        InputError: an unusable output directory.
    """
    o = CityOptions.build(opts, **overrides)
    out = Path(out_dir)
    _check_out_dir(out)
    crs = CRS.from_user_input(o.crs)
    t_start = time.perf_counter()
    info = CityInfo(out, o.seed, o.size_m, o.gsd, crs.to_string())
    frame = make_frame(o.seed, o.size_m, o.x0, o.y0)
    grid = RasterGrid.from_bounds(*frame.bounds, res=o.gsd, crs=crs)
    with atomic_dir(out, marker="city.json") as tmp, _fixed_gpkg_date():
        b = _Build(o, tmp, frame, grid, crs)
        steps: list[tuple[str, Callable[[_Build], None]]] = [
            ("vectors", _vectors),
            ("image", _image),
            ("labels", _labels),
        ]
        if o.t2:
            steps.append(("epoch 2", _epoch2))
        if o.s2 or o.s1:
            steps.append(("sentinel", _sentinel))
        if o.population:
            steps.append(("population", _people))
        for _, step in track(steps, "synth city", quiet=o.quiet):
            step(b)
        info.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + [
            "city.json"
        ]
        info.counts = _counts(b.state)
        info.stats = city_statistics(
            frame,
            b.state["parcels"],
            b.state["buildings"],
            b.state["pois"].to_crs(crs),
            b.state["roads"],
        )
        info.seconds = round(time.perf_counter() - t_start, 2)
        meta = info.to_json()
        meta.pop("out_dir")
        meta.pop("seconds")  # wall time differs between runs; city.json must not
        meta["extent"] = list(frame.bounds)
        meta["grid"] = {"width": grid.width, "height": grid.height, "res": o.gsd}
        (tmp / "city.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return info


@dataclass
class _Build:
    """A city being generated: its options, where it is written, its layers so far."""

    o: CityOptions
    tmp: Path  # the temporary directory that becomes the city
    frame: CityFrame
    grid: RasterGrid
    crs: CRS
    state: dict[str, Any] = field(default_factory=dict)


def _vectors(b: _Build) -> None:
    """Roads, parcels with use, buildings, POIs and the boundary (each its own stream)."""
    seed, frame, crs = b.o.seed, b.frame, b.crs
    roads = make_roads(frame, seed).set_crs(crs)
    polys = road_buffers(roads)
    parcels = make_parcels(frame, polys, make_lake(frame, seed))
    parcels = assign_uses(parcels, roads, frame, seed, b.o.mixed_rate).set_crs(crs)
    looks = pooled_looks(parcels, seed, b.o.use_ambiguity)
    buildings = place_buildings(
        parcels, component_rng(seed, "buildings"), frame=frame, looks=looks
    ).set_crs(crs)
    pois = make_pois(parcels, buildings, frame.boundary, component_rng(seed, "pois"), crs)
    b.state.update(
        roads=roads, road_polygons=polys, parcels=parcels, buildings=buildings, pois=pois
    )
    _write_boundary(b.tmp / "boundary.gpkg", frame, crs)
    write_vector(roads, b.tmp / "roads.gpkg", layer="roads")
    write_vector(parcels, b.tmp / "parcels.gpkg", layer="parcels")
    write_vector(buildings, b.tmp / "buildings.gpkg", layer="buildings")
    write_vector(pois, b.tmp / "pois.parquet", index=False)


def _image(b: _Build) -> None:
    """The very-high-resolution image of the first epoch."""
    st, seed = b.state, b.o.seed
    img = render_image(
        b.grid,
        st["parcels"],
        st["roads"],
        st["road_polygons"],
        st["buildings"],
        seed,
        Illumination(),
        component_rng(seed, "image_sensor"),
        roof_uses=_roof_uses(b, st["parcels"], st["buildings"]),
    )
    write_cog(
        b.tmp / "image.tif",
        img,
        b.grid,
        band_descriptions=["red", "green", "blue", "nir"],
        tags={"landforge_synth_seed": seed, "gsd_m": b.o.gsd},
    )


def _roof_uses(
    b: _Build, parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> np.ndarray | None:
    """Roof palette use per building under use ambiguity (None: each its own use)."""
    if b.o.use_ambiguity <= 0:
        return None
    return appearance_uses(buildings, pooled_looks(parcels, b.o.seed, b.o.use_ambiguity))


def _labels(b: _Build) -> None:
    """The label rasters of the first epoch."""
    b.state["landuse"] = _write_labels(
        b.tmp, b.grid, b.frame, b.state["parcels"], b.state["buildings"]
    )


def _epoch2(b: _Build) -> None:
    """The second epoch: changed parcels and buildings, its image, labels and change map."""
    st, seed, grid = b.state, b.o.seed, b.grid
    e2 = make_epoch2(
        st["parcels"],
        st["buildings"],
        seed,
        b.o.change_rate,
        frame=b.frame,
        ambiguity=b.o.use_ambiguity,
    )
    d = b.tmp / "t2"
    write_vector(e2.parcels, d / "parcels.gpkg", layer="parcels")
    write_vector(e2.buildings, d / "buildings.gpkg", layer="buildings")
    # the month each changed parcel first shows its new state in the Sentinel series:
    # uniform over months 2..last (the first month is the first date, the last the
    # second); a one-month series never shows it
    months = month_names(b.o.start_month, b.o.months)
    n = len(e2.changes)
    first = (
        component_rng(seed, "change_month").integers(1, len(months), n)
        if len(months) > 1
        else np.full(n, len(months))
    )
    e2.changes["series_month"] = [months[k] if k < len(months) else "" for k in first]
    st["series_change"] = SeriesChange(
        e2.parcels,
        e2.buildings,
        dict(zip(e2.changes["parcel_id"].astype(int), first.tolist(), strict=True)),
    )
    e2.changes.to_csv(d / "changes.csv", index=False)
    light = Illumination.draw(component_rng(seed, "image_t2"))
    img = render_image(
        grid,
        e2.parcels,
        st["roads"],
        st["road_polygons"],
        e2.buildings,
        seed,
        light,
        component_rng(seed, "image_t2", 1),
        bare_parcel_ids=e2.bare_parcel_ids,
        roof_uses=_roof_uses(b, e2.parcels, e2.buildings),
    )
    write_cog(
        d / "image.tif",
        img,
        grid,
        band_descriptions=["red", "green", "blue", "nir"],
        tags={"landforge_synth_seed": seed, "epoch": 2},
    )
    landuse2 = _write_labels(d, grid, b.frame, e2.parcels, e2.buildings)
    change = ((landuse2 != st["landuse"]) & (landuse2 > 0)).astype(np.uint8)
    write_cog(
        d / "change.tif",
        change,
        grid,
        band_descriptions=["change"],
        colormap={0: (0, 0, 0), 1: (255, 0, 0)},
    )
    st["changes"] = e2.changes


def _sentinel(b: _Build) -> None:
    """The monthly Sentinel-2 and Sentinel-1 stacks."""
    from landforge.synth.sentinel import write_sentinel1, write_sentinel2

    st, o = b.state, b.o
    layers = (b.frame, st["parcels"], st["road_polygons"], st["buildings"], b.crs)
    change = st.get("series_change")
    if o.s2:
        write_sentinel2(b.tmp / "s2", *layers, o.seed, o.months, o.start_month, change)
    if o.s1:
        write_sentinel1(b.tmp / "s1", *layers, o.seed, o.months, o.start_month, change)


def _people(b: _Build) -> None:
    """The hourly population table, and day 0 as 24 hourly rasters (population/)."""
    from landforge.synth.population import population_table, write_population_rasters

    table = population_table(b.state["parcels"], b.o.seed)
    table.to_parquet(b.tmp / "population.parquet", index=False)
    write_population_rasters(b.state["parcels"], table, b.frame.bounds, b.tmp / "population")


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
