"""``landforge poi-embed`` (category embeddings) and ``landforge parcels features``.

``poi-embed`` is a top-level command; ``features`` is added to the existing ``parcels``
group (found by name in ``app.registered_groups``), so this module must be registered
after ``parcels``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError, require_file

__all__ = ["register", "run_parcel_features", "run_poi_embed"]


def _read_poi_layer(poi: Path, category_col: str, lon: str | None, lat: str | None) -> Any:
    from landforge.io.poi import read_pois  # reads .osm.pbf too ("key=value" categories)

    return read_pois(poi, lon_col=lon, lat_col=lat, category_col=category_col)


def run_poi_embed(
    poi: Path,
    out: Path,
    category_col: str = "category",
    lon: str | None = None,
    lat: str | None = None,
    **options: Any,
) -> Any:
    """Read POIs, fit :class:`POIEmbedder` with ``options`` (its constructor arguments),
    write the embeddings Parquet; return the model."""
    from landforge.features.poi_embed import POIEmbedder

    if out.suffix.lower() != ".parquet":
        raise InputError("--out", f"{out}: embeddings are written as Parquet (.parquet)")
    model = POIEmbedder(**options)
    model._check()  # fail on a bad option before reading data
    pois = _read_poi_layer(poi, category_col, lon, lat)
    model.fit(pois, category_col)
    model.save(out)
    typer.echo(
        f"{model.n_pois_} POIs, {len(model.categories_)} categories, {model.n_edges_} edges, "
        f"{model.n_walks_} walks -> {model.dim}-d embeddings -> {out}"
    )
    return model


def run_parcel_features(
    parcels_path: Path,
    poi: Path,
    out: Path,
    embeddings: Path | None = None,
    category_col: str = "category",
    lon: str | None = None,
    lat: str | None = None,
) -> Any:
    """Read parcels, POIs and embeddings; write per-parcel POI features; return them."""
    from landforge.features.parcel_features import parcel_poi_features
    from landforge.features.poi_embed import POIEmbedder
    from landforge.io.vector import read_vector

    if out.suffix.lower() not in {".parquet", ".csv"}:
        raise InputError("--out", f"{out}: write features as .parquet or .csv")
    emb = POIEmbedder.load(embeddings) if embeddings is not None else None
    parcels = read_vector(require_file(parcels_path, "parcels file"))
    pois = _read_poi_layer(poi, category_col, lon, lat)
    feats = parcel_poi_features(parcels, pois, emb, category_col=category_col)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        feats.to_csv(out, index=False)
    else:
        feats.to_parquet(out, index=False)
    with_pois = int((feats["n_pois"] > 0).sum())
    typer.echo(
        f"{len(feats)} parcels ({with_pois} with POIs, {int(feats['n_pois'].sum())} POIs), "
        f"{feats.shape[1]} columns -> {out}"
    )
    return feats


def _parcels_group(app: typer.Typer) -> typer.Typer | None:
    for info in app.registered_groups:
        if info.name == "parcels":
            return info.typer_instance
    return None


def register(app: typer.Typer) -> None:
    """Add ``poi-embed`` to the root app and ``features`` to the ``parcels`` group."""

    @app.command("poi-embed")
    def _poi_embed(
        poi: Path = typer.Option(
            ...,
            "--poi",
            help="POIs: CSV (lon/lat columns), GeoJSON, GeoParquet, GeoPackage or .osm.pbf.",
        ),
        out: Path = typer.Option(..., "--out", help="Output embeddings (.parquet)."),
        category_col: str = typer.Option("category", "--category-col", help="POI category column."),
        lon: str | None = typer.Option(None, "--lon", help="Longitude/x column of a CSV."),
        lat: str | None = typer.Option(None, "--lat", help="Latitude/y column of a CSV."),
        dim: int = typer.Option(64, "--dim", help="Vector size."),
        graph: str = typer.Option("delaunay", "--graph", help="POI network: delaunay or knn."),
        k: int = typer.Option(8, "--k", help="Neighbours per POI (--graph knn)."),
        max_dist: float = typer.Option(500.0, "--max-dist", help="Longest edge (m)."),
        walks: int = typer.Option(10, "--walks", help="Random walks per POI."),
        walk_length: int = typer.Option(40, "--walk-length", help="POIs per walk."),
        window: int = typer.Option(5, "--window", help="Skip-gram window."),
        epochs: int = typer.Option(5, "--epochs", help="Word2Vec epochs."),
        seed: int = typer.Option(0, "--seed", help="Seed (walks and Word2Vec; 1 worker)."),
    ) -> None:
        """POI category embeddings: random walks on a POI network + skip-gram (MSLU)."""
        run_poi_embed(
            poi, out, category_col, lon, lat, dim=dim, graph=graph, k=k, max_dist_m=max_dist,
            walks_per_node=walks, walk_length=walk_length, window=window, epochs=epochs,
            seed=seed,
        )  # fmt: skip

    group = _parcels_group(app)
    if group is None:  # the parcels area is not installed: nothing to attach to
        return

    @group.command("features")
    def _features(
        parcels: Path = typer.Argument(..., help="Parcels (.parquet or .gpkg)."),
        poi: Path = typer.Option(..., "--poi", help="POIs (CSV, vector file or .osm.pbf)."),
        out: Path = typer.Option(..., "--out", help="Output features (.parquet or .csv)."),
        embeddings: Path | None = typer.Option(
            None, "--embeddings", help="Category embeddings from `landforge poi-embed`."
        ),
        category_col: str = typer.Option("category", "--category-col", help="POI category column."),
        lon: str | None = typer.Option(None, "--lon", help="Longitude/x column of a CSV."),
        lat: str | None = typer.Option(None, "--lat", help="Latitude/y column of a CSV."),
    ) -> None:
        """POI counts, density and (TF-IDF) mean category embedding per parcel."""
        run_parcel_features(parcels, poi, out, embeddings, category_col, lon, lat)
