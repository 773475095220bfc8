"""Stages: POI features (distance-decay maps, category embeddings, features per parcel).

Options live in :mod:`landforge.features.options`; the stage configs add the input and
output paths. Each stage is also a CLI command: ``poi-maps``, ``poi-embed``,
``parcels features``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from landforge.config import StageConfig
from landforge.errors import require_file
from landforge.features.options import (
    ParcelFeatureOptions,
    PoiCsvColumns,
    PoiEmbedOptions,
    PoiMapOptions,
)
from landforge.pipeline.registry import StageContext, StageResult, register_stage

_POI_HELP = "POIs: CSV (lon/lat columns), GeoJSON, GeoParquet, GeoPackage or .osm.pbf."


def _suffix(path: str, suffixes: tuple[str, ...], problem: str) -> str:
    if Path(path).suffix.lower() not in suffixes:
        raise ValueError(f"{path}: {problem}")
    return path


# ---------------------------------------------------------------- POI maps
class PoiMapsStage(StageConfig, PoiCsvColumns, PoiMapOptions):
    """``landforge poi-maps --poi POIS --like IMAGE --dmax ... --out poi.tif``."""

    input_fields = ("poi", "like")
    output_fields = ("out",)
    poi: str = Field(description=_POI_HELP)
    like: str = Field(description="Raster whose grid (CRS, transform, size) the maps take.")
    out: str = Field("poi.tif", description="Output COG (.tif), one float32 band per class.")

    @field_validator("out")
    @classmethod
    def _tif(cls, value: str) -> str:
        return _suffix(value, (".tif", ".tiff"), "POI maps are written as a GeoTIFF (.tif)")


@register_stage("poi_maps", PoiMapsStage, command="poi-maps")
def poi_maps(cfg: PoiMapsStage, ctx: StageContext) -> StageResult:
    """POI distance-decay probability per class: p = 1 - min(d / dmax, 1)."""
    # domain functions import GDAL/geopandas: imported here, not at CLI start-up
    from landforge.features.poi_maps import (
        load_poi_mapping,
        resolve_classes,
        write_poi_probability_maps,
    )
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid

    o = PoiMapOptions.build(cfg)
    mapping = load_poi_mapping(o.taxonomy)
    classes = resolve_classes(o.dmax, mapping)  # fail on a bad class before reading data
    grid = read_grid(cfg.like, require_crs=True)
    pois = read_pois(cfg.poi, lon_col=cfg.lon, lat_col=cfg.lat, category_col=o.category_col)
    write_poi_probability_maps(cfg.out, pois, grid, o, mapping=mapping)
    names = [c.name for c in classes]
    return StageResult(
        {"pois": len(pois), "classes": names, "width": grid.width, "height": grid.height},
        [
            f"{len(pois)} POIs -> {len(names)} bands ({', '.join(names)}) "
            f"{grid.width}x{grid.height} -> {cfg.out}"
        ],
    )


# ---------------------------------------------------------------- POI embeddings
class PoiEmbedStage(StageConfig, PoiCsvColumns, PoiEmbedOptions):
    """``landforge poi-embed --poi POIS --dim 64 --out emb.parquet``."""

    input_fields = ("poi",)
    output_fields = ("out",)
    cli_flags = {"walks_per_node": "--walks", "max_dist_m": "--max-dist"}
    poi: str = Field(description=_POI_HELP)
    out: str = Field(
        "poi_embeddings.parquet", description="Output embeddings (.parquet): category, emb_*."
    )

    @field_validator("out")
    @classmethod
    def _parquet(cls, value: str) -> str:
        return _suffix(value, (".parquet",), "embeddings are written as Parquet (.parquet)")


@register_stage("poi_embed", PoiEmbedStage, command="poi-embed")
def poi_embed(cfg: PoiEmbedStage, ctx: StageContext) -> StageResult:
    """POI category embeddings: random walks on a POI network + skip-gram (MSLU)."""
    # domain functions import gensim/geopandas: imported here, not at CLI start-up
    from landforge.features.poi_embed import POIEmbedder
    from landforge.io.poi import read_pois

    model = POIEmbedder(PoiEmbedOptions.build(cfg))  # a bad option fails before reading
    pois = read_pois(cfg.poi, lon_col=cfg.lon, lat_col=cfg.lat, category_col=cfg.category_col)
    model.fit(pois)
    model.save(cfg.out)
    n_cats = len(model.categories_)
    return StageResult(
        {
            "pois": model.n_pois_,
            "categories": n_cats,
            "edges": model.n_edges_,
            "walks": model.n_walks_,
            "dim": model.dim,
        },
        [
            f"{model.n_pois_} POIs, {n_cats} categories, {model.n_edges_} edges, "
            f"{model.n_walks_} walks -> {model.dim}-d embeddings -> {cfg.out}"
        ],
    )


# ---------------------------------------------------------------- features per parcel
class ParcelFeaturesStage(StageConfig, PoiCsvColumns, ParcelFeatureOptions):
    """``landforge parcels features PARCELS --poi POIS [--embeddings E] --out F``."""

    input_fields = ("parcels", "poi", "embeddings")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Parcels (.parquet or .gpkg).")
    poi: str = Field(description=_POI_HELP)
    embeddings: str | None = Field(
        None, description="Category embeddings from `landforge poi-embed` (.parquet)."
    )
    out: str = Field("parcel_features.parquet", description="Output features (.parquet or .csv).")

    @field_validator("out")
    @classmethod
    def _table(cls, value: str) -> str:
        return _suffix(value, (".parquet", ".csv"), "write features as .parquet or .csv")


@register_stage("parcel_features", ParcelFeaturesStage, command="parcels features")
def parcel_features(cfg: ParcelFeaturesStage, ctx: StageContext) -> StageResult:
    """POI counts, density and (TF-IDF) mean category embedding per parcel."""
    # domain functions import geopandas/pyarrow: imported here, not at CLI start-up
    from landforge.features.parcel_features import parcel_poi_features
    from landforge.features.poi_embed import POIEmbedder
    from landforge.io.atomic import atomic_path
    from landforge.io.poi import read_pois
    from landforge.io.vector import read_vector

    o = ParcelFeatureOptions.build(cfg)
    emb = POIEmbedder.load(cfg.embeddings) if cfg.embeddings is not None else None
    parcels = read_vector(require_file(cfg.parcels, "parcels file"))
    pois = read_pois(cfg.poi, lon_col=cfg.lon, lat_col=cfg.lat, category_col=o.category_col)
    feats = parcel_poi_features(parcels, pois, emb, o)
    with atomic_path(cfg.out) as tmp:  # a failed write leaves no half-written table
        if tmp.suffix.lower() == ".csv":
            feats.to_csv(tmp, index=False)
        else:
            feats.to_parquet(tmp, index=False)
    with_pois = int((feats["n_pois"] > 0).sum())
    n_pois = int(feats["n_pois"].sum())
    return StageResult(
        {"parcels": len(feats), "with_pois": with_pois, "pois": n_pois, "columns": feats.shape[1]},
        [
            f"{len(feats)} parcels ({with_pois} with POIs, {n_pois} POIs), "
            f"{feats.shape[1]} columns -> {cfg.out}"
        ],
    )
