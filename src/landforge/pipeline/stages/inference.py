"""Stages: large-area prediction, vectorising, parcel assignment."""

from __future__ import annotations

import json

from pydantic import Field

from landforge.config import StageConfig, jsonable
from landforge.inference.options import VectorizeOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- prediction
class PredictStage(StageConfig):
    input_fields = ("model", "image", "extras", "mask")
    output_fields = ("out", "footprint_out", "probs_out")
    model: str
    image: str
    bands: list[int] | None = None
    extras: list[str] = []
    mask: str | None = None
    out: str = "map.tif"
    footprint_out: str | None = None
    probs_out: str | None = None
    window: int = 1024
    overlap: int = 128
    tta: str | None = None
    batch: int = 4
    blend: bool = False
    block_windows: int = 4
    device: str = "cpu"
    # None: in-process; "local": a local Dask cluster of `workers`; or "tcp://host:port"
    scheduler: str | None = None
    workers: int = 2
    # an interrupted stage continues from its finished blocks (the run key checks that
    # model, options and inputs are unchanged; other blocks are recomputed)
    resume: bool = True


@register_stage("predict", PredictStage)
def predict(cfg: PredictStage, ctx: StageContext) -> StageResult:
    """Sliding-window prediction with centre crops to a COG class map."""
    from landforge.inference.predictor import predict_raster

    summary = predict_raster(
        cfg.model,
        cfg.image,
        cfg.out,
        extras=cfg.extras,
        window=cfg.window,
        overlap=cfg.overlap,
        tta=cfg.tta,
        batch=cfg.batch,
        mask=cfg.mask,
        probs_out=cfg.probs_out,
        footprint_out=cfg.footprint_out,
        bands=cfg.bands,
        blend=cfg.blend,
        block_windows=cfg.block_windows,
        device=cfg.device,
        scheduler=cfg.scheduler,
        workers=cfg.workers,
        resume=cfg.resume,
    )
    return StageResult(jsonable(summary))


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
    from landforge.inference.vectorize import vectorize_buildings
    from landforge.io.vector import write_vector

    buildings = vectorize_buildings(cfg.map, cfg.footprint_prob, VectorizeOptions.build(cfg))
    write_vector(buildings, cfg.out)
    by_use = buildings["use"].value_counts().to_dict() if len(buildings) else {}
    return StageResult(
        {"buildings": len(buildings), "by_use": by_use},
        [f"wrote {cfg.out} ({len(buildings)} buildings: {json.dumps(by_use)})"],
    )


class AssignParcelsStage(StageConfig):
    input_fields = ("parcels", "map", "probs")
    output_fields = ("out",)
    parcels: str
    map: str
    probs: str | None = None
    taxonomy: str | None = "rci"
    out: str = "parcel_landuse.gpkg"


@register_stage("assign_parcels", AssignParcelsStage)
def assign_parcels(cfg: AssignParcelsStage, ctx: StageContext) -> StageResult:
    """Give each parcel its majority map class, class fractions and confidence."""
    from landforge.inference.parcels import assign_parcels as assign
    from landforge.io.vector import read_vector, write_vector

    class_names = None
    if cfg.taxonomy:
        from landforge.taxonomy import load_classes

        class_names = load_classes(cfg.taxonomy).label_values()
    result = assign(
        read_vector(cfg.parcels), cfg.map, class_names=class_names, probs_path=cfg.probs
    )
    write_vector(result, cfg.out)
    labelled = int(result["class_name"].notna().sum()) if "class_name" in result else 0
    return StageResult({"parcels": len(result), "with_class": labelled})
