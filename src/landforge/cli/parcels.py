"""``landforge parcels``: parcels from a road network (``generate``) and their labels (``label``).

``landforge parcels --roads R --out P`` (no subcommand) is the same as
``landforge parcels generate --roads R --out P``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError

__all__ = ["register", "run_generate", "run_label"]

_VECTOR_OUT = {".parquet", ".geoparquet", ".gpkg", ".geojson", ".json"}


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in _VECTOR_OUT:
        raise InputError("--out", f"{out}: use a .parquet (GeoParquet) or .gpkg (GeoPackage) file")


def run_generate(
    roads: Path | None,
    osm: Path | None,
    boundary: Path | None,
    out: Path,
    widths: Path | None = None,
    clean_m: float = 5.0,
    min_area_m2: float = 100.0,
    network: str = "driving",
    keep_tunnels: bool = False,
) -> Any:
    """Read roads (a vector file or an OSM PBF), generate parcels, write them; return them."""
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.generate import ParcelConfig, generate_parcels, load_widths

    if (roads is None) == (osm is None):
        raise InputError("--roads/--osm", "give exactly one of --roads FILE or --osm FILE.osm.pbf")
    _check_out(out)
    if clean_m < 0:
        raise InputError("--clean-m", f"must be >= 0, got {clean_m:g}")
    if osm is not None:
        from landforge.io.osm import read_osm_roads

        road_gdf = read_osm_roads(osm, network=network)
    else:
        assert roads is not None
        road_gdf = read_vector(roads)
    boundary_gdf = read_vector(boundary) if boundary is not None else None
    cfg = ParcelConfig(
        widths=load_widths(widths) if widths is not None else {},
        clean_m=clean_m,
        min_area_m2=min_area_m2,
        exclude_tunnels=not keep_tunnels,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parcels = generate_parcels(road_gdf, boundary_gdf, cfg)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    write_vector(parcels, out)
    total = float(parcels["area_m2"].sum()) / 1e6 if len(parcels) else 0.0
    typer.echo(f"{len(parcels)} parcels ({total:.3f} km2, {parcels.crs.to_string()}) -> {out}")
    return parcels


def run_label(
    parcels_path: Path,
    labels: Path,
    col: str,
    out: Path,
    taxonomy: str | None = None,
    min_coverage: float = 0.3,
    mixed_threshold: float = 0.6,
) -> Any:
    """Read parcels and land-use polygons, label the parcels, write them; return them."""
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.label import label_parcels

    _check_out(out)
    mapping = _load_mapping(taxonomy) if taxonomy else None
    parcels = read_vector(parcels_path)
    if labels.name.endswith(".osm.pbf"):
        from landforge.io.osm import read_osm_landuse

        label_gdf = read_osm_landuse(labels)
    else:
        label_gdf = read_vector(labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = label_parcels(
            parcels,
            label_gdf,
            col,
            mapping=mapping,
            min_coverage=min_coverage,
            mixed_threshold=mixed_threshold,
        )
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    # codes of mixed types (str/int) would break Arrow; labels are written as text
    result["label"] = result["label"].map(lambda v: None if v is None else str(v))
    write_vector(result, out)
    n = int(result["label"].notna().sum())
    typer.echo(
        f"{n} of {len(result)} parcels labelled ({int(result['mixed'].sum())} mixed) -> {out}"
    )
    return result


def _load_mapping(name: str) -> Any:
    try:
        from landforge.taxonomy import load_mapping
    except ImportError:
        raise InputError(
            "--taxonomy", "taxonomies are not available in this installation"
        ) from None
    try:
        return load_mapping(name)
    except InputError:
        raise
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise InputError("--taxonomy", f"unknown taxonomy {name!r} ({exc})") from None


def register(app: typer.Typer) -> None:
    """Add the ``parcels`` command group to the root app."""
    group = typer.Typer(
        help="Parcels from road networks, and parcel labels from land-use polygons.",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @group.callback(invoke_without_command=True)
    def _parcels(
        ctx: typer.Context,
        roads: Path | None = typer.Option(
            None, "--roads", help="Road lines (gpkg, parquet, geojson)."
        ),
        osm: Path | None = typer.Option(
            None, "--osm", help="OSM extract (.osm.pbf) to take roads from."
        ),
        boundary: Path | None = typer.Option(
            None, "--boundary", help="Polygon(s) to split; default: the roads' extent."
        ),
        out: Path | None = typer.Option(None, "--out", help="Output .parquet or .gpkg."),
        widths: Path | None = typer.Option(
            None, "--widths", help="YAML 'road_class: width_m' overriding the defaults."
        ),
        clean_m: float = typer.Option(5.0, "--clean-m", help="Opening distance (m): -x/+x buffer."),
        min_area: float = typer.Option(
            100.0, "--min-area", help="Drop parcels below this area (m2)."
        ),
        network: str = typer.Option("driving", "--network", help="OSM network type (with --osm)."),
        keep_tunnels: bool = typer.Option(
            False, "--keep-tunnels", help="Let tunnels cut parcels too."
        ),
    ) -> None:
        """Parcels from road networks (same options as `parcels generate`)."""
        if ctx.invoked_subcommand is not None:
            return
        if roads is None and osm is None and out is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        if out is None:
            raise InputError("--out", "give the output file, e.g. --out parcels.parquet")
        run_generate(roads, osm, boundary, out, widths, clean_m, min_area, network, keep_tunnels)

    @group.command("generate")
    def _generate(
        out: Path = typer.Option(..., "--out", help="Output .parquet (GeoParquet) or .gpkg."),
        roads: Path | None = typer.Option(
            None, "--roads", help="Road lines (gpkg, parquet, geojson)."
        ),
        osm: Path | None = typer.Option(
            None, "--osm", help="OSM extract (.osm.pbf) to take roads from."
        ),
        boundary: Path | None = typer.Option(
            None, "--boundary", help="Polygon(s) to split; default: the roads' extent."
        ),
        widths: Path | None = typer.Option(
            None, "--widths", help="YAML 'road_class: width_m' overriding the defaults."
        ),
        clean_m: float = typer.Option(5.0, "--clean-m", help="Opening distance (m): -x/+x buffer."),
        min_area: float = typer.Option(
            100.0, "--min-area", help="Drop parcels below this area (m2)."
        ),
        network: str = typer.Option(
            "driving",
            "--network",
            help="OSM network type (with --osm): driving, driving+service, all, ...",
        ),
        keep_tunnels: bool = typer.Option(
            False, "--keep-tunnels", help="Let tunnels cut parcels too."
        ),
    ) -> None:
        """Cut parcels: boundary minus buffered roads, cleaned by a -/+ clean-m opening."""
        run_generate(roads, osm, boundary, out, widths, clean_m, min_area, network, keep_tunnels)

    @group.command("label")
    def _label(
        parcels: Path = typer.Argument(..., help="Parcels (.parquet or .gpkg)."),
        labels: Path = typer.Option(
            ..., "--labels", help="Land-use polygons (vector file or .osm.pbf)."
        ),
        col: str = typer.Option(..., "--col", help="Class column of the land-use polygons."),
        out: Path = typer.Option(..., "--out", help="Output .parquet or .gpkg."),
        taxonomy: str | None = typer.Option(
            None, "--taxonomy", help="Mapping applied to --col, e.g. osm_mslu."
        ),
        min_coverage: float = typer.Option(
            0.3, "--min-coverage", help="Leave parcels less covered unlabelled."
        ),
        mixed_threshold: float = typer.Option(
            0.6, "--mixed-threshold", help="Flag mixed below this majority share."
        ),
    ) -> None:
        """Label parcels with the majority land-use class by area (purity, mixed flag)."""
        run_label(parcels, labels, col, out, taxonomy, min_coverage, mixed_threshold)

    app.add_typer(group, name="parcels")
