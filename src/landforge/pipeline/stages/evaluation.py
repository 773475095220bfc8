"""Stages: evaluation (class maps and tables, roads) and the report of a run."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from landforge.config import StageConfig
from landforge.errors import OptionError
from landforge.evaluation.options import EvaluateOptions, EvaluateRoadsOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage

_HEADLINE = ("overall_accuracy", "kappa", "miou", "fwiou")


# ---------------------------------------------------------------- evaluation
class EvaluateStage(StageConfig, EvaluateOptions):
    """``landforge evaluate --pred P --truth T``: options in EvaluateOptions."""

    input_fields = (
        "pred",
        "truth",
        "mask",
        "split_blocks",
        "buildings",
        "pred_buildings",
        "building_probs",
    )
    cli_flags = {"out": "--out -o"}
    output_fields = ("out",)
    pred: str = Field(description="Predicted class raster or table.")
    truth: str = Field(description="Truth class raster or table.")
    mask: str | None = Field(
        None,
        description="Raster on the truth's grid: evaluate only where it is > 0 "
        "(table rows: by their representative point).",
    )
    split_blocks: str | None = Field(
        None,
        description="Polygons with a 'split' column (a chip store's split_blocks.gpkg): "
        "evaluate only inside the blocks of split.",
    )
    buildings: str | None = Field(
        None,
        description="True building footprints with use_col: add building-level scores "
        "(majority of the predicted use pixels per footprint).",
    )
    pred_buildings: str | None = Field(
        None,
        description="Predicted footprints (e.g. vectorize output) matched to buildings "
        "at IoU >= match_iou and scored too.",
    )
    building_probs: str | None = Field(
        None,
        description="Class probabilities (predict --probs) on the map's grid: also give "
        "each true building the use with the highest mean probability inside it "
        "(soft vote; every building gets a use).",
    )
    out: str | None = Field(None, description="Metrics JSON to write.")
    plots: bool = Field(
        False, description="Also write <out>.confusion.png and <out>.distribution.png."
    )

    @model_validator(mode="after")
    def _plots_need_out(self) -> EvaluateStage:
        if self.plots and self.out is None:
            raise OptionError("plots", "needs out to know where to write the PNGs")
        return self


@register_stage("evaluate", EvaluateStage, command="evaluate")
def evaluate(cfg: EvaluateStage, ctx: StageContext) -> StageResult:
    """Accuracy of a prediction: OA, kappa, mIoU, FWIoU, per-class F1/IoU, majority baseline."""
    # domain functions import here: they pull in rasterio, pandas, matplotlib
    from landforge.evaluation.evaluate import evaluate_prediction
    from landforge.evaluation.text import metrics_lines

    metrics = evaluate_prediction(
        cfg.pred,
        cfg.truth,
        EvaluateOptions.build(cfg),
        mask=cfg.mask,
        split_blocks=cfg.split_blocks,
        out=cfg.out,
        buildings=cfg.buildings,
        pred_buildings=cfg.pred_buildings,
        building_probs=cfg.building_probs,
    )
    if cfg.plots and cfg.out is not None:
        from landforge.evaluation import plots

        stem = Path(cfg.out).with_suffix("")
        plots.plot_confusion_matrix(metrics, f"{stem}.confusion.png")
        plots.plot_class_distribution(metrics, f"{stem}.distribution.png")
    return StageResult(
        {k: metrics[k] for k in _HEADLINE if k in metrics}, metrics_lines(metrics, cfg.out)
    )


class EvaluateRoadsStage(StageConfig, EvaluateRoadsOptions):
    """``landforge evaluate-roads --pred P --lines L``: options in EvaluateRoadsOptions."""

    input_fields = ("pred", "lines", "truth_mask")
    cli_flags = {"out": "--out -o"}
    output_fields = ("out",)
    pred: str = Field(description="Predicted road raster (mask or class map).")
    lines: str | None = Field(
        None, description="Reference road centre lines (any vector format, any CRS)."
    )
    truth_mask: str | None = Field(
        None, description="Reference road mask on the same grid (adds pixel IoU)."
    )
    out: str | None = Field(None, description="Metrics JSON to write.")


@register_stage("evaluate_roads", EvaluateRoadsStage, command="evaluate-roads")
def evaluate_roads(cfg: EvaluateRoadsStage, ctx: StageContext) -> StageResult:
    """Road completeness / correctness / quality on centre lines (buffer tolerance).

    Needs reference centre lines (``lines``) or a reference road mask (``truth_mask``).
    """
    from landforge.evaluation.roads import evaluate_roads as score_roads
    from landforge.evaluation.text import roads_line

    m = score_roads(
        cfg.pred, cfg.lines, cfg.truth_mask, EvaluateRoadsOptions.build(cfg), out=cfg.out
    )
    keys = ("completeness", "correctness", "quality", "pixel_iou", "truth_length_m")
    return StageResult({k: m[k] for k in keys if k in m}, [roads_line(m)])


# ---------------------------------------------------------------- report
class ReportStage(StageConfig):
    """``landforge report RUN_DIR``: one self-contained HTML file per run."""

    input_fields = ("sources",)
    output_fields = ("out",)
    cli_arguments = ("run_dir",)
    cli_flags = {"out": "--out -o"}
    run_dir: str | None = Field(
        None,
        description="Run directory to report (with or without manifest.json); "
        "default: the pipeline's run directory (the working directory from the CLI).",
    )
    out: str | None = Field(None, description="HTML file to write (default RUN_DIR/report.html).")
    sources: list[str] = Field(
        default_factory=list,
        description="Files the report summarises: a pipeline re-runs the report when they change.",
    )
    map_pixels: int = Field(
        1_000_000,
        ge=0,
        description="Pixels per raster layer of the interactive map (larger rasters are "
        "downsampled, with a note); 0: no map section.",
    )
    map_features: int = Field(
        5_000,
        ge=1,
        description="Features per vector layer of the map (the rest are left out, with a note).",
    )


@register_stage("report", ReportStage, command="report")
def report(cfg: ReportStage, ctx: StageContext) -> StageResult:
    """Self-contained HTML report of a run: stages, metrics, confusion matrices, maps."""
    from landforge.evaluation.report import build_report

    run_dir = Path(cfg.run_dir) if cfg.run_dir is not None else ctx.run_dir
    if not run_dir.is_absolute() and not ctx.cli:  # a pipeline's paths: its run directory
        run_dir = ctx.run_dir / run_dir
    path = build_report(
        run_dir, out=cfg.out, map_pixels=cfg.map_pixels, map_features=cfg.map_features
    )
    return StageResult({"report": str(Path(path).name)}, [f"report written to {path}"])
