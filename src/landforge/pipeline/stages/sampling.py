"""Stages: sample designs: LSI sample sites, Poisson-disk patches, blocked splits.

``landforge sample-design``, ``landforge patches PARCELS`` and ``landforge split
FEATURES``: the options are :class:`~landforge.parcels.options.SampleDesignOptions`,
:class:`~landforge.parcels.options.PatchOptions` and
:class:`~landforge.datasets.split_options.SplitOptions`; the stage configs add the
input and output paths.
"""

from __future__ import annotations

from pydantic import Field

from landforge.config import StageConfig
from landforge.datasets.split_options import SplitOptions
from landforge.parcels.options import PatchOptions, SampleDesignOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.pipeline.stages.parcels import VectorOut, side_file

__all__ = ["PatchesStage", "SampleDesignStage", "SplitStage"]


# ---------------------------------------------------------------- LSI sample design
class SampleDesignStage(StageConfig, SampleDesignOptions):
    """``landforge sample-design --landcover LC --regions R --n N --unit-size-m U``.

    Writes the sites and ``<out stem>.allocation.csv`` beside them.
    """

    input_fields = ("landcover", "regions")
    output_fields = ("out",)
    landcover: str = Field(description="Land-cover class raster.")
    regions: str = Field(description="Region polygons (vector file).")
    out: VectorOut = Field(
        "sites.gpkg",
        description="Output sites (.gpkg or .parquet); the allocation goes to "
        "<out stem>.allocation.csv.",
    )

    def outputs(self) -> list[str]:
        """The sites and the allocation table."""
        return [*super().outputs(), side_file(self.out, ".allocation.csv")]


@register_stage("sample_design", SampleDesignStage, command="sample-design")
def sample_design(cfg: SampleDesignStage, ctx: StageContext) -> StageResult:
    """LSI-stratified sample sites on a land-cover raster (Chen et al. 2016)."""
    # function-local: geopandas/rasterio load only when the stage runs
    from landforge.errors import require_file
    from landforge.io.atomic import atomic_path
    from landforge.io.vector import read_vector, require_column, write_vector
    from landforge.parcels.lsi import design_samples

    require_file(cfg.landcover, "raster")
    regions = read_vector(cfg.regions)
    if cfg.region_col is not None:
        require_column(regions, cfg.region_col, cfg.regions, option="region_col")
    design = design_samples(cfg.landcover, regions, SampleDesignOptions.build(cfg))
    write_vector(design.sites, cfg.out)
    csv = side_file(cfg.out, ".allocation.csv")
    with atomic_path(csv) as tmp:
        design.allocation.to_csv(tmp, index=False)
    per_region = design.allocation.groupby("region", sort=False)["n"].sum()
    line = (
        f"{len(design.sites)} sites in {len(per_region)} regions "
        f"({', '.join(f'{k}: {v}' for k, v in per_region.items())}) -> {cfg.out} "
        f"(allocation {csv})"
    )
    summary = {"sites": len(design.sites), "regions": len(per_region)}
    return StageResult(summary, [line])


# ---------------------------------------------------------------- patches
class PatchesStage(StageConfig, PatchOptions):
    """``landforge patches PARCELS --size-m S --out P``: options in PatchOptions."""

    input_fields = ("parcels",)
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    cli_flags = {"patch_size_m": "--size-m"}
    parcels: str = Field(description="Parcel polygons (.parquet or .gpkg).")
    squares: bool = Field(False, description="Write the patch squares instead of their centres.")
    out: VectorOut = Field("patches.gpkg", description="Output .gpkg or .parquet.")


@register_stage("patches", PatchesStage, command="patches")
def patches(cfg: PatchesStage, ctx: StageContext) -> StageResult:
    """Poisson-disk patch centres inside parcels (at least one per parcel)."""
    # function-local: geopandas loads only when the stage runs
    from landforge.io.vector import read_vector, require_column, write_vector
    from landforge.parcels.poisson import patch_squares, poisson_patches

    parcels = read_vector(cfg.parcels)
    if cfg.id_col != "parcel_id":  # parcel_id may be absent: then the row number
        require_column(parcels, cfg.id_col, cfg.parcels, option="id_col")
    found = poisson_patches(parcels, PatchOptions.build(cfg))
    written = found
    if cfg.squares:
        written = found.set_geometry(patch_squares(found, cfg.patch_size_m).values)
    write_vector(written, cfg.out)
    n_fallback = int(found["fallback"].sum())
    n_parcels = int(found["parcel_id"].nunique())
    line = (
        f"{len(found)} patches of {cfg.patch_size_m:g} m in {n_parcels} parcels "
        f"({n_fallback} at a parcel's pole, no patch fitted) -> {cfg.out}"
    )
    summary = {"patches": len(found), "parcels": n_parcels, "fallback": n_fallback}
    return StageResult(summary, [line])


# ---------------------------------------------------------------- split
class SplitStage(StageConfig, SplitOptions):
    """``landforge split FEATURES --out S``: options in SplitOptions."""

    input_fields = ("features", "tiles")
    output_fields = ("out",)
    cli_arguments = ("features",)
    features: str = Field(description="Features to split (.parquet or .gpkg).")
    tiles: str | None = Field(
        None, description="Polygons to use as blocks instead of the square grid."
    )
    out: VectorOut = Field(
        "split.parquet", description="Output .parquet or .gpkg (adds a 'split' column)."
    )


@register_stage("split", SplitStage, command="split")
def split(cfg: SplitStage, ctx: StageContext) -> StageResult:
    """Spatially blocked train / val / test split: whole blocks go to one subset."""
    # function-local: geopandas loads only when the stage runs
    from landforge.datasets.splits import block_split, split_report
    from landforge.io.vector import read_vector, require_column, write_vector

    features = read_vector(cfg.features)
    for field in ("strata_col", "group_col"):
        if getattr(cfg, field) is not None:
            require_column(features, getattr(cfg, field), cfg.features, option=field)
    tiles = read_vector(cfg.tiles) if cfg.tiles is not None else None
    features["split"] = block_split(features, SplitOptions.build(cfg), tiles=tiles)
    write_vector(features, cfg.out)
    strata = features[cfg.strata_col] if cfg.strata_col else None
    report = split_report(features["split"], strata)
    lines = report.to_string(float_format=lambda v: f"{v:.3f}").splitlines()
    lines.append(f"{len(features)} features split -> {cfg.out}")
    counts = {str(k): int(v) for k, v in report["n"].items() if k != "all"}
    return StageResult({"features": len(features), **counts}, lines)
