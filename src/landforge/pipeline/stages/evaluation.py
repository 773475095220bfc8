"""Stages: evaluation and the report."""

from __future__ import annotations

from pathlib import Path

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


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
