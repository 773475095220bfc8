"""Built-in pipeline stages: thin adapters from a stage config to the plain functions.

Each stage reads files and writes files in open formats, so any of them can also be run
alone from the CLI or a notebook; the adapters only translate config fields into
function arguments and report a few key numbers for the manifest and the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator

from landforge.config import StageConfig
from landforge.pipeline.runner import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- synthetic city
class SynthCityStage(StageConfig):
    output_fields = ("out",)
    out: str = "city"
    seed: int = 0
    size_m: float = 3000.0
    gsd: float = 0.5
    options: dict[str, Any] = {}


@register_stage("synth_city", SynthCityStage)
def synth_city(cfg: SynthCityStage, ctx: StageContext) -> StageResult:
    """Generate the seeded synthetic city (roads, parcels, buildings, POIs, imagery)."""
    from landforge.synth import make_city

    info = make_city(cfg.out, seed=cfg.seed, size_m=cfg.size_m, gsd=cfg.gsd, **cfg.options)
    stats = getattr(info, "stats", None)
    return StageResult(dict(stats) if isinstance(stats, dict) else {})


# ---------------------------------------------------------------- parcels
class ParcelsStage(StageConfig):
    input_fields = ("roads", "boundary")
    output_fields = ("out",)
    roads: str
    boundary: str | None = None
    out: str = "parcels.parquet"
    clean_m: float = 5.0
    widths: dict[str, float] = {}


@register_stage("parcels", ParcelsStage)
def parcels(cfg: ParcelsStage, ctx: StageContext) -> StageResult:
    """Cut parcels from the road network (road buffers by class, +-5 m opening)."""
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels import ParcelConfig, generate_parcels

    roads = read_vector(cfg.roads)
    boundary = read_vector(cfg.boundary) if cfg.boundary else None
    pcfg = ParcelConfig(clean_m=cfg.clean_m, widths=cfg.widths or None)
    result = generate_parcels(roads, boundary, pcfg)
    write_vector(result, cfg.out)
    return StageResult(
        {
            "parcels": len(result),
            "median_area_m2": float(result["area_m2"].median()) if len(result) else 0.0,
            "total_area_km2": float(result["area_m2"].sum() / 1e6),
        }
    )


# ---------------------------------------------------------------- POI maps
class PoiMapsStage(StageConfig):
    input_fields = ("poi", "like")
    output_fields = ("out",)
    poi: str
    like: str
    taxonomy: str = "gbt35648_rci"
    category_col: str = "category"
    dmax: dict[str, float]
    out: str = "poi.tif"


@register_stage("poi_maps", PoiMapsStage)
def poi_maps(cfg: PoiMapsStage, ctx: StageContext) -> StageResult:
    """POI distance-decay probability maps on the image grid."""
    from landforge.features.poi_maps import write_poi_probability_maps
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid
    from landforge.taxonomy import load_mapping

    mapping = load_mapping(cfg.taxonomy)
    pois = read_pois(cfg.poi, category_col=cfg.category_col)
    grid = read_grid(cfg.like)
    write_poi_probability_maps(
        cfg.out, pois, grid, cfg.dmax, mapping=mapping, category_col=cfg.category_col
    )
    return StageResult({"pois": len(pois), "classes": list(cfg.dmax)})


# ---------------------------------------------------------------- chips
class ChipsStage(StageConfig):
    input_fields = ("image", "extras", "labels")
    output_fields = ("out",)
    image: str
    bands: list[int] | None = None
    extras: list[str] = []
    labels: dict[str, str]
    size: int = 256
    stride: int | None = None
    split: dict[str, float] | None = None
    seed: int = 0
    out: str = "chips"


@register_stage("chips", ChipsStage)
def chips(cfg: ChipsStage, ctx: StageContext) -> StageResult:
    """Cut the image (+ extra rasters) and label rasters into a chip store."""
    import geopandas as gpd

    from landforge.datasets.chips import build_chips

    build_chips(
        cfg.image,
        cfg.labels,
        cfg.out,
        extras=cfg.extras,
        bands=cfg.bands,
        size=cfg.size,
        stride=cfg.stride,
        split=cfg.split,
        seed=cfg.seed,
    )
    index = gpd.read_parquet(Path(cfg.out) / "index.parquet")
    counts = index["split"].value_counts().to_dict() if "split" in index else {}
    return StageResult({"chips": len(index), **{f"chips_{k}": int(v) for k, v in counts.items()}})


# ---------------------------------------------------------------- training
class TrainStage(StageConfig):
    input_fields = ("chips",)
    output_fields = ("out",)
    chips: str
    out: str = "model"
    max_minutes: float | None = None
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check_options(self) -> TrainStage:
        from landforge.training.config import TrainConfig

        TrainConfig.model_validate(self._train_fields())
        return self

    def _train_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {**self.options, "chips": self.chips, "out": self.out}
        if self.max_minutes is not None:
            fields["max_minutes"] = self.max_minutes
        return fields


@register_stage("train", TrainStage)
def train(cfg: TrainStage, ctx: StageContext) -> StageResult:
    """Train a model on a chip store (Lightning); writes safetensors + model card."""
    import json

    from landforge.training.config import TrainConfig
    from landforge.training.train import train as train_model

    weights = train_model(TrainConfig.model_validate(cfg._train_fields()))
    card = json.loads(Path(weights).with_suffix(".json").read_text())
    return StageResult({"model": card.get("model"), **card.get("metrics", {})})


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
    return StageResult(_jsonable(summary))


class VectorizeStage(StageConfig):
    input_fields = ("map", "footprint_prob")
    output_fields = ("out",)
    map: str
    footprint_prob: str | None = None
    out: str = "buildings.gpkg"
    simplify_m: float = 0.5
    min_area_m2: float = 4.0


@register_stage("vectorize", VectorizeStage)
def vectorize(cfg: VectorizeStage, ctx: StageContext) -> StageResult:
    """Building polygons with use, class fractions and confidence."""
    from landforge.inference.vectorize import vectorize_buildings
    from landforge.io.vector import write_vector

    buildings = vectorize_buildings(
        cfg.map,
        footprint_prob=cfg.footprint_prob,
        simplify_m=cfg.simplify_m,
        min_area_m2=cfg.min_area_m2,
    )
    write_vector(buildings, cfg.out)
    return StageResult({"buildings": len(buildings)})


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


# ---------------------------------------------------------------- evaluation, report
class EvaluateStage(StageConfig):
    input_fields = ("pred", "truth")
    output_fields = ("out",)
    pred: str
    truth: str
    taxonomy: str | None = None
    classes: dict[int, str] | None = None  # explicit {value: name}, e.g. with background
    ignore: list[int] = []
    pred_col: str | None = None
    truth_col: str | None = None
    key: str | None = None
    out: str = "metrics.json"


@register_stage("evaluate", EvaluateStage)
def evaluate(cfg: EvaluateStage, ctx: StageContext) -> StageResult:
    """Accuracy metrics of a prediction (raster or table) against the truth."""
    from landforge.evaluation.evaluate import (
        evaluate_rasters,
        evaluate_tables,
        write_metrics,
    )

    if cfg.pred_col or cfg.truth_col:
        metrics = evaluate_tables(
            cfg.pred, cfg.truth, pred_col=cfg.pred_col, truth_col=cfg.truth_col, key=cfg.key
        )
    else:
        classes = cfg.classes if cfg.classes is not None else cfg.taxonomy
        metrics = evaluate_rasters(cfg.pred, cfg.truth, classes=classes, ignore=cfg.ignore)
    write_metrics(metrics, cfg.out)
    keys = ("overall_accuracy", "kappa", "miou", "fwiou")
    return StageResult({k: metrics[k] for k in keys if k in metrics})


class ReportStage(StageConfig):
    input_fields = ("sources",)
    output_fields = ("out",)
    sources: list[str] = []  # files the report summarises: re-run when they change
    out: str = "report.html"


@register_stage("report", ReportStage)
def report(cfg: ReportStage, ctx: StageContext) -> StageResult:
    """Self-contained HTML report of the run directory."""
    from landforge.evaluation.report import build_report

    path = build_report(ctx.run_dir, out=cfg.out)
    return StageResult({"report": str(Path(path).name)})


def _jsonable(summary: Any) -> dict[str, Any]:
    if not isinstance(summary, dict):
        return {}
    out = {}
    for k, v in summary.items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        elif hasattr(v, "item"):
            out[k] = v.item()
        else:
            out[k] = str(v)
    return out
