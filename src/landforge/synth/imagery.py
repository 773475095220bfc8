"""Very-high-resolution RGB + NIR image of a synthetic city.

Everything is vectorised numpy over rasterised layers: a parcel index raster gives each
pixel its ground cover (paving, soil, crop, water) through look-up tables, smooth noise
fields decide where grass and trees grow (high NIR), roads are asphalt with dashed
markings, buildings get a roof colour drawn from overlapping use palettes, shadows fall
on the side away from the sun by building height, and sensor noise goes on top. The
texture fields come from the ``image`` stream alone, so a second epoch rendered with the
same seed looks the same wherever nothing changed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from rasterio import features
from scipy.special import ndtri

from landforge.io.raster import RasterGrid
from landforge.synth.layout import component_rng, smooth_noise

__all__ = ["Illumination", "render_image", "ground_cover"]

# Ground cover of a parcel by use: (R, G, B, NIR) of its open ground, share of open
# ground that is vegetated, share of the vegetation that is trees, texture amplitude.
_PAVED = (150.0, 148.0, 140.0, 120.0)
_CONCRETE = (178.0, 174.0, 164.0, 138.0)
_SOIL = (150.0, 124.0, 98.0, 150.0)
_WATER = (28.0, 44.0, 52.0, 12.0)
_GROUND: dict[str, tuple[tuple[float, float, float, float], float, float, float]] = {
    "R1": (_PAVED, 0.45, 0.5, 10),
    "R2": (_PAVED, 0.35, 0.5, 10),
    "R3": (_PAVED, 0.12, 0.4, 12),
    "B1": ((165.0, 162.0, 155.0, 128.0), 0.12, 0.6, 8),
    "B2": ((165.0, 163.0, 158.0, 128.0), 0.18, 0.6, 8),
    "A1": (_PAVED, 0.3, 0.5, 8),
    "A3": ((150.0, 95.0, 80.0, 110.0), 0.4, 0.3, 10),  # red tracks
    "A5": (_PAVED, 0.3, 0.5, 8),
    "G1": (_PAVED, 0.88, 0.45, 8),
    "M1": (_CONCRETE, 0.08, 0.3, 14),
    "M2": (_SOIL, 0.06, 0.3, 16),
    "W1": (_CONCRETE, 0.05, 0.3, 10),
    "S4": ((120.0, 120.0, 118.0, 95.0), 0.05, 0.5, 8),
    "X0": (_SOIL, 0.25, 0.3, 14),
    "E1": (_WATER, 0.0, 0.0, 3),
    "E2": (_SOIL, 0.85, 0.02, 12),
    "E9": (_SOIL, 0.55, 0.35, 16),
}
_OUTSIDE = (_SOIL, 0.7, 0.4, 14)  # countryside beyond the boundary
_GRASS = np.array([72.0, 112.0, 62.0, 185.0], np.float32)
_TREES = np.array([42.0, 74.0, 46.0, 205.0], np.float32)
_ASPHALT = np.array([84.0, 87.0, 92.0, 70.0], np.float32)
_MARKING = np.array([215.0, 215.0, 208.0, 190.0], np.float32)

# Roof palettes (R, G, B) and weights by building use. They overlap on purpose: grey
# concrete roofs occur in every use, as in real imagery.
_ROOFS: dict[str, tuple[list[tuple[float, float, float]], list[float]]] = {
    "residential": (
        [(150, 82, 66), (140, 140, 138), (98, 100, 104), (180, 174, 164)],
        [0.35, 0.35, 0.15, 0.15],
    ),
    "commercial": (
        [(208, 208, 204), (122, 140, 160), (150, 150, 150), (72, 82, 96)],
        [0.3, 0.3, 0.25, 0.15],
    ),
    "industrial": (
        [(186, 188, 190), (92, 122, 170), (204, 204, 198), (150, 150, 148)],
        [0.45, 0.25, 0.15, 0.15],
    ),
}


def burn_mask(geoms: Collection[object], shape: tuple[int, int], transform: object) -> np.ndarray:
    """Boolean raster of the pixels whose centres fall in any of ``geoms`` (none: all False)."""
    if not len(geoms):
        return np.zeros(shape, bool)
    return features.rasterize(
        ((g, 1) for g in geoms), out_shape=shape, transform=transform, fill=0, dtype="uint8"
    ).astype(bool)


@dataclass(frozen=True)
class Illumination:
    """Acquisition conditions of one image: gains, haze, sun and sensor noise."""

    gain: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    haze: float = 4.0
    sun_azimuth_deg: float = 150.0  # sun in the south-south-east (shadows to the NNW)
    sun_elevation_deg: float = 55.0
    noise_dn: float = 2.5
    vegetation_vigour: float = 1.0  # NIR/green scale for the season

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Illumination:
        """Plausible conditions of another acquisition date."""
        return cls(
            gain=tuple(rng.uniform(0.92, 1.08, 4)),  # type: ignore[arg-type]
            haze=float(rng.uniform(2, 10)),
            sun_azimuth_deg=float(rng.uniform(135, 165)),
            sun_elevation_deg=float(rng.uniform(45, 65)),
            noise_dn=float(rng.uniform(2, 3.5)),
            vegetation_vigour=float(rng.uniform(0.85, 1.1)),
        )


def ground_cover(code: str | None) -> tuple[np.ndarray, float, float, float]:
    """(colour RGBN, vegetated share, tree share of vegetation, texture) of a use code."""
    colour, green, trees, texture = _GROUND.get(code, _OUTSIDE) if code else _OUTSIDE
    return np.asarray(colour, np.float32), green, trees, texture


def _roof_table(
    buildings: gpd.GeoDataFrame, seed: int, roof_uses: np.ndarray | None = None
) -> np.ndarray:
    """Roof RGB per building row (n, 3); drawn by building_id so epochs agree.

    ``roof_uses`` (one per row) picks the palette instead of the ``use`` column: the
    look of a building whose appearance is independent of its use (use ambiguity).
    """
    ids = buildings["building_id"].to_numpy()
    n_ids = int(ids.max()) + 1 if len(ids) else 1
    rng = component_rng(seed, "roof_colours")
    u = rng.random(n_ids)[ids]  # palette pick
    jitter = rng.normal(0, 5, (n_ids, 3))[ids]
    shade = rng.normal(0, 12, n_ids)[ids]  # brightness shared by the three bands
    out = np.zeros((len(ids), 3), np.float32)
    uses = buildings["use"].to_numpy() if roof_uses is None else np.asarray(roof_uses)
    for use, (palette, weights) in _ROOFS.items():
        sel = uses == use
        k = np.searchsorted(np.cumsum(weights) / np.sum(weights), u[sel])
        out[sel] = np.asarray(palette, np.float32)[np.minimum(k, len(palette) - 1)]
    return np.clip(out + jitter + shade[:, None], 0, 255).astype(np.float32)


def _shadow_polygons(buildings: gpd.GeoDataFrame, light: Illumination) -> np.ndarray:
    """The ground each building shades: hull of the footprint and its cast copy."""
    corners = shapely.get_coordinates(buildings.geometry.to_numpy()).reshape(-1, 5, 2)[:, :4]
    length = buildings["height_m"].to_numpy() / np.tan(np.radians(light.sun_elevation_deg))
    away = np.radians(light.sun_azimuth_deg + 180.0)  # azimuth clockwise from north
    offset = np.c_[np.sin(away) * length, np.cos(away) * length][:, None, :]
    pts = np.concatenate([corners, corners + offset], axis=1)
    return shapely.convex_hull(shapely.multipoints(pts))


def render_image(
    grid: RasterGrid,
    parcels: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    road_polygons: np.ndarray,
    buildings: gpd.GeoDataFrame,
    seed: int,
    light: Illumination,
    sensor_rng: np.random.Generator,
    bare_parcel_ids: Collection[int] = (),
    roof_uses: np.ndarray | None = None,
) -> np.ndarray:
    """Render the 4-band uint8 image (R, G, B, NIR) of the city on ``grid``.

    Args:
        grid: the target pixel grid (its resolution is the GSD).
        parcels: parcels with ``use_secondary``.
        roads: centrelines (for markings).
        road_polygons: roadbeds, one polygon per road.
        buildings: footprints with ``building_id``, ``use``, ``height_m``.
        seed: city seed; fixes the texture fields and roof colours.
        light: acquisition conditions (differ between epochs).
        sensor_rng: stream for sensor noise (differs between epochs).
        bare_parcel_ids: parcels shown as freshly cleared ground (demolition sites).
        roof_uses: per building, the use whose roof palette it wears (default: its use).

    Returns:
        uint8 array (4, height, width).
    """
    shape = grid.shape
    gsd = grid.res[0]
    tf = grid.transform
    rng = component_rng(seed, "image")

    # --- rasterised layers -------------------------------------------------------------
    pidx = (
        features.rasterize(
            zip(parcels.geometry.to_numpy(), range(1, len(parcels) + 1), strict=True),
            out_shape=shape,
            transform=tf,
            fill=0,
            dtype="int32",
        )
        if len(parcels)
        else np.zeros(shape, np.int32)
    )
    road = burn_mask(road_polygons, shape, tf)
    wide = roads[roads["width_m"] >= 12]
    marking = burn_mask(wide.geometry.to_numpy(), shape, tf)
    rows = np.arange(shape[0])[:, None]
    cols = np.arange(shape[1])[None, :]
    dash = int(max(1, round(3.0 / gsd)))  # 3 m dashes, 3 m gaps in both directions
    marking &= (rows // dash + cols // dash) % 2 == 0
    if len(buildings):
        bidx = features.rasterize(
            zip(buildings.geometry.to_numpy(), range(1, len(buildings) + 1), strict=True),
            out_shape=shape,
            transform=tf,
            fill=0,
            dtype="int32",
        )
        shade = features.rasterize(
            ((g, 1) for g in _shadow_polygons(buildings, light)),
            out_shape=shape,
            transform=tf,
            fill=0,
            dtype="uint8",
        ).astype(bool)
    else:
        bidx = np.zeros(shape, np.int32)
        shade = np.zeros(shape, bool)
    roof = bidx > 0
    shade &= ~roof

    # --- per-parcel look-up tables (index 0 = outside any parcel) ----------------------
    codes = [None, *parcels["use_secondary"].tolist()]
    covers = [ground_cover(c) for c in codes]
    bare = set(bare_parcel_ids)
    for k, pid in enumerate(parcels["parcel_id"].tolist(), start=1):
        if pid in bare:  # rubble and bare soil, hardly any vegetation
            covers[k] = (np.asarray((168.0, 150.0, 128.0, 150.0), np.float32), 0.03, 0.1, 20.0)
    base_lut = np.stack([c[0] for c in covers])  # (n+1, 4)
    # per-parcel variation: each field or yard has its own tone
    base_lut = base_lut * rng.uniform(0.9, 1.1, (len(codes), 1)).astype(np.float32)
    crop = np.array([c == "E2" for c in codes])
    crop_tone = rng.uniform(0.7, 1.25, (len(codes), 4)).astype(np.float32)
    veg_thr = ndtri(np.clip([c[1] for c in covers], 1e-4, 1 - 1e-4)).astype(np.float32)
    tree_thr = ndtri(np.clip([c[2] for c in covers], 1e-4, 1 - 1e-4)).astype(np.float32)
    texture_lut = np.array([c[3] for c in covers], np.float32)

    # --- texture fields (same for every epoch of a seed) -------------------------------
    def unit(field: np.ndarray) -> np.ndarray:
        field -= field.mean()
        field /= field.std() + 1e-6
        return field

    veg_field = unit(smooth_noise(rng, shape, 12.0 / gsd))
    tree_field = unit(smooth_noise(rng, shape, 5.0 / gsd))
    tone_field = unit(smooth_noise(rng, shape, 3.0 / gsd))
    fine_field = rng.standard_normal(shape, dtype=np.float32)

    veg = (veg_field < veg_thr[pidx]) & ~road & ~roof
    trees = veg & (tree_field < tree_thr[pidx])
    water = np.array([c == "E1" for c in codes])[pidx] & ~road & ~roof
    crop_px = crop[pidx] & ~road & ~roof
    tex = texture_lut[pidx]

    roof_rgb = (
        _roof_table(buildings, seed, roof_uses) if len(buildings) else np.zeros((0, 3), np.float32)
    )
    roof_lut = np.zeros((len(buildings) + 1, 4), np.float32)
    roof_lut[1:, :3] = roof_rgb
    roof_lut[1:, 3] = roof_rgb.mean(axis=1) * 0.9  # roofs reflect NIR like their grey level
    shadow_factor = 0.42

    stripes = (
        np.sin((rows + cols * 0.3) * (np.pi * gsd / 1.5)).astype(np.float32)
        if crop_px.any()
        else None
    )
    out = np.empty((4, *shape), np.uint8)
    noise_scale = light.noise_dn
    for b in range(4):
        band = base_lut[:, b][pidx]
        # crop: per-field tone, row stripes (drill lines) and vigorous NIR
        if crop_px.any():
            band = np.where(crop_px, band * crop_tone[:, b][pidx], band)
        band += tex * (0.6 * tone_field + 0.4 * fine_field)
        vigour = light.vegetation_vigour if b in (1, 3) else 1.0
        band = np.where(
            veg & ~crop_px, (_GRASS[b] * vigour) + 9 * tone_field + 6 * fine_field, band
        )
        band = np.where(trees, (_TREES[b] * vigour) + 14 * tree_field + 10 * fine_field, band)
        if stripes is not None:
            crop_col = np.array([80.0, 120.0, 64.0, 200.0], np.float32)[b] * vigour
            band = np.where(crop_px & veg, crop_col * crop_tone[:, b][pidx] + 6 * stripes, band)
        band = np.where(water, _WATER[b] + 2.5 * tone_field, band)
        band = np.where(road, _ASPHALT[b] + 5 * tone_field + 4 * fine_field, band)
        band = np.where(marking, _MARKING[b] + 4 * fine_field, band)
        band = np.where(shade, band * shadow_factor, band)
        band = np.where(roof, roof_lut[:, b][bidx] + 5 * fine_field + 3 * tone_field, band)
        band = band * light.gain[b] + light.haze
        band += sensor_rng.standard_normal(shape, dtype=np.float32) * noise_scale
        np.clip(band, 0, 255, out=band)
        out[b] = band.astype(np.uint8)
    return out
