"""Stage: the seeded synthetic city."""

from __future__ import annotations

from pydantic import Field

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.synth.options import CityOptions


# ---------------------------------------------------------------- synthetic city
class SynthCityStage(StageConfig, CityOptions):
    """``landforge synth city --out DIR``: options in CityOptions."""

    output_fields = ("out",)
    cli_flags = {"quiet": "--quiet -q"}
    out: str = Field(description="Directory to write the city into.")


@register_stage("synth_city", SynthCityStage, command="synth city")
def synth_city(cfg: SynthCityStage, ctx: StageContext) -> StageResult:
    """Generate a synthetic city: vectors, VHR image, labels, 2nd epoch, Sentinel stacks."""
    from landforge.synth.city import make_city  # pulls in geopandas, rasterio

    info = make_city(cfg.out, CityOptions.build(cfg))
    core = info.stats["core"]
    line = (
        f"wrote {len(info.files)} files to {info.out_dir} in {info.seconds:.1f} s: "
        f"{info.counts['parcels']} parcels, {info.counts['buildings']} buildings, "
        f"{info.counts['pois']} POIs (core: {core['buildings_per_km2']:.0f} buildings/km², "
        f"{core['building_coverage_pct']:.0f} % built)"
    )
    return StageResult(dict(info.stats), [line])
