"""Chip store: a scene cut into chips, indexed, split by blocks and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from landforge.datasets.chips import (
    ChipDataset,
    build_chips,
    load_chip,
    plot_chip,
    read_index,
    read_stats,
)
from landforge.datasets.options import ChipOptions
from landforge.errors import InputError, OptionError
from landforge.io.raster import RasterGrid, read_raster, write_cog
from landforge.synth.toy import make_toy_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_toy_scene(tmp_path_factory.mktemp("scene"), size=128, seed=1, nodata_corner=40)


@pytest.fixture(scope="module")
def store(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "chips"
    return build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        out,
        extras=[scene["poi"]],
        size=32,
        split={"train": 0.5, "val": 0.25, "test": 0.25, "block_size": 2},
        min_valid=0.5,
        seed=3,
    )


def test_store_layout_and_index(store, scene):
    assert {p.name for p in store.iterdir()} == {
        "index.parquet",
        "stats.json",
        "meta.json",
        "split_blocks.gpkg",
        "chips",
    }
    index = read_index(store)
    # 4x4 windows of 32 px; the nodata corner (40x40) leaves chip (0,0) with 0 % valid
    # and drops it, its neighbours keep >= 50 %.
    assert len(index) == 15
    assert (0, 0) not in set(zip(index["row"], index["col"], strict=True))
    assert index.crs.to_epsg() == 32650
    grid = RasterGrid.from_bounds(500_000, 3_500_000, 500_128, 3_500_128, 1.0, "EPSG:32650")
    for rec in index.itertuples():
        left, top = grid.transform @ (rec.col, rec.row)
        assert rec.geometry.bounds == pytest.approx((left, top - 32, left + 32, top))
        assert (store / rec.file).is_file()
    # class counts cover exactly the valid pixels of each chip
    fp_cols = [c for c in index.columns if c.startswith("footprint_")]
    assert fp_cols == ["footprint_0", "footprint_1"]
    assert np.allclose(index[fp_cols].sum(axis=1), index["valid_fraction"] * 32 * 32)
    assert {"use_0", "use_1", "use_2", "use_3"} <= set(index.columns)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["bands"] == ["red", "green", "blue", "poi_use"]
    assert meta["label_names"] == ["footprint", "use"]
    assert meta["gsd"] == 1.0 and "UTM" in meta["crs"]


def test_chips_match_the_source_rasters(store, scene):
    index = read_index(store)
    rec = index[index["valid_fraction"] == 1.0].iloc[0]
    chip = load_chip(store, rec["chip_id"])
    r, c = int(rec["row"]), int(rec["col"])
    image = read_raster(scene["image"])[:, r : r + 32, c : c + 32]
    poi = read_raster(scene["poi"])[:, r : r + 32, c : c + 32]
    assert chip["image"].shape == (4, 32, 32) and chip["image"].dtype == np.float32
    np.testing.assert_array_equal(chip["image"][:3], image)
    np.testing.assert_array_equal(chip["image"][3:], poi)
    np.testing.assert_array_equal(chip["use"], read_raster(scene["use"])[0, r : r + 32, c : c + 32])
    partial = index[index["valid_fraction"] < 1.0].iloc[0]
    assert load_chip(store, partial["chip_id"])["valid"].mean() == pytest.approx(
        partial["valid_fraction"]
    )


def test_a_subset_of_image_bands(scene, tmp_path):
    store = build_chips(
        scene["image"],
        {"footprint": scene["footprint"]},
        tmp_path / "s",
        extras=[scene["poi"]],
        bands=[3, 1],
        size=64,
    )
    assert read_stats(store)["bands"] == ["blue", "red", "poi_use"]
    index = read_index(store)
    chip = load_chip(store, index.at[len(index) - 1, "chip_id"])
    image = read_raster(scene["image"])[:, 64:, 64:]
    np.testing.assert_array_equal(chip["image"][:2], image[[2, 0]])
    with pytest.raises(InputError, match="bands 1..3"):
        build_chips(
            scene["image"], {"footprint": scene["footprint"]}, tmp_path / "t", bands=[4], size=64
        )


def test_split_blocks_are_whole_and_disjoint(store):
    index = read_index(store)
    assert set(index["split"]) == {"train", "val", "test"}
    per_block = index.groupby(["block_row", "block_col"])["split"].nunique()
    assert (per_block == 1).all()  # a block never straddles two splits
    assert len(per_block) == 4  # 2x2 blocks of 2x2 chips
    # blocks are 2x2 chips of 32 px
    assert list(index["block_row"]) == [r // 64 for r in index["row"]]


def test_same_seed_same_split_other_seed_other_split(scene, tmp_path):
    def splits(seed):
        store = build_chips(
            scene["image"],
            {"footprint": scene["footprint"]},
            tmp_path / f"s{seed}",
            size=16,
            split={"train": 0.5, "val": 0.5, "block_size": 1},
            seed=seed,
        )
        return list(read_index(store)["split"])

    first = splits(0)
    assert first == splits(0)
    assert first != splits(1)
    assert abs(first.count("train") - first.count("val")) <= 1


def _train_pixels(store, image):
    """(bands, n) float64 of the valid image pixels under the training chips, each once."""
    index = read_index(store)
    covered = np.zeros(image.shape[1:], bool)
    for rec in index[index["split"] == "train"].itertuples():
        covered[rec.row : rec.row + rec.height, rec.col : rec.col + rec.width] = True
    valid = (image != 0).all(axis=0) & covered
    return image[:, valid]


def test_stats_are_over_valid_pixels_of_the_training_chips(store, scene):
    stats = read_stats(store)
    image = read_raster(scene["image"]).astype(np.float64)
    train = _train_pixels(store, image)
    assert stats["split"] == "train"
    assert stats["chips"] == int((read_index(store)["split"] == "train").sum())
    assert stats["valid_pixels"] == train.shape[1]
    assert stats["valid_pixels"] < int((image != 0).all(axis=0).sum())  # not the whole raster
    np.testing.assert_allclose(stats["mean"][:3], train.mean(axis=1))
    np.testing.assert_allclose(stats["std"][:3], train.std(axis=1))
    np.testing.assert_allclose(stats["p98"][:3], np.percentile(train, 98, axis=1))
    assert stats["bands"][3] == "poi_use"
    assert json.loads((store / "meta.json").read_text())["stats_split"] == "train"


def test_val_and_test_pixels_do_not_change_the_stats(store, scene, tmp_path):
    """A store whose val/test chips hold very different values: the same statistics."""
    import shutil

    import rasterio

    index = read_index(store)
    odd = tmp_path / "image.tif"
    shutil.copy(scene["image"], odd)
    with rasterio.open(odd, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        image = dst.read()
        for rec in index[index["split"] != "train"].itertuples():
            image[:, rec.row : rec.row + 32, rec.col : rec.col + 32] = 250
        train = _train_pixels(store, image.astype(np.float64))
        dst.write(image)
    other = build_chips(
        odd,
        {"footprint": scene["footprint"], "use": scene["use"]},
        tmp_path / "chips",
        extras=[scene["poi"]],
        size=32,
        split={"train": 0.5, "val": 0.25, "test": 0.25, "block_size": 2},
        min_valid=0.5,
        seed=3,
    )
    assert read_index(other)["split"].tolist() == index["split"].tolist()
    assert read_stats(other) == read_stats(store)
    # ... and equal to the statistics of the training chips alone
    np.testing.assert_allclose(read_stats(other)["mean"][:3], train.mean(axis=1))
    assert not np.allclose(read_stats(other)["mean"][:3], (image[:, image.all(axis=0)]).mean(1))


def test_split_blocks_are_written_as_polygons_beside_the_chips(store):
    import geopandas as gpd

    blocks = gpd.read_file(store / "split_blocks.gpkg")
    index = read_index(store)
    assert blocks.crs == index.crs
    assert list(blocks.columns) == ["block_row", "block_col", "split", "n_chips", "geometry"]
    assert len(blocks) == 4 and set(blocks["split"]) == set(index["split"])
    # 2x2 chips of 32 px per block: 64 m squares tiling the 128 m raster
    assert blocks.area.tolist() == [64.0 * 64.0] * 4
    assert blocks.union_all().bounds == (500_000, 3_500_000, 500_128, 3_500_128)
    assert blocks["n_chips"].sum() == len(index)
    for rec in index.itertuples():  # every chip lies in a block of its own split
        holder = blocks[blocks.contains(rec.geometry.centroid)]
        assert holder["split"].tolist() == [rec.split]
        assert holder.geometry.iloc[0].covers(rec.geometry)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["split_blocks"]["file"] == "split_blocks.gpkg"
    assert meta["split_blocks"]["block_px"] == 64
    assert sum(meta["split_blocks"]["blocks"].values()) == 4


def test_split_blocks_of_random_chips_hold_only_their_split(scene, tmp_path):
    import geopandas as gpd

    store = build_chips(
        scene["image"],
        {"footprint": scene["footprint"]},
        tmp_path / "s",
        size=16,
        sampler="random",
        n_chips=60,
        split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 2},
        seed=2,
    )
    blocks = gpd.read_file(store / "split_blocks.gpkg")
    index = read_index(store)
    for name in set(index["split"]):
        area = blocks[blocks["split"] == name].union_all()
        assert index[index["split"] == name].geometry.covered_by(area).all()
    assert blocks["n_chips"].sum() == len(index)


def test_dataset_returns_normalised_tensors(store):
    ds = ChipDataset(store, split="train")
    assert len(ds) == (read_index(store)["split"] == "train").sum()
    sample = ds[0]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (4, 32, 32)
    assert sample["footprint"].dtype == torch.int64 and sample["footprint"].shape == (32, 32)
    whole = ChipDataset(store, split=None, normalise=True)
    images = torch.stack([whole[i]["image"] for i in range(len(whole))])
    # over the fully valid pixels the normalised bands are roughly standardised
    assert images.mean().abs() < 0.5
    partial = [i for i in range(len(whole)) if whole.index.at[i, "valid_fraction"] < 1]
    s = whole[partial[0]]
    assert (s["use"] == -100).any() and (s["image"][:, s["use"] == -100] == 0).all()


def test_plot_chip_returns_a_figure(store):
    ds = ChipDataset(store, split=None)
    fig = ds.plot(ds[0], title="chip")
    assert len(fig.axes) == 3
    fig2 = plot_chip(load_chip(store, ds.index.at[0, "chip_id"]), stats=read_stats(store))
    assert len(fig2.axes) == 3


def test_extra_on_another_grid_is_named(scene, tmp_path):
    grid = RasterGrid.from_bounds(500_000, 3_500_000, 500_064, 3_500_064, 1.0, "EPSG:32650")
    bad = write_cog(tmp_path / "poi_small.tif", np.zeros((64, 64), np.float32), grid)
    with pytest.raises(InputError, match="poi_small.tif"):
        build_chips(scene["image"], {"footprint": scene["footprint"]}, tmp_path / "s", extras=[bad])
    assert not (tmp_path / "s").exists()


def test_bad_options_raise_input_error(scene, tmp_path):
    labels = {"footprint": scene["footprint"]}
    with pytest.raises(InputError, match="smaller than one"):
        build_chips(scene["image"], labels, tmp_path / "s", size=512)
    with pytest.raises(InputError, match="one band"):
        build_chips(scene["image"], {"x": scene["image"]}, tmp_path / "s", size=64)


@pytest.mark.parametrize(
    ("kw", "field", "problem"),
    [
        ({"sampler": "poisson"}, "parcels", "needs a parcels layer"),
        ({"size": 0}, "size", "greater than or equal to 1"),
        ({"stride": 0}, "stride", "greater than or equal to 1"),
        ({"min_valid": 1.5}, "min_valid", "less than or equal to 1"),
        ({"size": 64, "stride": 200, "min_valid": 0.9}, "min_valid", "90% valid pixels"),
        ({"size": 64, "bands": []}, "bands", "has bands 1..3"),
        ({"block_size": 0}, "block_size", "greater than or equal to 1"),
        ({"labels": {}}, "labels", "at least one label"),
        ({"labels": {"valid": "x.tif"}}, "labels", "other than image/valid"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_bad_options_name_their_field(scene, tmp_path, kw, field, problem):
    labels = kw.pop("labels", {"footprint": scene["footprint"]})
    with pytest.raises(OptionError, match=problem) as err:
        build_chips(scene["image"], labels, tmp_path / "s", **kw)
    assert err.value.field == field
    assert not (tmp_path / "s").exists()


def test_options_model_and_overrides(scene, tmp_path):
    opts = ChipOptions(size=64, split="spatial", block_size=1)
    a = build_chips(scene["image"], {"footprint": scene["footprint"]}, tmp_path / "a", opts)
    b = build_chips(
        scene["image"],
        {"footprint": scene["footprint"]},
        tmp_path / "b",
        {"size": 64, "split": {"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 1}},
    )
    assert read_index(a)["split"].tolist() == read_index(b)["split"].tolist()
    meta = json.loads((a / "meta.json").read_text())
    assert meta["split"] == {"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 1}
    c = build_chips(
        scene["image"], {"footprint": scene["footprint"]}, tmp_path / "c", opts, size=32
    )
    assert json.loads((c / "meta.json").read_text())["size"] == 32 and opts.size == 64
