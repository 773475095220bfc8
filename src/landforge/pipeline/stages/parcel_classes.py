"""Stages of the parcel classifier: samples, training, class probabilities.

``parcels samples`` (image patches, POI features, population series per parcel),
``parcels train`` (the ``parcel_fusion`` model on the samples, any subset of its
branches; spatial-block split, test metrics) and ``parcels predict-classes`` (one row per parcel
with ``pred`` and ``prob_<class>``: the input of the grading). Options live in
:mod:`landforge.parcels.sample_options` and :mod:`landforge.training.parcel_options`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from landforge.config import StageConfig
from landforge.errors import require_file
from landforge.parcels.sample_options import SampleOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.training.parcel_options import ParcelPredictOptions, ParcelTrainOptions


# ---------------------------------------------------------------- samples
class ParcelSamplesStage(StageConfig, SampleOptions):
    """``landforge parcels samples PARCELS [--image I] [--poi-features F] [--population P]``."""

    input_fields = ("parcels", "image", "poi_features", "population")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Parcels (.gpkg or .parquet) with an id column and a CRS.")
    image: str | None = Field(None, description="Imagery (GeoTIFF, projected CRS) for patches.")
    poi_features: str | None = Field(
        None, description="POI features per parcel from `landforge parcels features`."
    )
    population: str | None = Field(
        None,
        description="Population: a table keyed by parcel id (.parquet/.csv; long: id, hour, "
        "density[, day]; or wide: one column per hour) or a folder of hourly rasters.",
    )
    out: str = Field("parcel_samples", description="Output directory.")


@register_stage("parcel_samples", ParcelSamplesStage, command="parcels samples")
def parcel_samples(cfg: ParcelSamplesStage, ctx: StageContext) -> StageResult:
    """Per-parcel multi-source samples; a missing modality is flagged, the row kept."""
    # domain functions import geopandas/rasterio: imported here, not at CLI start-up
    import pandas as pd

    from landforge.errors import InputError
    from landforge.io.vector import read_vector
    from landforge.parcels.samples import build_parcel_samples, write_parcel_samples

    o = SampleOptions.build(cfg)
    parcels = read_vector(require_file(cfg.parcels, "parcels file"))
    poi = None
    if cfg.poi_features is not None:
        path = require_file(cfg.poi_features, "POI features")
        try:
            poi = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read POI features ({str(exc)[:160]})") from None
    if cfg.image is not None:
        require_file(cfg.image, "image")
    samples = build_parcel_samples(
        parcels,
        image=cfg.image,
        poi_features=poi,
        population=cfg.population,
        opts=o,
        sources={"parcels": cfg.parcels, "poi": str(cfg.poi_features)},
    )
    write_parcel_samples(samples, cfg.out)
    f = samples.frame
    summary = {
        "parcels": len(f),
        "patches": int(len(samples.patches)),
        "with_image": int(f["has_image"].sum()),
        "with_poi": int(f["has_poi"].sum()),
        "with_population": int(f["has_population"].sum()),
        "population_matched": int(samples.meta.get("population_matched", 0)),
        "poi_features": int(samples.poi.shape[1]),
    }
    line = (
        f"{len(f)} parcels: {summary['with_image']} with image ({summary['patches']} patches), "
        f"{summary['with_poi']} with POIs, {summary['with_population']} with population "
        f"-> {cfg.out}"
    )
    return StageResult(summary, [line])


# ---------------------------------------------------------------- training
class ParcelTrainStage(StageConfig, ParcelTrainOptions):
    """``landforge parcels train SAMPLES --out RUN``."""

    input_fields = ("samples",)
    output_fields = ("out",)
    cli_arguments = ("samples",)
    cli_hidden = ("backbone_kwargs",)
    samples: str = Field(description="Samples directory from `landforge parcels samples`.")
    out: str = Field("parcel_model", description="Output directory (model, split, metrics).")


@register_stage("parcel_train", ParcelTrainStage, command="parcels train")
def parcel_train(cfg: ParcelTrainStage, ctx: StageContext) -> StageResult:
    """Train the parcel classifier; test-split OA/kappa beside the majority baseline."""
    # domain function imported here: it pulls in torch and Lightning
    from landforge.training.parcel_train import train_parcel_classifier

    result = train_parcel_classifier(cfg.samples, cfg.out, ParcelTrainOptions.build(cfg))
    test = result.metrics.get("test")
    sizes = result.metrics["split_sizes"]
    summary: dict[str, object] = {"classes": result.classes, **sizes}
    lines = [f"{result.checkpoint} (+ model.json, split.parquet, metrics.json)"]
    if test:
        m, base = test["metrics"], test["majority_baseline"]
        summary.update(oa=m["overall_accuracy"], kappa=m["kappa"], baseline_oa=base["oa"])
        lines.append(
            f"test ({test['n']} parcels): OA {m['overall_accuracy']:.3f}, kappa "
            f"{m['kappa']:.3f}; majority baseline ({base['class']}) OA {base['oa']:.3f}"
        )
    else:
        lines.append("no labelled parcel in the test split: no test metrics")
    return StageResult(summary, lines)


# ---------------------------------------------------------------- prediction
class ParcelPredictStage(StageConfig, ParcelPredictOptions):
    """``landforge parcels predict-classes SAMPLES --model RUN/model --out P.parquet``."""

    input_fields = ("samples", "model")
    output_fields = ("out",)
    cli_arguments = ("samples",)
    samples: str = Field(description="Samples directory from `landforge parcels samples`.")
    model: str = Field(description="Checkpoint of `parcels train` (RUN/model.safetensors).")
    out: str = Field("parcel_classes.parquet", description="Output GeoParquet, one row per parcel.")

    @field_validator("out")
    @classmethod
    def _parquet(cls, value: str) -> str:
        if Path(value).suffix.lower() != ".parquet":
            raise ValueError(f"{value}: predictions are written as GeoParquet (.parquet)")
        return value


@register_stage("parcel_predict_classes", ParcelPredictStage, command="parcels predict-classes")
def parcel_predict_classes(cfg: ParcelPredictStage, ctx: StageContext) -> StageResult:
    """Class probabilities per parcel (in-sample, or out-of-fold with ``folds``)."""
    # domain function imported here: it pulls in torch and Lightning
    from landforge.io.atomic import atomic_path
    from landforge.training.parcel_train import predict_classes

    frame = predict_classes(cfg.samples, cfg.model, ParcelPredictOptions.build(cfg))
    with atomic_path(cfg.out) as tmp:
        frame.to_parquet(tmp, index=False)
    known = frame["label"].notna().to_numpy()
    acc = float((frame["pred"][known] == frame["label"][known]).mean()) if known.any() else None
    how = f"out-of-fold ({cfg.folds} folds)" if cfg.folds else "in-sample where trained"
    text = (
        f"accuracy {acc:.3f} over {int(known.sum())} labelled" if acc is not None else "no labels"
    )
    return StageResult(
        {"parcels": len(frame), "labelled": int(known.sum()), "accuracy": acc, "folds": cfg.folds},
        [f"{len(frame)} parcels, {how}: {text} -> {cfg.out}"],
    )
