"""Spatially blocked splits: whole blocks and whole groups per subset, near the ratios,
stratified by class, seeded."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from landforge.datasets.split_options import SplitOptions
from landforge.datasets.splits import (
    assign_blocks,
    block_split,
    feature_blocks,
    normalise_ratios,
    split_report,
    split_windows,
)
from landforge.errors import InputError, OptionError

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_000_000.0


def city(n: int = 3000, blocks: int = 20, block_m: float = 100.0, share_b: float = 0.2, seed=1):
    """Points over ``blocks`` x ``blocks`` cells; each cell holds one class (A or B),
    and each run of three points shares a parcel."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, blocks * block_m, n)
    y = rng.uniform(0, blocks * block_m, n)
    is_b = rng.random((blocks, blocks)) < share_b
    cls = np.where(is_b[(x // block_m).astype(int), (y // block_m).astype(int)], "B", "A")
    return gpd.GeoDataFrame(
        {"label": cls, "parcel_id": np.arange(n) // 3},
        geometry=shapely.points(X0 + x, Y0 + y),
        crs=CRS,
    )


def test_blocks_go_wholly_to_one_subset_near_the_ratios() -> None:
    gdf = city()
    split = block_split(gdf, block_size_m=100)
    assert split.index.equals(gdf.index) and split.name == "split"
    blocks = feature_blocks(gdf, 100)
    assert (split.groupby(blocks).nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.02)
    assert shares["val"] == pytest.approx(0.2, abs=0.02)
    assert shares["test"] == pytest.approx(0.2, abs=0.02)


def test_a_group_never_straddles_subsets() -> None:
    gdf = city()
    # parcels of three scattered points cross block borders all the time
    split = block_split(gdf, block_size_m=100, group_col="parcel_id", seed=4)
    assert (split.groupby(gdf["parcel_id"]).nunique() == 1).all()
    blocks = feature_blocks(gdf, 100, group_col="parcel_id")
    assert (blocks.groupby(gdf["parcel_id"]).nunique() == 1).all()
    assert (split.groupby(blocks).nunique() == 1).all()


def test_group_majority_block_wins() -> None:
    pts = [(10, 10), (20, 20), (150, 10), (150, 150)]
    gdf = gpd.GeoDataFrame(
        {"g": [1, 1, 1, None]},
        geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in pts],
        crs=CRS,
    )
    blocks = feature_blocks(gdf, 100, group_col="g")
    assert blocks.iloc[0] == blocks.iloc[1] == blocks.iloc[2] != blocks.iloc[3]


def test_stratified_split_keeps_class_shares_closer_than_unstratified() -> None:
    gdf = city(share_b=0.15)
    overall = (gdf["label"] == "B").mean()

    def worst(strata, seed):
        split = block_split(gdf, block_size_m=100, strata_col=strata, seed=seed)
        report = split_report(split, gdf["label"])
        return float((report.loc[["train", "val", "test"], "class:B"] - overall).abs().max())

    plain = [worst(None, s) for s in range(5)]
    strat = [worst("label", s) for s in range(5)]
    assert max(strat) < 0.02
    assert np.mean(strat) < 0.5 * np.mean(plain)


def test_same_seed_same_split_other_seed_other_split() -> None:
    gdf = city(n=800)
    first = block_split(gdf, block_size_m=100, strata_col="label", seed=3)
    assert first.equals(block_split(gdf, block_size_m=100, strata_col="label", seed=3))
    assert not first.equals(block_split(gdf, block_size_m=100, strata_col="label", seed=4))


def test_tiles_as_blocks_and_points_outside_go_to_the_nearest_tile() -> None:
    tiles = gpd.GeoDataFrame(
        geometry=[
            shapely.box(X0, Y0, X0 + 500, Y0 + 500),
            shapely.box(X0 + 500, Y0, X0 + 1000, Y0 + 500),
        ],
        crs=CRS,
    )
    pts = [(100, 100), (600, 100), (1200, 100), (-50, 250)]
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in pts], crs=CRS)
    assert feature_blocks(gdf, tiles=tiles).tolist() == ["t0", "t1", "t1", "t0"]
    split = block_split(gdf, ratios={"train": 0.5, "test": 0.5}, tiles=tiles)
    assert split.iloc[0] == split.iloc[3] != split.iloc[1] == split.iloc[2]


def test_geographic_layers_are_blocked_in_metres() -> None:
    gdf = city(n=500).to_crs(4326)
    split = block_split(gdf, block_size_m=100)
    assert set(split) == {"train", "val", "test"}


def test_assign_blocks_serves_every_subset_and_balances_sizes() -> None:
    assert sorted(assign_blocks(np.ones(3))) == ["test", "train", "val"]
    names = assign_blocks(np.ones(100), {"a": 0.7, "b": 0.3}, seed=2)
    assert (names == "a").sum() == 70
    sizes = np.random.default_rng(0).integers(1, 50, 200)
    names = assign_blocks(sizes, seed=1)
    got = {k: sizes[names == k].sum() / sizes.sum() for k in ("train", "val", "test")}
    assert got == pytest.approx({"train": 0.6, "val": 0.2, "test": 0.2}, abs=0.01)
    zero = assign_blocks(np.ones(10), {"train": 1.0, "val": 0.0})
    assert set(zero) == {"train"}


def test_chip_windows_split_by_blocks_of_positions() -> None:
    rows, cols = np.meshgrid(np.arange(0, 320, 32), np.arange(0, 320, 32), indexing="ij")
    frame = split_windows(rows.ravel(), cols.ravel(), stride=32, block_size=2, seed=0)
    assert frame["block_row"].max() == 4 and frame["block_col"].max() == 4
    assert (frame.groupby(["block_row", "block_col"])["split"].nunique() == 1).all()
    assert frame.groupby(["block_row", "block_col"]).size().eq(4).all()
    assert set(frame["split"]) == {"train", "val", "test"}
    again = split_windows(rows.ravel(), cols.ravel(), stride=32, block_size=2, seed=0)
    assert frame.equals(again)


def test_report_has_counts_shares_and_an_all_row() -> None:
    split = pd.Series(["train", "train", "val", "test", "train"])
    labels = pd.Series(["a", "b", "a", None, "a"])
    report = split_report(split, labels)
    assert list(report.index) == ["train", "val", "test", "all"]
    assert report.loc["train", "n"] == 3 and report.loc["all", "share"] == 1.0
    assert report.loc["train", "class:a"] == pytest.approx(2 / 3)
    assert report.loc["test", "class:<missing>"] == 1.0


def test_bad_inputs_raise_input_error() -> None:
    gdf = city(n=50)
    with pytest.raises(InputError, match="negative"):
        normalise_ratios({"train": -1})
    with pytest.raises(InputError, match="positive ratio"):
        normalise_ratios({"train": 0})
    with pytest.raises(OptionError, match="strata_col: features has no column 'nope'"):
        block_split(gdf, strata_col="nope")
    with pytest.raises(OptionError, match="group_col"):
        block_split(gdf, group_col="nope")
    with pytest.raises(OptionError, match="block_size_m"):
        block_split(gdf, block_size_m=0)
    with pytest.raises(OptionError, match="block_size_m"):
        feature_blocks(gdf, block_size_m=0)
    with pytest.raises(InputError, match="CRS"):
        block_split(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)]))


def test_ratios_from_text_or_a_mapping() -> None:
    assert SplitOptions(ratios="a=1,b=3").ratios == {"a": 1.0, "b": 3.0}
    assert SplitOptions(ratios="0.7,0.3").ratios == {"train": 0.7, "val": 0.3}
    assert SplitOptions().ratios == {"train": 0.6, "val": 0.2, "test": 0.2}
    for bad in ("0.5,b=0.5", "x", "-1", "0,0", "1,1,1,1", {"train": "many"}):
        with pytest.raises(OptionError) as err:
            SplitOptions.build(ratios=bad)
        assert err.value.field == "ratios"


def test_cli_adds_a_split_column(tmp_path, capsys) -> None:
    from landforge.cli import main

    src = tmp_path / "features.parquet"
    city(n=600).to_parquet(src)
    out = tmp_path / "split.parquet"
    args = ["split", str(src), "--block-size-m", "200", "--strata-col", "label"]
    args += ["--group-col", "parcel_id", "--ratios", "0.7,0.3", "--out", str(out)]
    assert main(args) == 0
    got = gpd.read_parquet(out)
    assert set(got["split"]) == {"train", "val"} and len(got) == 600
    printed = capsys.readouterr().out
    assert "class:B" in printed and "600 features split" in printed
    assert main(["split", str(src), "--out", str(tmp_path / "split.gpkg")]) == 0
    for bad, flag in (
        (["--ratios", "x"], "--ratios"),
        (["--ratios", "-1"], "--ratios"),
        (["--strata-col", "nope"], "--strata-col"),
        (["--block-size-m", "0"], "--block-size-m"),
        (["--out", str(tmp_path / "x.csv")], "--out"),
    ):
        capsys.readouterr()
        assert main(["split", str(src), "--out", str(tmp_path / "e.parquet"), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {flag}: ") and len(err.splitlines()) == 1, err
