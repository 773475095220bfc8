"""Chip samplers: random and Poisson-disk windows, and splits that do not leak."""

from __future__ import annotations

import itertools
import json

import geopandas as gpd
import pytest
import shapely

from landforge.cli import main
from landforge.datasets.chips import build_chips, read_index, read_meta
from landforge.errors import InputError
from landforge.training.toy import make_toy_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_toy_scene(tmp_path_factory.mktemp("scene"), size=128, seed=1)


def _build(scene, out, **kw):
    return build_chips(scene["image"], {"use": scene["use"]}, out, size=32, **kw)


def test_random_windows_are_seeded_and_as_many_as_the_grid(scene, tmp_path):
    a = read_index(_build(scene, tmp_path / "a", sampler="random", seed=3))
    b = read_index(_build(scene, tmp_path / "b", sampler="random", seed=3))
    c = read_index(_build(scene, tmp_path / "c", sampler="random", seed=4))
    assert len(a) <= 16 and len(a) >= 12  # 16 drawn, duplicates dropped
    assert a["chip_id"].tolist() == b["chip_id"].tolist() != c["chip_id"].tolist()
    assert (a["row"] + 32 <= 128).all() and (a["col"] + 32 <= 128).all()
    grid = read_index(_build(scene, tmp_path / "g"))
    assert set(a["chip_id"]) != set(grid["chip_id"])  # not just the grid again
    n = read_index(_build(scene, tmp_path / "n", sampler="random", n_chips=5))
    assert len(n) == 5
    assert read_meta(tmp_path / "n")["sampler"] == "random"


def _pairs_overlap(index):
    geoms = index.geometry.values
    for i, j in itertools.combinations(range(len(index)), 2):
        other = index["split"].iat[i] != index["split"].iat[j]
        if other and shapely.area(shapely.intersection(geoms[i], geoms[j])) > 0:
            return True
    return False


def test_random_split_keeps_blocks_whole_and_drops_straddling_chips(scene, tmp_path):
    split = {"train": 0.5, "val": 0.25, "test": 0.25, "block_size": 1}
    store = _build(scene, tmp_path / "s", sampler="random", n_chips=60, split=split)
    index = read_index(store)
    meta = read_meta(store)
    assert meta["dropped_straddling"] > 0
    assert len(index) + meta["dropped_straddling"] <= 60
    # one split per block, a chip in the block of its centre
    assert (index.groupby(["block_row", "block_col"])["split"].nunique() == 1).all()
    assert ((index["row"] + 16) // 32 == index["block_row"]).all()
    assert not _pairs_overlap(index)
    # the files of dropped chips are gone too
    assert len(list((store / "chips").glob("*.npz"))) == len(index)


def test_poisson_centres_lie_in_parcels_reprojected(scene, tmp_path):
    x0, y0 = 500_000, 3_500_000  # toy grid origin (EPSG:32650), 128 m square
    parcels = gpd.GeoDataFrame(
        {"parcel_id": [1, 2]},
        geometry=[
            shapely.box(x0 + 5, y0 + 5, x0 + 70, y0 + 60),
            shapely.box(x0 + 80, y0 + 70, x0 + 125, y0 + 125),
        ],
        crs="EPSG:32650",
    ).to_crs("EPSG:4326")
    path = tmp_path / "parcels.geojson"
    parcels.to_file(path, driver="GeoJSON")
    store = _build(scene, tmp_path / "p", sampler="poisson", parcels=path, radius_m=20)
    index = read_index(store)
    assert len(index) >= 4
    meta = read_meta(store)
    assert meta["sampler"] == "poisson" and meta["radius_m"] == 20
    centres = index.geometry.centroid
    metric = parcels.to_crs("EPSG:32650").union_all().buffer(16.5)  # clip shift < 16 px
    assert metric.covers(centres).all()
    assert (index["row"] >= 0).all() and (index["row"] + 32 <= 128).all()
    # no chip in the big empty bottom-right/top-left corners far from both parcels
    far = shapely.box(x0 + 80, y0, x0 + 128, y0 + 40)
    assert not centres.within(far).any()


def test_sampler_options_are_checked(scene, tmp_path):
    with pytest.raises(InputError, match="needs a parcels layer"):
        _build(scene, tmp_path / "x", sampler="poisson")
    with pytest.raises(InputError, match="--n-chips"):
        _build(scene, tmp_path / "x", n_chips=4)
    with pytest.raises(InputError, match="unknown sampler 'hex'"):
        _build(scene, tmp_path / "x", sampler="hex")
    assert not (tmp_path / "x").exists()


def test_cli_random_sampler(scene, tmp_path, capsys):
    rc = main(
        [
            "chips",
            "--image",
            str(scene["image"]),
            "--labels",
            f"use={scene['use']}",
            "--size",
            "32",
            "--sampler",
            "random",
            "--n-chips",
            "6",
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0
    assert "6 chips" in capsys.readouterr().out
    assert json.loads((tmp_path / "c" / "meta.json").read_text())["n_chips_requested"] == 6
    rc = main(
        [
            "chips",
            "--image",
            str(scene["image"]),
            "--labels",
            f"use={scene['use']}",
            "--sampler",
            "poisson",
            "--out",
            str(tmp_path / "d"),
        ]
    )
    assert rc == 2
    assert "--parcels" in capsys.readouterr().err


def test_numpy_augmentation_matches_the_torch_dihedral():
    import torch

    from landforge.datasets.chips import _dihedral_np
    from landforge.training.augment import dihedral

    x = torch.arange(2 * 4 * 4).reshape(2, 4, 4)
    for k in range(8):
        got = torch.from_numpy(_dihedral_np(x.numpy(), k).copy())
        assert torch.equal(got, dihedral(x, k)), k
