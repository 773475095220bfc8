"""POI category embeddings (random walks + skip-gram) and POI features per parcel."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from landforge import cli
from landforge.errors import OptionError
from landforge.features.options import ParcelFeatureOptions, PoiEmbedOptions
from landforge.features.parcel_features import parcel_poi_features
from landforge.features.poi_embed import POIEmbedder, poi_graph, random_walks

CRS = "EPSG:32650"
SMALL = {"dim": 8, "walks_per_node": 4, "walk_length": 12, "epochs": 3}


def _two_quarters(seed: int = 0) -> gpd.GeoDataFrame:
    """A shopping quarter and an industrial quarter 3 km apart, 60 POIs each."""
    rng = np.random.default_rng(seed)
    rows = []
    for (x0, y0), cats in (
        ((500000, 3000000), ["cafe", "restaurant", "bakery"]),
        ((503000, 3000000), ["warehouse", "factory", "depot"]),
    ):
        for i in range(60):
            x, y = rng.uniform(0, 400, 2)
            rows.append((x0 + x, y0 + y, cats[i % 3]))
    x, y, c = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"category": c}, geometry=shapely.points(x, y), crs=CRS)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def quarters() -> gpd.GeoDataFrame:
    return _two_quarters()


@pytest.fixture(scope="module")
def fitted(quarters) -> POIEmbedder:
    return POIEmbedder(seed=0, **SMALL).fit(quarters, "category")


def test_the_same_seed_gives_identical_vectors(quarters, fitted) -> None:
    again = POIEmbedder(seed=0, **SMALL).fit(quarters, "category")
    other = POIEmbedder(seed=1, **SMALL).fit(quarters, "category")
    np.testing.assert_array_equal(fitted.embeddings_.to_numpy(), again.embeddings_.to_numpy())
    assert not np.array_equal(fitted.embeddings_.to_numpy(), other.embeddings_.to_numpy())


def test_one_vector_per_category_of_the_requested_size(fitted) -> None:
    emb = fitted.embeddings_
    assert emb.shape == (6, 8)
    assert list(emb.index) == sorted(
        ["cafe", "restaurant", "bakery", "warehouse", "factory", "depot"]
    )
    assert fitted.transform(["cafe", "unknown"]).shape == (2, 8)
    np.testing.assert_array_equal(fitted.transform(["unknown"]), np.zeros((1, 8)))
    # Delaunay edges longer than max_dist_m (the 3 km gap) are dropped
    assert fitted.n_edges_ > 0 and fitted.n_walks_ == 120 * SMALL["walks_per_node"]


@pytest.mark.parametrize("graph", ["delaunay", "knn"])
def test_categories_of_one_quarter_are_closer_than_across_quarters(quarters, graph) -> None:
    model = POIEmbedder(graph=graph, seed=0, **SMALL).fit(quarters, "category")
    v = dict(zip(model.categories_, model.transform(model.categories_), strict=True))
    same = [_cos(v["cafe"], v["restaurant"]), _cos(v["warehouse"], v["factory"])]
    across = [_cos(v["cafe"], v["warehouse"]), _cos(v["restaurant"], v["depot"])]
    assert min(same) > max(across)


def test_walks_follow_edges_only() -> None:
    xy = np.array([[0, 0], [100, 0], [0, 100], [5000, 5000], [5000, 5010]], dtype=float)
    adj = poi_graph(xy, "delaunay", max_dist_m=500)
    walks = random_walks(adj, walks_per_node=3, walk_length=10, seed=0)
    assert walks.shape == (15, 10)
    assert (adj[walks[:, :-1].ravel(), walks[:, 1:].ravel()] > 0).all()
    left = np.isin(walks[:, 0], [0, 1, 2])
    assert np.isin(walks[left], [0, 1, 2]).all() and np.isin(walks[~left], [3, 4]).all()


def test_coincident_pois_become_neighbours() -> None:
    xy = np.array([[0, 0], [0, 0], [0, 0], [50, 0]], dtype=float)
    adj = poi_graph(xy, "delaunay")
    assert (np.diff(adj.indptr) > 0).all()


def test_embeddings_round_trip_through_parquet(fitted, tmp_path) -> None:
    path = fitted.save(tmp_path / "emb.parquet")
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["category"] + [f"emb_{i}" for i in range(8)]
    back = POIEmbedder.load(path)
    pd.testing.assert_frame_equal(back.embeddings_, fitted.embeddings_)
    assert back.get_params() == fitted.get_params()


def test_fit_names_a_missing_category_column(quarters) -> None:
    with pytest.raises(OptionError, match="no column 'kind'") as info:
        POIEmbedder(**SMALL).fit(quarters, "kind")
    assert info.value.field == "category_col"


def test_options_object_keywords_and_attributes(quarters, fitted) -> None:
    opts = PoiEmbedOptions(seed=0, **SMALL)
    model = POIEmbedder(opts)
    assert (
        model.dim == 8 and model.graph == "delaunay" and model.get_params() == fitted.get_params()
    )
    assert "category_col" not in model.get_params()  # not stored with the vectors
    assert POIEmbedder(opts, dim=4).dim == 4  # keywords override the options
    renamed = quarters.rename(columns={"category": "kind"})
    again = POIEmbedder(opts, category_col="kind").fit(renamed)  # the option's column
    np.testing.assert_array_equal(again.embeddings_.to_numpy(), fitted.embeddings_.to_numpy())


@pytest.mark.parametrize(
    "bad, field",
    [({"dim": 0}, "dim"), ({"graph": "grid"}, "graph"), ({"max_dist_m": 0}, "max_dist_m")],
)
def test_a_bad_option_fails_at_construction(bad, field) -> None:
    with pytest.raises(OptionError) as info:
        POIEmbedder(**bad)
    assert info.value.field == field
    with pytest.raises(OptionError, match="unknown POI graph"):
        poi_graph(np.zeros((3, 2)), "grid")


# --- parcel features ------------------------------------------------------------------


@pytest.fixture
def tiny():
    """Three 100 m x 100 m parcels (1 ha): A has 2 a + 1 b, B has 1 a, C has none."""
    parcels = gpd.GeoDataFrame(
        {"parcel_id": [10, 11, 12]},
        geometry=[shapely.box(x, 0, x + 100, 100) for x in (0, 200, 400)],
        crs=CRS,
    )
    pts = [(10, 10, "a"), (20, 20, "a"), (30, 30, "b"), (210, 50, "a"), (1000, 1000, "b")]
    x, y, c = zip(*pts, strict=True)
    pois = gpd.GeoDataFrame({"category": c}, geometry=shapely.points(x, y), crs=CRS)
    emb = pd.DataFrame(
        [[1.0, 0.0], [0.0, 1.0]], index=pd.Index(["a", "b"], name="category"),
        columns=["emb_0", "emb_1"],
    )  # fmt: skip
    return parcels, pois, emb


def test_counts_density_and_empty_parcels(tiny) -> None:
    parcels, pois, emb = tiny
    f = parcel_poi_features(parcels, pois, emb)
    assert list(f["parcel_id"]) == [10, 11, 12]
    assert list(f["n_pois"]) == [3, 1, 0]
    assert list(f["n_a"]) == [2, 1, 0] and list(f["n_b"]) == [1, 0, 0]
    np.testing.assert_allclose(f["poi_density_ha"], [3.0, 1.0, 0.0])
    np.testing.assert_allclose(f.loc[0, ["emb_mean_0", "emb_mean_1"]], [2 / 3, 1 / 3], rtol=1e-6)
    assert (f.loc[2, [c for c in f.columns if c.startswith("emb_")]] == 0).all()


def test_tfidf_weights_by_hand(tiny) -> None:
    parcels, pois, emb = tiny
    f = parcel_poi_features(parcels, pois, emb)
    # N = 3 parcels; df(a) = 2, df(b) = 1; idf = ln((1 + N) / (1 + df)) + 1
    idf_a, idf_b = np.log(4 / 3) + 1, np.log(4 / 2) + 1
    wa, wb = 2 * idf_a, 1 * idf_b
    expected = np.array([wa, wb]) / (wa + wb)
    np.testing.assert_allclose(f.loc[0, ["emb_tfidf_0", "emb_tfidf_1"]], expected, rtol=1e-6)
    np.testing.assert_allclose(f.loc[1, ["emb_tfidf_0", "emb_tfidf_1"]], [1.0, 0.0])


def test_pois_in_lonlat_are_reprojected_to_the_parcels_crs(tiny) -> None:
    parcels, pois, emb = tiny
    f = parcel_poi_features(parcels, pois.to_crs("EPSG:4326"), emb)
    assert list(f["n_pois"]) == [3, 1, 0]


def test_features_without_embeddings_are_counts_only(tiny) -> None:
    parcels, pois, _ = tiny
    f = parcel_poi_features(parcels, pois, None)
    assert [c for c in f.columns if c.startswith("n_")] == ["n_pois", "n_a", "n_b"]
    assert not any(c.startswith("emb_") for c in f.columns)


def test_feature_options_categories_idf_and_column(tiny) -> None:
    parcels, pois, emb = tiny
    fixed = parcel_poi_features(parcels, pois, emb, ParcelFeatureOptions(categories=["b", "c"]))
    assert [c for c in fixed.columns if c.startswith("n_")] == ["n_pois", "n_b", "n_c"]
    # the same through keywords, a text list as on the CLI
    again = parcel_poi_features(parcels, pois, emb, categories="b,c")
    pd.testing.assert_frame_equal(fixed, again)
    flat = parcel_poi_features(parcels, pois, emb, idf={"a": 1.0, "b": 1.0})
    np.testing.assert_allclose(flat.loc[0, ["emb_tfidf_0", "emb_tfidf_1"]], [2 / 3, 1 / 3])
    with pytest.raises(OptionError, match="no column 'kind'") as info:
        parcel_poi_features(parcels, pois, emb, category_col="kind")
    assert info.value.field == "category_col"
    with pytest.raises(OptionError, match="duplicate") as info:
        parcel_poi_features(parcels, pois, emb, categories=["a", "a"])
    assert info.value.field == "categories"


# --- CLI ------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, quarters):
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(quarters.geometry.x.to_numpy(), quarters.geometry.y.to_numpy())
    poi = tmp_path / "pois.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "kind": quarters["category"]}).to_csv(poi, index=False)
    parcels = tmp_path / "parcels.parquet"
    gpd.GeoDataFrame(
        {"parcel_id": [1, 2, 3]},
        geometry=[
            shapely.box(500000, 3000000, 500200, 3000400),
            shapely.box(503000, 3000000, 503400, 3000400),
            shapely.box(501000, 3000000, 501100, 3000100),
        ],
        crs=CRS,
    ).to_parquet(parcels)
    return poi, parcels


def test_cli_embeds_then_builds_parcel_features(files, tmp_path, capsys) -> None:
    poi, parcels = files
    emb = tmp_path / "emb.parquet"
    args = ["poi-embed", "--poi", str(poi), "--category-col", "kind", "--dim", "4"]
    assert cli.main([*args, "--walks", "2", "--epochs", "1", "--out", str(emb)]) == 0
    assert pd.read_parquet(emb).shape == (6, 5)
    out = tmp_path / "features.parquet"
    code = cli.main(
        ["parcels", "features", str(parcels), "--poi", str(poi), "--category-col", "kind",
         "--embeddings", str(emb), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    f = pd.read_parquet(out)
    assert 0 < f["n_pois"].iloc[0] < 60 and f["n_pois"].iloc[1] == 60
    assert f["n_pois"].iloc[2] == 0 and "emb_tfidf_3" in f.columns
    assert "3 parcels" in capsys.readouterr().out


def test_cli_missing_category_column_is_one_line_exit_2(files, tmp_path, capsys) -> None:
    poi, _ = files
    code = cli.main(["poi-embed", "--poi", str(poi), "--out", str(tmp_path / "e.parquet")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no category column 'category'" in err


def test_cli_missing_embeddings_file_is_one_line_exit_2(files, tmp_path, capsys) -> None:
    poi, parcels = files
    code = cli.main(
        ["parcels", "features", str(parcels), "--poi", str(poi), "--category-col", "kind",
         "--embeddings", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "f.parquet")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "nope.parquet" in err and "does not exist" in err


def test_real_data_evaluation_skips_without_data(tmp_path, monkeypatch, capsys) -> None:
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "poi_landuse_eval.py"
    spec = importlib.util.spec_from_file_location("poi_landuse_eval", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DATA", tmp_path / "absent")
    monkeypatch.setattr("sys.argv", ["poi_landuse_eval.py"])
    assert module.main() == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "skipped" in json.loads(last)
