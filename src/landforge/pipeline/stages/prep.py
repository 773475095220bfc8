"""Stages: image preparation (Retinex, kriging gap-fill, monthly composites, stretch, rules).

``landforge prep retinex``, ``prep gapfill``, ``prep monthly``, ``prep composite`` and
``prep reclassify``: the options are the models of :mod:`landforge.prep.options`; the
stage configs add the input and output paths.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.prep.options import (
    CompositeOptions,
    GapfillOptions,
    MonthlyOptions,
    ReclassifyOptions,
    RetinexOptions,
)

__all__ = [
    "PrepCompositeStage",
    "PrepGapfillStage",
    "PrepMonthlyStage",
    "PrepReclassifyStage",
    "PrepRetinexStage",
]


class _TifOutStage(StageConfig):
    """A prep stage writing one COG, ``out``: its field is checked to be a ``.tif``."""

    output_fields = ("out",)

    @field_validator("out", check_fields=False)
    @classmethod
    def _out_tif(cls, value: str) -> str:
        if Path(value).suffix.lower() not in (".tif", ".tiff"):
            raise ValueError(f"{value}: the output is a GeoTIFF (COG): give a .tif file")
        return value


# ---------------------------------------------------------------- retinex
class PrepRetinexStage(_TifOutStage, RetinexOptions):
    """``landforge prep retinex IN.tif --out OUT.tif``: options in RetinexOptions."""

    input_fields = ("image",)
    cli_arguments = ("image",)
    image: str = Field(description="Input image (GeoTIFF, any number of bands).")
    out: str = Field("retinex.tif", description="Output COG (.tif): same bands and data type.")


@register_stage("prep_retinex", PrepRetinexStage, command="prep retinex")
def prep_retinex(cfg: PrepRetinexStage, ctx: StageContext) -> StageResult:
    """Retinex: one luminance illumination field subtracted in the log domain (paper)."""
    # function-local: scipy/GDAL load only when the stage runs
    from landforge.prep.retinex import retinex

    summary = retinex(cfg.image, cfg.out, RetinexOptions.build(cfg))
    kind = "multi-scale (not in the paper)" if summary["multiscale"] else "single-scale"
    sigmas = ",".join(f"{s:g}" for s in summary["sigmas"])
    return StageResult(
        summary,
        [
            f"{kind} Retinex, sigma {sigmas} px, margin {summary['margin_px']} px, "
            f"{summary['windows']} windows; stretch from {summary['sample_pixels']} sampled "
            f"pixels -> {cfg.out}"
        ],
    )


# ---------------------------------------------------------------- gap-fill
class PrepGapfillStage(_TifOutStage, GapfillOptions):
    """``landforge prep gapfill IN.tif --mask CLOUD.tif --out OUT.tif``."""

    input_fields = ("image", "mask")
    cli_arguments = ("image",)
    image: str = Field(description="Input image (GeoTIFF).")
    mask: str = Field(description="Cloud/shadow mask on the image's grid: non-zero = fill.")
    out: str = Field("filled.tif", description="Output COG (.tif), the input's data type.")


@register_stage("prep_gapfill", PrepGapfillStage, command="prep gapfill")
def prep_gapfill(cfg: PrepGapfillStage, ctx: StageContext) -> StageResult:
    """Fill masked pixels by ordinary kriging in local neighbourhoods (or a baseline)."""
    # function-local: gstools/scipy load only when the stage runs
    from landforge.prep.gapfill import gapfill

    s = gapfill(cfg.image, cfg.mask, cfg.out, GapfillOptions.build(cfg))
    models = ", ".join(f"{k} {v}" for k, v in s["models"].items()) or "none"
    lines = [
        f"{s['gaps']} gaps, {s['gap_pixels']} pixels filled by {s['method']} "
        f"(fits per band: {models}) -> {cfg.out}"
    ]
    if s["unfilled_pixels"]:
        lines.append(f"{s['unfilled_pixels']} pixels without a valid neighbour left unfilled")
    return StageResult(s, lines)


# ---------------------------------------------------------------- monthly composites
class PrepMonthlyStage(StageConfig, MonthlyOptions):
    """``landforge prep monthly SCENES_DIR --out OUT``: options in MonthlyOptions."""

    input_fields = ("scenes", "masks")
    output_fields = ("out",)
    cli_arguments = ("scenes",)
    scenes: str = Field(description="Folder of dated scenes (.tif; date in name or tags).")
    out: str = Field(
        "monthly",
        description="Output folder (one COG per month), or the .tif of the stack.",
    )

    def outputs(self) -> list[str]:
        """The folder of months, or the stack and its count file."""
        if self.stack:
            return [self.out, str(Path(self.out).with_suffix(".count.tif"))]
        return [self.out]


@register_stage("prep_monthly", PrepMonthlyStage, command="prep monthly")
def prep_monthly(cfg: PrepMonthlyStage, ctx: StageContext) -> StageResult:
    """Per-month means of clear observations with a count band (FUSU A.2)."""
    # function-local: GDAL loads only when the stage runs
    from landforge.prep.monthly import monthly_composites

    s = monthly_composites(cfg.scenes, cfg.out, MonthlyOptions.build(cfg))
    lines = [
        f"{s['scenes']} scenes -> {len(s['months'])} months "
        f"({s['months'][0]} .. {s['months'][-1]}), bands {', '.join(s['bands'])} -> {cfg.out}"
    ]
    if s["months_without_clear"]:
        lines.append(
            f"{len(s['months_without_clear'])} months without a clear observation "
            f"(all nodata): {', '.join(s['months_without_clear'])}"
        )
    return StageResult(s, lines)


# ---------------------------------------------------------------- composite
class PrepCompositeStage(_TifOutStage, CompositeOptions):
    """``landforge prep composite IN.tif --bands 4,3,2 --out FC.tif``."""

    input_fields = ("image",)
    cli_arguments = ("image",)
    image: str = Field(description="Input image (GeoTIFF).")
    out: str = Field("composite.tif", description="Output uint8 COG (.tif), nodata 0.")


@register_stage("prep_composite", PrepCompositeStage, command="prep composite")
def prep_composite(cfg: PrepCompositeStage, ctx: StageContext) -> StageResult:
    """Bands in the given order, each stretched p-low..p-high -> 1..255 (global sample)."""
    # function-local: GDAL loads only when the stage runs
    from landforge.prep.composite import composite

    s = composite(cfg.image, cfg.out, CompositeOptions.build(cfg))
    limits = ", ".join(
        f"{n} {lim['low']:.4g}..{lim['high']:.4g}"
        for n, lim in zip(s["names"], s["limits"], strict=True)
    )
    return StageResult(s, [f"uint8 composite ({limits}) -> {cfg.out}"])


# ---------------------------------------------------------------- reclassify
class PrepReclassifyStage(_TifOutStage, ReclassifyOptions):
    """``landforge prep reclassify MAP.tif --boundary urban.gpkg --rules rules.yaml``."""

    input_fields = ("map", "boundary", "rules")
    cli_arguments = ("map",)
    map: str = Field(description="Class map (single band, label values of the taxonomy).")
    boundary: str = Field(description="Urban boundary polygons (gpkg, parquet, geojson).")
    out: str = Field("reclassified.tif", description="Output COG (.tif).")


@register_stage("prep_reclassify", PrepReclassifyStage, command="prep reclassify")
def prep_reclassify(cfg: PrepReclassifyStage, ctx: StageContext) -> StageResult:
    """Change classes inside/outside the boundary by the rules (UBGG: grass -> farmland)."""
    # function-local: geopandas/GDAL load only when the stage runs
    from landforge.prep.reclassify import reclassify

    s = reclassify(cfg.map, cfg.boundary, cfg.out, ReclassifyOptions.build(cfg))
    lines = [f"{r['rule']}: {r['pixels']} pixels" for r in s["rules"]]
    lines.append(f"-> {cfg.out}")
    return StageResult(s, lines)
