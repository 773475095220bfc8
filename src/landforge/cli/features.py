"""``landforge poi-maps``: POI distance-decay probability maps on an image's grid."""

from __future__ import annotations

from pathlib import Path

import typer

from landforge.errors import InputError

__all__ = ["register", "run_poi_maps"]


def run_poi_maps(
    poi: Path,
    like: Path,
    dmax: str,
    out: Path,
    taxonomy: str | None = None,
    category_col: str = "category",
    lon: str | None = None,
    lat: str | None = None,
    workers: int = 1,
    tile: int = 32,
) -> Path:
    """Read POIs and a reference grid, compute the maps, write a COG; return its path."""
    from landforge.cli.parcels import _load_mapping
    from landforge.features.poi_maps import (
        parse_dmax,
        resolve_classes,
        write_poi_probability_maps,
    )
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid

    if out.suffix.lower() not in {".tif", ".tiff"}:
        raise InputError("--out", f"{out}: POI maps are written as a GeoTIFF (.tif)")
    dmax_m = parse_dmax(dmax)
    mapping = _load_mapping(taxonomy) if taxonomy else None
    classes = resolve_classes(dmax_m, mapping)  # fail on a bad class before reading data
    grid = read_grid(like, require_crs=True)
    pois = read_pois(poi, lon_col=lon, lat_col=lat, category_col=category_col)
    write_poi_probability_maps(
        out,
        pois,
        grid,
        dmax_m,
        mapping=mapping,
        category_col=category_col,
        workers=workers,
        tile=tile,
    )
    names = [c.name for c in classes]
    typer.echo(
        f"{len(pois)} POIs -> {len(names)} bands ({', '.join(names)}) "
        f"{grid.width}x{grid.height} -> {out}"
    )
    return out


def register(app: typer.Typer) -> None:
    """Add ``poi-maps`` to the root app."""

    @app.command("poi-maps")
    def _poi_maps(
        poi: Path = typer.Option(
            ..., "--poi", help="POIs: CSV (lon/lat columns), GeoJSON, GeoParquet, GeoPackage."
        ),
        like: Path = typer.Option(
            ..., "--like", help="Raster whose grid (CRS, transform, size) the maps take."
        ),
        dmax: str = typer.Option(
            ...,
            "--dmax",
            help="Decay distances, e.g. residential=300,commercial=300,industrial=800.",
        ),
        out: Path = typer.Option(
            ..., "--out", help="Output COG (.tif), one float32 band per class."
        ),
        taxonomy: str | None = typer.Option(
            None, "--taxonomy", help="Mapping from POI categories to classes, e.g. gbt35648_rci."
        ),
        category_col: str = typer.Option("category", "--category-col", help="POI category column."),
        lon: str | None = typer.Option(
            None, "--lon", help="Longitude/x column of a CSV (default: detected)."
        ),
        lat: str | None = typer.Option(
            None, "--lat", help="Latitude/y column of a CSV (default: detected)."
        ),
        workers: int = typer.Option(
            1, "--workers", help="Threads over row windows (-1: all cores)."
        ),
        tile: int = typer.Option(
            32,
            "--tile",
            min=1,
            help="Tile side (pixels) of the exact candidate search; speed and memory only.",
        ),
    ) -> None:
        """POI distance-decay probability per class: p = 1 - min(d / dmax, 1)."""
        run_poi_maps(poi, like, dmax, out, taxonomy, category_col, lon, lat, workers, tile)
