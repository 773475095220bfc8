"""``landforge patches`` (Poisson-disk patch centres in parcels) and ``landforge split``
(spatially blocked train / val / test split of a vector layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError

__all__ = ["parse_ratios", "register", "run_patches", "run_split"]

_VECTOR_OUT = {".parquet", ".geoparquet", ".gpkg", ".geojson", ".json"}
_DEFAULT_NAMES = ("train", "val", "test")


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in _VECTOR_OUT:
        raise InputError("--out", f"{out}: use a .parquet (GeoParquet) or .gpkg (GeoPackage) file")


def parse_ratios(text: str) -> dict[str, float]:
    """``"0.6,0.2,0.2"`` (train, val, test in order) or ``"train=0.7,val=0.3"``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError("--ratios", "give ratios, e.g. 0.6,0.2,0.2 or train=0.8,val=0.2")
    named = ["=" in t for t in items]
    if any(named) and not all(named):
        raise InputError("--ratios", f"{text!r}: name all ratios or none")
    if all(named):
        pairs = [t.split("=", 1) for t in items]
        ratios: dict[str, Any] = {k.strip(): v.strip() for k, v in pairs}
    elif len(items) > len(_DEFAULT_NAMES):
        raise InputError("--ratios", f"{text!r}: name more than three subsets, e.g. a=0.5,b=0.5")
    else:
        ratios = dict(zip(_DEFAULT_NAMES, items, strict=False))
    from landforge.datasets.splits import normalise_ratios

    return normalise_ratios(ratios, source="--ratios")


def run_patches(
    parcels_path: Path,
    out: Path,
    size_m: float,
    radius_m: float | None = None,
    min_inside: float = 1.0,
    max_per_parcel: int | None = None,
    seed: int = 0,
    squares: bool = False,
    id_col: str = "parcel_id",
) -> Any:
    """Read parcels, sample patch centres, write them (or their squares); return them."""
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels.poisson import patch_squares, poisson_patches

    _check_out(out)
    parcels = read_vector(parcels_path)
    patches = poisson_patches(
        parcels,
        size_m,
        radius_m=radius_m,
        min_inside=min_inside,
        max_per_parcel=max_per_parcel,
        seed=seed,
        id_col=id_col,
    )
    written = patches
    if squares:
        written = patches.set_geometry(patch_squares(patches, size_m).values)
    write_vector(written, out)
    n_fallback = int(patches["fallback"].sum())
    typer.echo(
        f"{len(patches)} patches of {size_m:g} m in {patches['parcel_id'].nunique()} parcels "
        f"({n_fallback} at a parcel's pole, no patch fitted) -> {out}"
    )
    return patches


def run_split(
    features_path: Path,
    out: Path,
    block_size_m: float = 1000.0,
    ratios: str = "0.6,0.2,0.2",
    strata_col: str | None = None,
    group_col: str | None = None,
    tiles_path: Path | None = None,
    seed: int = 0,
) -> Any:
    """Read features, add a blocked ``split`` column, write them; return them."""
    from landforge.datasets.splits import block_split, split_report
    from landforge.io.vector import read_vector, write_vector

    _check_out(out)
    parsed = parse_ratios(ratios)
    features = read_vector(features_path)
    tiles = read_vector(tiles_path) if tiles_path is not None else None
    features["split"] = block_split(
        features,
        parsed,
        block_size_m=block_size_m,
        strata_col=strata_col,
        seed=seed,
        group_col=group_col,
        tiles=tiles,
    )
    write_vector(features, out)
    report = split_report(features["split"], features[strata_col] if strata_col else None)
    typer.echo(report.to_string(float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"{len(features)} features split -> {out}")
    return features


def register(app: typer.Typer) -> None:
    """Add the ``patches`` and ``split`` commands to the root app."""

    @app.command("patches")
    def _patches(
        parcels: Path = typer.Argument(..., help="Parcel polygons (.parquet or .gpkg)."),
        out: Path = typer.Option(..., "--out", help="Output .gpkg or .parquet."),
        size_m: float = typer.Option(..., "--size-m", help="Patch side in metres."),
        radius_m: float | None = typer.Option(
            None, "--radius-m", help="Minimum distance between centres (default: --size-m)."
        ),
        min_inside: float = typer.Option(
            1.0, "--min-inside", help="Smallest share of a patch inside its parcel."
        ),
        max_per_parcel: int | None = typer.Option(
            None, "--max-per-parcel", help="Keep at most this many patches per parcel."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        squares: bool = typer.Option(
            False, "--squares", help="Write the patch squares instead of their centres."
        ),
        id_col: str = typer.Option("parcel_id", "--id-col", help="Parcel id column."),
    ) -> None:
        """Poisson-disk patch centres inside parcels (at least one per parcel)."""
        run_patches(
            parcels, out, size_m, radius_m, min_inside, max_per_parcel, seed, squares, id_col
        )

    @app.command("split")
    def _split(
        features: Path = typer.Argument(..., help="Features to split (.parquet or .gpkg)."),
        out: Path = typer.Option(..., "--out", help="Output .parquet or .gpkg (adds 'split')."),
        block_size_m: float = typer.Option(
            1000.0, "--block-size-m", help="Side of the square blocks in metres."
        ),
        ratios: str = typer.Option(
            "0.6,0.2,0.2", "--ratios", help="train,val,test ratios or name=ratio pairs."
        ),
        strata_col: str | None = typer.Option(
            None, "--strata-col", help="Class column to stratify by."
        ),
        group_col: str | None = typer.Option(
            None, "--group-col", help="Keep each group (e.g. parcel_id) in one subset."
        ),
        tiles: Path | None = typer.Option(
            None, "--tiles", help="Polygons to use as blocks instead of the square grid."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
    ) -> None:
        """Spatially blocked train / val / test split: whole blocks go to one subset."""
        run_split(features, out, block_size_m, ratios, strata_col, group_col, tiles, seed)
