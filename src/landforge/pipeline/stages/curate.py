"""Stages: dataset curation (patch tiling, scene clustering, similar-patch search).

Options live in :mod:`landforge.curate.options`; the stage configs add the paths.
CLI commands: ``curate tiles``, ``curate cluster``, ``curate similar``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from landforge.config import StageConfig, StrList, none_word
from landforge.curate.options import ClusterOptions, SimilarOptions, TilesOptions
from landforge.errors import OptionError
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- tiles
class CurateTilesStage(StageConfig, TilesOptions):
    """``landforge curate tiles --image I --labels L --out patches.parquet``."""

    input_fields = ("images", "labels")
    output_fields = ("out",)
    cli_flags = {"images": "--image", "labels": "--labels"}
    images: list[str] = Field(description="Frame raster (repeatable: several frames, one CRS).")
    labels: list[str] = Field(
        default_factory=list,
        description="Label raster on the grid of each image, in the same order (repeatable).",
    )
    out: str = Field("patches.parquet", description="GeoParquet patch table to write.")

    @model_validator(mode="after")
    def _paired(self) -> CurateTilesStage:
        if not self.images:
            raise OptionError("images", "give at least one image")
        if self.labels and len(self.labels) != len(self.images):
            raise OptionError("labels", "give one label raster per image, or none")
        return self


@register_stage("curate_tiles", CurateTilesStage, command="curate tiles")
def curate_tiles(cfg: CurateTilesStage, ctx: StageContext) -> StageResult:
    """Cut frames into patches with label (first-level) and LBP texture histograms."""
    # domain functions import rasterio, skimage and geopandas: loaded when the stage runs
    from landforge.curate.tiles import tile_frames

    table = tile_frames(cfg.images, cfg.out, cfg.labels, TilesOptions.build(cfg))
    n_label = sum(c.startswith("label_") for c in table.columns)
    n_lbp = sum(c.startswith("lbp_") for c in table.columns)
    return StageResult(
        {"patches": len(table), "label_bins": n_label, "lbp_bins": n_lbp},
        [f"{cfg.out}: {len(table)} patches, {n_label} label bins, {n_lbp} LBP bins"],
    )


# ---------------------------------------------------------------- cluster
class CurateClusterStage(StageConfig, ClusterOptions):
    """``landforge curate cluster --tiles patches.parquet --out clusters.parquet``."""

    input_fields = ("tiles",)
    output_fields = ("out", "report", "sheet", "sample")
    cli_flags = {"tiles": "--tiles"}
    tiles: list[str] = Field(description="Patch table from `curate tiles` (repeatable).")
    out: str = Field("clusters.parquet", description="Patch table with a cluster column.")
    report: str = Field("clusters.json", description="JSON: bandwidth, sizes, mean features.")
    sheet: Annotated[str | None, BeforeValidator(none_word)] = Field(
        "clusters.png",
        description="Contact-sheet PNG of example patches per cluster ('none': skip).",
    )
    sample: str | None = Field(
        None, description="GeoParquet of the cluster-balanced sample (with sample_per_cluster)."
    )

    @model_validator(mode="after")
    def _sample(self) -> CurateClusterStage:
        if not self.tiles:
            raise OptionError("tiles", "give at least one patch table")
        if (self.sample is None) != (self.sample_per_cluster is None):
            raise OptionError("sample", "give sample and sample_per_cluster together")
        return self


@register_stage("curate_cluster", CurateClusterStage, command="curate cluster")
def curate_cluster(cfg: CurateClusterStage, ctx: StageContext) -> StageResult:
    """Mean-shift scene clusters of patches, a report, a contact sheet, a balanced sample."""
    from landforge.curate.cluster import cluster_patches

    rep = cluster_patches(
        cfg.tiles,
        cfg.out,
        ClusterOptions.build(cfg),
        report=cfg.report,
        sheet=cfg.sheet,
        sample=cfg.sample,
    )
    sizes = ", ".join(f"{k}:{n}" for k, n in list(rep["sizes"].items())[:10])
    lines = [
        f"{cfg.out}: {rep['n_patches']} patches in {rep['n_clusters']} clusters "
        f"({rep['features']} features, bandwidth {rep['bandwidth']:.3g}); sizes {sizes}"
    ]
    if "sample" in rep:
        lines.append(f"{cfg.sample}: {rep['sample']['n']} patches, balanced over clusters")
    return StageResult(
        {"patches": rep["n_patches"], "clusters": rep["n_clusters"], "bandwidth": rep["bandwidth"]},
        lines,
    )


# ---------------------------------------------------------------- similar
class CurateSimilarStage(StageConfig, SimilarOptions):
    """``landforge curate similar --tiles T --patches ID --out similar.parquet``."""

    input_fields = ("tiles", "image", "labels")
    output_fields = ("out",)
    cli_flags = {"tiles": "--tiles"}
    tiles: list[str] = Field(description="Patch table(s) to search (repeatable).")
    patches: StrList = Field(
        default_factory=list, description="Query patch ids inside the dataset: 'id1,id2'."
    )
    image: str | None = Field(None, description="A new image whose patches are the queries.")
    labels: str | None = Field(None, description="Label raster of the new image (label features).")
    out: str = Field("similar.parquet", description="GeoParquet: query, rank, neighbour, distance.")

    @model_validator(mode="after")
    def _query(self) -> CurateSimilarStage:
        if not self.tiles:
            raise OptionError("tiles", "give at least one patch table")
        if bool(self.patches) == (self.image is not None):
            raise OptionError("patches", "give query patch ids or a new image (one of them)")
        return self


@register_stage("curate_similar", CurateSimilarStage, command="curate similar")
def curate_similar(cfg: CurateSimilarStage, ctx: StageContext) -> StageResult:
    """The k most similar patches by label/texture histograms (our design)."""
    from landforge.curate.similar import similar_patches

    found = similar_patches(
        cfg.tiles,
        SimilarOptions.build(cfg),
        patches=cfg.patches,
        image=cfg.image,
        labels=cfg.labels,
        out=cfg.out,
    )
    lines = [f"{Path(cfg.out)}: {found['query_id'].nunique()} queries, k={cfg.k}"]
    for qid, group in list(found.groupby("query_id", sort=False))[:5]:
        near = ", ".join(
            f"{p} ({d:.3g})" for p, d in zip(group["patch_id"], group["distance"], strict=True)
        )
        lines.append(f"  {qid}: {near}")
    return StageResult({"queries": int(found["query_id"].nunique()), "k": cfg.k}, lines)
