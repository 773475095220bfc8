"""``landforge parcels``: parcels from a road network (``generate``), their labels
(``label``) and a sample of them (``select``); plus ``landforge sample-design`` (LSI
stratified sample sites on a land-cover raster).

``landforge parcels --roads R --out P`` (no subcommand) is the same as
``landforge parcels generate --roads R --out P``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError

__all__ = [
    "register",
    "run_assign",
    "run_generate",
    "run_label",
    "run_sample_design",
    "run_select",
]

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
    min_area: float = 100.0,
    network: str = "driving",
    keep_tunnels: bool = False,
    districts: Path | None = None,
    district_col: str = "district_id",
    centre: str | None = None,
    centre_crs: str | None = None,
    centre_method: str = "density",
    poi: Path | None = None,
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
    if centre_method not in ("density", "centroid"):
        raise InputError("--centre-method", f"use density or centroid, got {centre_method!r}")
    cfg = ParcelConfig(
        widths=load_widths(widths) if widths is not None else {},
        clean_m=clean_m,
        min_area_m2=min_area,
        exclude_tunnels=not keep_tunnels,
        centre=_parse_centre(centre) if centre is not None else None,
        centre_crs=_parse_crs(centre_crs) if centre_crs is not None else None,
        centre_method=centre_method,
        pois=read_vector(poi) if poi is not None else None,
        districts=read_vector(districts) if districts is not None else None,
        district_col=district_col,
    )
    parcels = generate_parcels(road_gdf, boundary_gdf, cfg)
    write_vector(parcels, out)
    total = float(parcels["area_m2"].sum()) / 1e6 if len(parcels) else 0.0
    cx, cy = parcels.attrs["centre"]
    how = parcels.attrs.get("centre_method", "given")
    typer.echo(f"centre ({how}): {cx:.1f}, {cy:.1f} ({parcels.crs.to_string()})")
    if "district_id" in parcels.columns:
        typer.echo(f"districts: {parcels['district_id'].nunique()} hold parcels")
    typer.echo(f"{len(parcels)} parcels ({total:.3f} km2, {parcels.crs.to_string()}) -> {out}")
    return parcels


def _parse_centre(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise InputError("--centre", f"expected X,Y like 400300,3400300; got {text!r}") from None
    return x, y


def _parse_crs(text: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    value: Any = int(text) if text.strip().isdigit() else text
    try:
        return CRS.from_user_input(value)
    except CRSError:
        raise InputError(
            "--centre-crs", f"unknown CRS {text!r} (e.g. 4326 or EPSG:32650)"
        ) from None


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
    result = label_parcels(
        parcels,
        label_gdf,
        col,
        mapping=mapping,
        min_coverage=min_coverage,
        mixed_threshold=mixed_threshold,
    )
    # codes of mixed types (str/int) would break Arrow; labels are written as text
    result["label"] = result["label"].map(lambda v: None if v is None else str(v))
    write_vector(result, out)
    n = int(result["label"].notna().sum())
    typer.echo(
        f"{n} of {len(result)} parcels labelled ({int(result['mixed'].sum())} mixed) -> {out}"
    )
    return result


def run_assign(
    parcels: Path,
    map_path: Path,
    out: Path,
    probs: Path | None = None,
    all_touched: bool = False,
    ignore: str = "0",
) -> Any:
    """Read parcels, give each the majority class of the map inside it, write them."""
    from landforge.inference.parcels import assign_parcels
    from landforge.io.vector import read_vector, write_vector

    _check_out(out)
    try:
        ignored = [int(v) for v in ignore.split(",") if v.strip()]
    except ValueError:
        raise InputError("--ignore", f"expected comma-separated integers, got {ignore!r}") from None
    gdf = read_vector(parcels)
    assigned = assign_parcels(
        gdf, map_path, probs_path=probs, ignore=ignored, all_touched=all_touched
    )
    write_vector(assigned, out)
    by_class = assigned["class_name"].value_counts().to_dict()
    typer.echo(
        f"wrote {out} ({len(assigned)} parcels, {int(assigned['class_value'].isna().sum())} "
        f"without class: {by_class})"
    )
    return assigned


def _parse_weights(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.replace(":", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2:
        raise InputError("--weights", f"expected two numbers like 0.7,0.3; got {text!r}")
    return values[0], values[1]


def run_select(
    parcels_path: Path,
    out: Path,
    min_area: float | None = None,
    max_area: float | None = None,
    n: int | None = None,
    fraction: float | None = None,
    weights: str = "0.7,0.3",
    dispersion: float = 0.5,
    seed: int = 0,
    label_col: str | None = None,
) -> Any:
    """Select parcels, write them and a JSON report beside (``<out stem>.report.json``)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from landforge.io.atomic import atomic_path
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.select import MSLU_AREA_RANGE, select_parcels, selection_report

    _check_out(out)
    w = _parse_weights(weights)
    parcels = read_vector(parcels_path)
    if label_col is not None and label_col not in parcels.columns:
        raise InputError("--label-col", f"{parcels_path} has no column {label_col!r}")
    lo = MSLU_AREA_RANGE[0] if min_area is None else (None if min_area <= 0 else min_area)
    hi = MSLU_AREA_RANGE[1] if max_area is None else (None if max_area <= 0 else max_area)
    selected = select_parcels(
        parcels,
        area_range=(lo, hi),
        n=n,
        fraction=fraction,
        weights=w,
        dispersion=dispersion,
        seed=seed,
    )
    report = selection_report(parcels, selected, label_col=label_col)
    report["settings"] = {
        "input": str(parcels_path),
        "area_range_m2": [lo, hi],
        "n": n,
        "fraction": fraction,
        "weights": list(w),
        "dispersion": dispersion,
        "seed": seed,
    }
    write_vector(selected, out)
    report_path = out.with_suffix(".report.json")
    with atomic_path(report_path) as tmp:
        tmp.write_text(json.dumps(_json_safe(report), indent=2) + "\n")

    table = Table(title=f"Parcel selection ({len(selected)} of {len(parcels)})")
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
    Console(width=100).print(table)
    typer.echo(f"{len(selected)} parcels -> {out} (report {report_path})")
    return selected


def _json_safe(value: Any) -> Any:
    """NaN -> None, recursively, so the report is strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def run_sample_design(
    landcover: Path,
    regions: Path,
    n: int,
    unit_size_m: float,
    out: Path,
    region_col: str | None = None,
    nodata: float | None = None,
    seed: int = 0,
    standard: str = "sqrt",
) -> Any:
    """LSI sample design: write sites and ``<out stem>.allocation.csv``; return the design."""
    from landforge.io.atomic import atomic_path
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.lsi import design_samples

    _check_out(out)
    if n <= 0:
        raise InputError("--n", f"number of sites must be > 0, got {n}")
    if standard not in ("sqrt", "fragstats"):
        raise InputError("--standard", f"use sqrt or fragstats, got {standard!r}")
    if not landcover.exists():
        raise InputError(landcover, "raster does not exist")
    region_gdf = read_vector(regions)
    design = design_samples(
        landcover,
        region_gdf,
        n,
        unit_size_m,
        region_col=region_col,
        nodata=nodata,
        seed=seed,
        standard=standard,  # type: ignore[arg-type]
    )
    write_vector(design.sites, out)
    csv = out.with_suffix(".allocation.csv")
    with atomic_path(csv) as tmp:
        design.allocation.to_csv(tmp, index=False)
    per_region = design.allocation.groupby("region", sort=False)["n"].sum()
    typer.echo(
        f"{len(design.sites)} sites in {len(per_region)} regions "
        f"({', '.join(f'{k}: {v}' for k, v in per_region.items())}) -> {out} "
        f"(allocation {csv})"
    )
    return design


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


# Options shared by `landforge parcels generate` and the bare `landforge parcels` form.
_GEN: dict[str, Any] = {
    "roads": typer.Option(None, "--roads", help="Road lines (gpkg, parquet, geojson)."),
    "osm": typer.Option(None, "--osm", help="OSM extract (.osm.pbf) to take roads from."),
    "boundary": typer.Option(
        None, "--boundary", help="Polygon(s) to split; default: the roads' extent."
    ),
    "widths": typer.Option(
        None, "--widths", help="YAML 'road_class: width_m' overriding the defaults."
    ),
    "clean_m": typer.Option(5.0, "--clean-m", help="Opening distance (m): -x/+x buffer."),
    "min_area": typer.Option(100.0, "--min-area", help="Drop parcels below this area (m2)."),
    "network": typer.Option(
        "driving",
        "--network",
        help="OSM network type (with --osm): driving, driving+service, all, ...",
    ),
    "keep_tunnels": typer.Option(False, "--keep-tunnels", help="Let tunnels cut parcels too."),
    "districts": typer.Option(
        None, "--districts", help="District polygons: adds district_id to each parcel."
    ),
    "district_col": typer.Option(
        "district_id", "--district-col", help="Id column of --districts (else row + 1)."
    ),
    "centre": typer.Option(
        None, "--centre", help="City centre X,Y for dist_centre_m; default estimated."
    ),
    "centre_crs": typer.Option(
        None, "--centre-crs", help="CRS of --centre (EPSG code); default the roads' CRS."
    ),
    "centre_method": typer.Option(
        "density",
        "--centre-method",
        help="Without --centre: density (road/POI density peak) or centroid (boundary).",
    ),
    "poi": typer.Option(
        None, "--poi", help="POI points added to the road density of the centre estimate."
    ),
}


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
        roads: Path | None = _GEN["roads"],
        osm: Path | None = _GEN["osm"],
        boundary: Path | None = _GEN["boundary"],
        out: Path | None = typer.Option(None, "--out", help="Output .parquet or .gpkg."),
        widths: Path | None = _GEN["widths"],
        clean_m: float = _GEN["clean_m"],
        min_area: float = _GEN["min_area"],
        network: str = _GEN["network"],
        keep_tunnels: bool = _GEN["keep_tunnels"],
        districts: Path | None = _GEN["districts"],
        district_col: str = _GEN["district_col"],
        centre: str | None = _GEN["centre"],
        centre_crs: str | None = _GEN["centre_crs"],
        centre_method: str = _GEN["centre_method"],
        poi: Path | None = _GEN["poi"],
    ) -> None:
        """Parcels from road networks (same options as `parcels generate`)."""
        if ctx.invoked_subcommand is not None:
            return
        if roads is None and osm is None and out is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        if out is None:
            raise InputError("--out", "give the output file, e.g. --out parcels.parquet")
        params = {k: v for k, v in ctx.params.items() if k != "out"}
        run_generate(out=out, **params)

    @group.command("generate")
    def _generate(
        out: Path = typer.Option(..., "--out", help="Output .parquet (GeoParquet) or .gpkg."),
        roads: Path | None = _GEN["roads"],
        osm: Path | None = _GEN["osm"],
        boundary: Path | None = _GEN["boundary"],
        widths: Path | None = _GEN["widths"],
        clean_m: float = _GEN["clean_m"],
        min_area: float = _GEN["min_area"],
        network: str = _GEN["network"],
        keep_tunnels: bool = _GEN["keep_tunnels"],
        districts: Path | None = _GEN["districts"],
        district_col: str = _GEN["district_col"],
        centre: str | None = _GEN["centre"],
        centre_crs: str | None = _GEN["centre_crs"],
        centre_method: str = _GEN["centre_method"],
        poi: Path | None = _GEN["poi"],
    ) -> None:
        """Cut parcels: boundary minus buffered roads, cleaned by a -/+ clean-m opening."""
        params = {k: v for k, v in locals().items() if k != "out"}
        run_generate(out=out, **params)

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

    @group.command("select")
    def _select(
        parcels: Path = typer.Argument(..., help="Parcels (.parquet or .gpkg)."),
        out: Path = typer.Option(..., "--out", help="Output .parquet or .gpkg."),
        min_area: float | None = typer.Option(
            None, "--min-area", help="Smallest area (m2); default 38931.315 (MSLU); 0 = none."
        ),
        max_area: float | None = typer.Option(
            None, "--max-area", help="Largest area (m2); default 676818.47 (MSLU); 0 = none."
        ),
        n: int | None = typer.Option(None, "--n", help="Parcels to draw; default all."),
        fraction: float | None = typer.Option(
            None, "--fraction", help="Share of the filtered parcels to draw instead of --n."
        ),
        weights: str = typer.Option("0.7,0.3", "--weights", help="Distance,random weight mix."),
        dispersion: float = typer.Option(
            0.5, "--dispersion", help="Distance decay as a fraction of the largest distance."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        label_col: str | None = typer.Option(
            None, "--label-col", help="Class column for the class balance (e.g. label)."
        ),
    ) -> None:
        """Filter parcels by area, then draw a centre-weighted random sample (MSLU-100K)."""
        run_select(
            parcels, out, min_area, max_area, n, fraction, weights, dispersion, seed, label_col
        )

    @group.command("assign")
    def _assign(
        parcels: Path = typer.Argument(..., help="Parcels (.parquet or .gpkg)."),
        map_path: Path = typer.Option(..., "--map", help="Class map from `landforge predict`."),
        out: Path = typer.Option(..., "--out", help="Output .parquet or .gpkg."),
        probs: Path | None = typer.Option(
            None, "--probs", help="Class probabilities on the map grid (gives the confidence)."
        ),
        all_touched: bool = typer.Option(
            False, "--all-touched", help="Count every pixel a parcel touches, not only centres."
        ),
        ignore: str = typer.Option(
            "0", "--ignore", help="Class values not counted, comma-separated (default 0)."
        ),
    ) -> None:
        """Majority class, class fractions and confidence of each parcel from a class map."""
        run_assign(parcels, map_path, out, probs, all_touched, ignore)

    app.add_typer(group, name="parcels")

    @app.command("sample-design")
    def _sample_design(
        landcover: Path = typer.Option(..., "--landcover", help="Land-cover class raster."),
        regions: Path = typer.Option(..., "--regions", help="Region polygons (vector file)."),
        n: int = typer.Option(..., "--n", help="Total number of sample sites."),
        unit_size_m: float = typer.Option(
            ..., "--unit-size-m", help="Side of the square grid units (raster CRS units)."
        ),
        out: Path = typer.Option(..., "--out", help="Output sites (.gpkg or .parquet)."),
        region_col: str | None = typer.Option(
            None, "--region-col", help="Column naming the regions; default row number."
        ),
        nodata: float | None = typer.Option(
            None, "--nodata", help="Nodata class; default the raster's nodata."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed of the site pixels."),
        standard: str = typer.Option(
            "sqrt", "--standard", help="LSI standard: sqrt (0.25E/sqrt A) or fragstats."
        ),
    ) -> None:
        """LSI-stratified sample sites on a land-cover raster (Chen et al. 2016)."""
        run_sample_design(
            landcover, regions, n, unit_size_m, out, region_col, nodata, seed, standard
        )
