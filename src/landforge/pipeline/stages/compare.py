"""Stage: product comparison (``landforge compare``), options in CompareOptions."""

from __future__ import annotations

from pydantic import Field

from landforge.config import StageConfig
from landforge.evaluation.compare_options import CompareOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage


class CompareStage(StageConfig, CompareOptions):
    """``landforge compare MAP --product P --legend esa_worldcover_ubgg --out c.json``."""

    input_fields = ("map", "product")
    output_fields = ("out", "diff")
    cli_arguments = ("map",)
    map: str = Field(description="The landforge class map (the grid of the comparison).")
    product: str = Field(description="External land-cover raster (the reference).")
    out: str = Field("compare.json", description="Metrics JSON to write.")
    diff: str | None = Field(
        "compare_diff.tif",
        description="Difference-map COG: 0 nodata, 1 agree, 2 under, 3 over (focus class).",
    )


@register_stage("compare", CompareStage, command="compare")
def compare(cfg: CompareStage, ctx: StageContext) -> StageResult:
    """Reclassify an external land-cover product and compare it with a landforge map."""
    # domain function imports rasterio: loaded when the stage runs
    from landforge.evaluation.compare import compare_products

    m = compare_products(
        cfg.map, cfg.product, CompareOptions.build(cfg), out=cfg.out, diff=cfg.diff
    )
    f = m["focus"]
    share = f["agree_fraction"]
    lines = [
        f"{cfg.out}: OA {m['overall_accuracy']:.3f}, kappa {m['kappa']:.3f} over "
        f"{m['n']} pixels ({cfg.product} as reference)",
        f"{cfg.focus}: agree {f['agree']}, under {f['under']}, over {f['over']} pixels"
        + (f" ({share:.1%} agree)" if share is not None else "")
        + (f"; difference map {cfg.diff}" if cfg.diff else ""),
    ]
    return StageResult(
        {"overall_accuracy": m["overall_accuracy"], "kappa": m["kappa"], "agree": share}, lines
    )
