"""Stages: parcels from a road network, their labels and a sample of them.

``landforge parcels generate`` (also the bare ``landforge parcels``), ``parcels label``
and ``parcels select``: the options are the models of :mod:`landforge.parcels.options`;
the stage configs add the input and output paths.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from landforge.config import StageConfig, jsonable
from landforge.errors import OptionError
from landforge.parcels.options import LabelOptions, ParcelOptions, SelectOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage

__all__ = [
    "VECTOR_SUFFIXES",
    "ParcelsLabelStage",
    "ParcelsSelectStage",
    "ParcelsStage",
    "VectorOut",
]

#: Vector formats a stage can write (``landforge.io.vector.write_vector``).
VECTOR_SUFFIXES = (".parquet", ".geoparquet", ".gpkg", ".geojson", ".json")


def _vector_out(path: str) -> str:
    if Path(path).suffix.lower() not in VECTOR_SUFFIXES:
        raise ValueError(f"{path}: use a .parquet (GeoParquet) or .gpkg (GeoPackage) file")
    return path


#: An output vector file: the suffix picks the format (checked on validation).
VectorOut = Annotated[str, AfterValidator(_vector_out)]

#: OSM network types of ``landforge.io.osm.read_osm_roads``.
NetworkType = Literal["driving", "driving+service", "walking", "cycling", "all", "all_public"]


def side_file(out: str, suffix: str) -> str:
    """The file written beside ``out``: ``sel.parquet`` -> ``sel.report.json``."""
    return str(Path(out).with_suffix(suffix))


# ---------------------------------------------------------------- generate
class ParcelsStage(StageConfig, ParcelOptions):
    """``landforge parcels generate --roads R --out P``: options in ParcelOptions."""

    input_fields = ("roads", "osm", "boundary", "districts", "poi", "widths_file")
    output_fields = ("out",)
    cli_flags = {"widths_file": "--widths", "widths": "--width", "min_area_m2": "--min-area"}
    roads: str | None = Field(None, description="Road lines (gpkg, parquet, geojson).")
    osm: str | None = Field(
        None, description="OSM extract (.osm.pbf) to take the roads from instead."
    )
    network: NetworkType = Field(
        "driving", description="OSM network type of the osm roads (driving, all, ...)."
    )
    boundary: str | None = Field(
        None, description="Polygon(s) to split; default: the roads' extent."
    )
    districts: str | None = Field(
        None, description="District polygons: adds district_id to each parcel."
    )
    poi: str | None = Field(
        None, description="POI points added to the road density of the centre estimate."
    )
    widths_file: str | None = Field(
        None, description="YAML 'road_class: width_m' overriding the default widths."
    )
    out: VectorOut = Field("parcels.parquet", description="Output .parquet (GeoParquet) or .gpkg.")

    @model_validator(mode="after")
    def _one_road_source(self) -> ParcelsStage:
        if (self.roads is None) == (self.osm is None):
            raise OptionError(
                "roads", "give exactly one of roads (a vector file) or osm (an .osm.pbf)"
            )
        return self


@register_stage("parcels", ParcelsStage, command="parcels generate")
def parcels(cfg: ParcelsStage, ctx: StageContext) -> StageResult:
    """Cut parcels: boundary minus buffered roads, cleaned by a -/+ clean-m opening."""
    # function-local: geopandas/pyrosm load only when the stage runs
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.generate import generate_parcels, load_widths

    widths = cfg.widths
    if cfg.widths_file is not None:
        widths = {**load_widths(cfg.widths_file), **cfg.widths}
    if cfg.osm is not None:
        from landforge.io.osm import read_osm_roads

        roads = read_osm_roads(cfg.osm, network=cfg.network)
    else:
        assert cfg.roads is not None  # the model validator checks it
        roads = read_vector(cfg.roads)
    result = generate_parcels(
        roads,
        read_vector(cfg.boundary) if cfg.boundary is not None else None,
        ParcelOptions.build(cfg, widths=widths),
        pois=read_vector(cfg.poi) if cfg.poi is not None else None,
        districts=read_vector(cfg.districts) if cfg.districts is not None else None,
    )
    write_vector(result, cfg.out)
    total = float(result["area_m2"].sum()) / 1e6 if len(result) else 0.0
    cx, cy = result.attrs["centre"]
    how = result.attrs.get("centre_method", "given")
    crs = result.crs.to_string()
    lines = [f"centre ({how}): {cx:.1f}, {cy:.1f} ({crs})"]
    if "district_id" in result.columns:
        lines.append(f"districts: {result['district_id'].nunique()} hold parcels")
    lines.append(f"{len(result)} parcels ({total:.3f} km2, {crs}) -> {cfg.out}")
    summary = {
        "parcels": len(result),
        "median_area_m2": float(result["area_m2"].median()) if len(result) else 0.0,
        "total_area_km2": total,
        "centre": [cx, cy],
        "centre_method": how,
    }
    return StageResult(summary, lines)


# ---------------------------------------------------------------- label
class ParcelsLabelStage(StageConfig, LabelOptions):
    """``landforge parcels label PARCELS --labels L --col C``: options in LabelOptions."""

    input_fields = ("parcels", "labels")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Parcels (.parquet or .gpkg).")
    labels: str = Field(description="Land-use polygons (vector file or .osm.pbf).")
    out: VectorOut = Field("labelled.parquet", description="Output .parquet or .gpkg.")


@register_stage("parcels_label", ParcelsLabelStage, command="parcels label")
def parcels_label(cfg: ParcelsLabelStage, ctx: StageContext) -> StageResult:
    """Label parcels with the majority land-use class by area (purity, mixed flag)."""
    # function-local: geopandas/pyrosm load only when the stage runs
    from landforge.io.vector import read_vector, require_column, write_vector
    from landforge.parcels.label import label_parcels, load_label_mapping

    mapping = load_label_mapping(cfg.taxonomy) if cfg.taxonomy else None
    parcels = read_vector(cfg.parcels)
    if cfg.labels.endswith(".osm.pbf"):
        from landforge.io.osm import read_osm_landuse

        labels = read_osm_landuse(cfg.labels)
    else:
        labels = read_vector(cfg.labels)
    require_column(labels, cfg.col, cfg.labels, option="col")
    result = label_parcels(parcels, labels, LabelOptions.build(cfg), mapping=mapping)
    # codes of mixed types (str/int) would break Arrow; labels are written as text
    result["label"] = result["label"].map(lambda v: None if v is None else str(v))
    write_vector(result, cfg.out)
    n = int(result["label"].notna().sum())
    mixed = int(result["mixed"].sum())
    return StageResult(
        {"parcels": len(result), "labelled": n, "mixed": mixed},
        [f"{n} of {len(result)} parcels labelled ({mixed} mixed) -> {cfg.out}"],
    )


# ---------------------------------------------------------------- select
class ParcelsSelectStage(StageConfig, SelectOptions):
    """``landforge parcels select PARCELS --out S``: options in SelectOptions.

    Writes the selection and ``<out stem>.report.json`` beside it; says which centre the
    distance weight used (given, recorded by ``parcels generate``, or the centroid).
    """

    input_fields = ("parcels",)
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    cli_flags = {"min_area_m2": "--min-area", "max_area_m2": "--max-area"}
    parcels: str = Field(description="Parcels (.parquet or .gpkg).")
    label_col: str | None = Field(
        None, description="Class column for the class balance of the report (e.g. label)."
    )
    out: VectorOut = Field(
        "selected.parquet",
        description="Output .parquet or .gpkg; the report goes to <out stem>.report.json.",
    )

    def outputs(self) -> list[str]:
        """The selection and its report."""
        return [*super().outputs(), side_file(self.out, ".report.json")]


@register_stage("parcels_select", ParcelsSelectStage, command="parcels select")
def parcels_select(cfg: ParcelsSelectStage, ctx: StageContext) -> StageResult:
    """Filter parcels by area, then draw a centre-weighted random sample (MSLU-100K)."""
    # function-local: geopandas loads only when the stage runs
    from landforge.io.atomic import atomic_path
    from landforge.io.vector import read_vector, require_column, write_vector
    from landforge.parcels.select import CENTRE_SOURCES, select_parcels, selection_report

    parcels = read_vector(cfg.parcels)
    if cfg.label_col is not None:
        require_column(parcels, cfg.label_col, cfg.parcels, option="label_col")
    opts = SelectOptions.build(cfg)
    selected = select_parcels(parcels, opts)
    cx, cy = selected.attrs["centre"]
    source = selected.attrs["centre_source"]
    report: dict[str, Any] = selection_report(parcels, selected, label_col=cfg.label_col)
    report["settings"] = {
        "input": cfg.parcels,
        "area_range_m2": list(opts.area_range()),
        "n": opts.n,
        "fraction": opts.fraction,
        "weights": list(opts.weights),
        "dispersion": opts.dispersion,
        "seed": opts.seed,
        "centre": [cx, cy],
        "centre_crs": parcels.crs.to_string(),
        "centre_source": source,
    }
    write_vector(selected, cfg.out)
    report_path = side_file(cfg.out, ".report.json")
    with atomic_path(report_path) as tmp:
        tmp.write_text(json.dumps(jsonable(report), indent=2) + "\n")
    nd = 6 if parcels.crs.is_geographic else 1  # decimals: degrees or metres
    crs = parcels.crs.to_string()
    lines = [f"centre ({CENTRE_SOURCES[source]}): {cx:.{nd}f}, {cy:.{nd}f} ({crs})"]
    lines += _report_table(report, len(selected), len(parcels))
    lines.append(f"{len(selected)} parcels -> {cfg.out} (report {report_path})")
    summary = {
        "parcels": len(parcels),
        "selected": len(selected),
        "centre": [cx, cy],
        "centre_source": source,
    }
    return StageResult(summary, lines)


def _report_table(report: dict[str, Any], n_after: int, n_before: int) -> list[str]:
    """The before/after table of a selection report as plain text lines."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Parcel selection ({n_after} of {n_before})")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    b, a = report["before"], report["after"]
    table.add_row("parcels", str(b["count"]), str(a["count"]))
    table.add_row("area km2", f"{b['area_km2']:.3f}", f"{a['area_km2']:.3f}")
    for key in ("p5", "p50", "p95"):
        table.add_row(
            f"area {key} m2",
            f"{b['area_m2_quantiles'][key]:.0f}",
            f"{a['area_m2_quantiles'][key]:.0f}",
        )
    table.add_row("hull share", f"{b['hull_share']:.2f}", f"{a['hull_share']:.2f}")
    table.add_row("grid occupancy", f"{b['grid_occupancy']:.2f}", f"{a['grid_occupancy']:.2f}")
    if "mixed_share" in b:
        table.add_row("mixed share", f"{b['mixed_share']:.2f}", f"{a['mixed_share']:.2f}")
    for cls in sorted(set(b.get("classes", {})) | set(a.get("classes", {}))):
        table.add_row(
            f"class {cls}",
            f"{b['classes'].get(cls, 0.0):.2f}",
            f"{a['classes'].get(cls, 0.0):.2f}",
        )
    buf = io.StringIO()
    Console(file=buf, width=100, color_system=None).print(table)
    return buf.getvalue().splitlines()
