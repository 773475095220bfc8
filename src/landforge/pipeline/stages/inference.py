"""Stages: large-area prediction, built-up masks, vectorising, parcel assignment.

The options of each stage live in :mod:`landforge.inference.options`; the domain
functions are imported inside the stage functions (they pull in torch, rasterio and
geopandas, which the CLI does not need at start-up).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, field_validator

from landforge.config import StageConfig, jsonable
from landforge.inference.options import (
    AssignParcelsOptions,
    BuiltupOptions,
    PredictOptions,
    VectorizeOptions,
)
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- prediction
class PredictStage(StageConfig, PredictOptions):
    """``landforge predict --model M --image I --out map.tif``: options in PredictOptions."""

    input_fields = ("model", "image", "extras", "mask")
    output_fields = ("out", "footprint_out", "probs_out")
    cli_flags = {"extras": "--extra", "probs_out": "--probs", "footprint_out": "--footprint-prob"}
    model: str = Field(description="Checkpoint (NAME.safetensors, NAME.json or stem).")
    image: str = Field(description="Image raster (its bands come first).")
    extras: list[str] = Field(
        default_factory=list,
        description="Extra raster on the image grid (e.g. POI maps); repeatable, in card order.",
    )
    mask: str | None = Field(
        None,
        description="Built-up mask on the image grid (`landforge builtup`); windows without "
        "mask pixels are skipped.",
    )
    out: str = Field("map.tif", description="Class map COG to write.")
    probs_out: str | None = Field(None, description="Write the class probabilities here.")
    footprint_out: str | None = Field(None, description="Write the footprint probability here.")


@register_stage("predict", PredictStage, command="predict")
def predict(cfg: PredictStage, ctx: StageContext) -> StageResult:
    """Predict a land-use / building-use map over a raster of any size."""
    from landforge.inference.predictor import predict_raster  # torch

    summary = predict_raster(
        cfg.model,
        cfg.image,
        cfg.out,
        PredictOptions.build(cfg),
        extras=cfg.extras,
        mask=cfg.mask,
        probs_out=cfg.probs_out,
        footprint_out=cfg.footprint_out,
    )
    skipped, km2 = summary["windows_skipped"], summary["skipped_km2"]
    area = f" ({km2:.3g} km²)" if km2 is not None else ""
    line = (
        f"wrote {Path(cfg.out)} ({summary['width']}x{summary['height']}, "
        f"{summary['windows']} windows"
        + (f", {skipped} skipped by mask{area}" if cfg.mask else "")
        + (f", {summary['blocks_reused']} blocks reused" if summary["blocks_reused"] else "")
        + f", {summary['seconds']:.1f} s)"
    )
    return StageResult(jsonable(summary), [line, json.dumps(summary["class_pixels"])])


# ---------------------------------------------------------------- built-up mask
class BuiltupStage(StageConfig, BuiltupOptions):
    """``landforge builtup --inputs A.tif --inputs B.tif --like IMAGE --out builtup.tif``."""

    input_fields = ("sources", "like")
    output_fields = ("out",)
    cli_flags = {"sources": "--inputs"}
    sources: list[str] = Field(
        min_length=1,
        description="Settlement raster (GHSL, WSF, WorldCover, ...), any CRS; repeatable.",
    )
    like: str = Field(description="Raster whose grid the mask is computed on.")
    out: str = Field("builtup.tif", description="Mask COG to write (uint8 0/1, nodata 255).")


@register_stage("builtup", BuiltupStage, command="builtup")
def builtup(cfg: BuiltupStage, ctx: StageContext) -> StageResult:
    """Built-up mask: union of settlement products resampled (max) onto an image grid."""
    from landforge.inference.builtup import builtup_mask  # rasterio

    summary = builtup_mask(cfg.sources, cfg.like, cfg.out, BuiltupOptions.build(cfg))
    total = max(summary["width"] * summary["height"], 1)
    lost = summary["unreadable"]
    line = (
        f"wrote {Path(cfg.out)} ({summary['width']}x{summary['height']}, "
        f"{summary['builtup_pixels'] / total:.1%} built-up, "
        f"{summary['nodata_pixels'] / total:.1%} without input data"
        + (f", {len(lost)} unreadable input(s) skipped" if lost else "")
        + ")"
    )
    return StageResult(jsonable(summary), [line])


# ---------------------------------------------------------------- vectorising
class VectorizeStage(StageConfig, VectorizeOptions):
    """``landforge vectorize MAP --out buildings.gpkg``: options in VectorizeOptions."""

    input_fields = ("map", "footprint_prob")
    output_fields = ("out",)
    cli_arguments = ("map",)
    map: str = Field(description="Class map written by `landforge predict`.")
    footprint_prob: str | None = Field(
        None, description="Footprint probability raster (gives a confidence column)."
    )
    out: str = Field("buildings.gpkg", description="Buildings to write (.gpkg or .parquet).")


@register_stage("vectorize", VectorizeStage, command="vectorize")
def vectorize(cfg: VectorizeStage, ctx: StageContext) -> StageResult:
    """Building polygons with majority use, class fractions and confidence from a class map."""
    from landforge.inference.vectorize import vectorize_buildings  # geopandas, rasterio
    from landforge.io.vector import write_vector  # geopandas

    buildings = vectorize_buildings(cfg.map, cfg.footprint_prob, VectorizeOptions.build(cfg))
    write_vector(buildings, cfg.out)
    by_use = buildings["use"].value_counts().to_dict() if len(buildings) else {}
    return StageResult(
        {"buildings": len(buildings), "by_use": by_use},
        [f"wrote {cfg.out} ({len(buildings)} buildings: {json.dumps(by_use)})"],
    )


# ---------------------------------------------------------------- parcels
_VECTOR_OUT = (".parquet", ".geoparquet", ".gpkg", ".geojson", ".json")


class AssignParcelsStage(StageConfig, AssignParcelsOptions):
    """``landforge parcels assign PARCELS --map MAP --out P``: options in AssignParcelsOptions."""

    input_fields = ("parcels", "map", "probs")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Parcels (.parquet or .gpkg).")
    map: str = Field(description="Class map from `landforge predict`.")
    probs: str | None = Field(
        None, description="Class probabilities on the map grid (gives the confidence)."
    )
    out: str = Field("parcel_landuse.gpkg", description="Output .parquet or .gpkg.")

    @field_validator("out")
    @classmethod
    def _vector_file(cls, value: str) -> str:
        if Path(value).suffix.lower() not in _VECTOR_OUT:
            raise ValueError(f"{value}: use a .parquet (GeoParquet) or .gpkg (GeoPackage) file")
        return value


@register_stage("assign_parcels", AssignParcelsStage, command="parcels assign")
def assign_parcels(cfg: AssignParcelsStage, ctx: StageContext) -> StageResult:
    """Majority class, class fractions and confidence of each parcel from a class map."""
    from landforge.inference.parcels import assign_parcels as assign  # geopandas, rasterio
    from landforge.io.vector import read_vector, write_vector  # geopandas

    assigned = assign(
        read_vector(cfg.parcels), cfg.map, AssignParcelsOptions.build(cfg), probs_path=cfg.probs
    )
    write_vector(assigned, cfg.out)
    by_class = assigned["class_name"].value_counts().to_dict()
    without = int(assigned["class_value"].isna().sum())
    return StageResult(
        {"parcels": len(assigned), "with_class": len(assigned) - without, "by_class": by_class},
        [f"wrote {Path(cfg.out)} ({len(assigned)} parcels, {without} without class: {by_class})"],
    )
