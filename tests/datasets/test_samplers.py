"""Chip samplers: random and Poisson-disk windows, and splits that do not leak."""

from __future__ import annotations

import itertools
import json

import geopandas as gpd
import pytest
import shapely
import yaml

from landforge.cli import main
from landforge.datasets.chips import build_chips, read_index, read_meta
from landforge.datasets.options import ChipOptions, PoissonSampler
from landforge.errors import OptionError
from landforge.synth.toy import make_toy_scene

X0, Y0 = 500_000, 3_500_000  # toy grid origin (EPSG:32650), 128 m square


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_toy_scene(tmp_path_factory.mktemp("scene"), size=128, seed=1)


@pytest.fixture(scope="module")
def parcels(tmp_path_factory):
    """Two parcels of the toy scene, written in another CRS (EPSG:4326)."""
    layer = gpd.GeoDataFrame(
        {"parcel_id": [1, 2]},
        geometry=[
            shapely.box(X0 + 5, Y0 + 5, X0 + 70, Y0 + 60),
            shapely.box(X0 + 80, Y0 + 70, X0 + 125, Y0 + 125),
        ],
        crs="EPSG:32650",
    ).to_crs("EPSG:4326")
    path = tmp_path_factory.mktemp("parcels") / "parcels.geojson"
    layer.to_file(path, driver="GeoJSON")
    return path


def _build(scene, out, opts=None, **kw):
    return build_chips(scene["image"], {"use": scene["use"]}, out, opts, **{"size": 32, **kw})


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


def test_poisson_centres_lie_in_parcels_reprojected(scene, parcels, tmp_path):
    store = _build(scene, tmp_path / "p", sampler="poisson", parcels=parcels, radius_m=20)
    index = read_index(store)
    assert len(index) >= 4
    meta = read_meta(store)
    assert meta["sampler"] == "poisson" and meta["radius_m"] == 20
    assert meta["min_inside"] == 0.25 and meta["max_per_parcel"] is None
    centres = index.geometry.centroid
    layer = gpd.read_file(parcels).to_crs("EPSG:32650")
    metric = layer.union_all().buffer(16.5)  # clip shift < 16 px
    assert metric.covers(centres).all()
    assert (index["row"] >= 0).all() and (index["row"] + 32 <= 128).all()
    # no chip in the big empty bottom-right/top-left corners far from both parcels
    far = shapely.box(X0 + 80, Y0, X0 + 128, Y0 + 40)
    assert not centres.within(far).any()


def test_the_sampler_is_one_option_in_any_spelling(scene, parcels, tmp_path):
    spellings = [
        {"sampler": "poisson", "radius_m": 20},  # flat, as the CLI flags
        {"sampler": {"method": "poisson", "radius_m": 20}},  # YAML mapping
        {"sampler": "poisson:radius_m=20"},  # text
        {"sampler": PoissonSampler(radius_m=20)},  # the model
    ]
    built = [ChipOptions.build(**kw) for kw in spellings]
    assert all(o == built[0] for o in built)
    assert built[0].sampler == PoissonSampler(radius_m=20.0) and built[0].radius_m is None
    assert str(built[0].sampler) == "poisson:radius_m=20.0"
    a = read_index(_build(scene, tmp_path / "a", parcels=parcels, **spellings[0]))
    b = read_index(_build(scene, tmp_path / "b", built[0], parcels=parcels))
    assert a["chip_id"].tolist() == b["chip_id"].tolist()
    # a sampler's own settings: at most one chip per parcel
    one = _build(scene, tmp_path / "c", sampler="poisson:max_per_parcel=1", parcels=parcels)
    assert len(read_index(one)) <= 2 and read_meta(one)["max_per_parcel"] == 1


def test_sampler_options_are_checked(scene, parcels, tmp_path):
    def field_of(**kw):
        with pytest.raises(OptionError) as err:
            _build(scene, tmp_path / "x", **kw)
        return err.value.field, err.value.problem

    assert field_of(sampler="poisson") == ("parcels", "the poisson sampler needs a parcels layer")
    assert field_of(parcels=parcels)[0] == "parcels"
    assert field_of(n_chips=4) == ("n_chips", "only applies to the random sampler, not 'grid'")
    assert field_of(sampler="random", radius_m=4)[0] == "radius_m"
    assert field_of(sampler="random", n_chips=0)[0] == "n_chips"
    assert field_of(sampler={"method": "random", "n_chips": 0})[0] == "sampler.random.n_chips"
    assert "unknown sampler 'hex'" in field_of(sampler="hex")[1]
    assert field_of(split="train=x")[0] == "split"
    assert field_of(split={"train": 0, "val": 0})[0] == "split"
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


def test_cli_poisson_sampler_keeps_its_flags(scene, parcels, tmp_path, capsys):
    out = tmp_path / "c"
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
            "poisson",
            "--parcels",
            str(parcels),
            "--radius-m",
            "20",
            "--split",
            "spatial",
            "--block-size",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    meta = read_meta(out)
    assert meta["sampler"] == "poisson" and meta["radius_m"] == 20
    assert meta["split"] == {"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 2}
    splits = ", ".join(f"{k} {v}" for k, v in sorted(meta["splits"].items()))
    assert capsys.readouterr().out.startswith(f"{out}: {meta['n_chips']} chips ({splits}), bands ")


def _pipeline(tmp_path, scene, **with_):
    path = tmp_path / "chips.yaml"
    step = {"image": str(scene["image"]), "labels": {"use": str(scene["use"])}, "size": 32}
    stages = [{"name": "chips", "type": "chips", "with": {**step, **with_}}]
    path.write_text(yaml.safe_dump({"name": "chips", "stages": stages}))
    return path


def test_pipeline_with_the_poisson_sampler(scene, parcels, tmp_path):
    split = {"train": 0.5, "val": 0.5, "block_size": 2}
    pipe = _pipeline(
        tmp_path,
        scene,
        sampler={"method": "poisson", "radius_m": 20},
        parcels=str(parcels),
        split=split,
        out="store",
    )
    assert main(["run", str(pipe), "--run-dir", str(tmp_path / "run")]) == 0
    store = tmp_path / "run" / "store"
    meta = read_meta(store)
    assert meta["sampler"] == "poisson" and meta["radius_m"] == 20
    assert meta["parcels"] == str(parcels.resolve())
    # the same chips as the Python call with the CLI's flat spelling
    ref = _build(
        scene, tmp_path / "ref", sampler="poisson", radius_m=20, parcels=parcels, split=split
    )
    assert read_index(store)["chip_id"].tolist() == read_index(ref)["chip_id"].tolist()
    stage = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["chips"]
    assert stage["config"]["sampler"] == {
        "method": "poisson",
        "radius_m": 20.0,
        "min_inside": 0.25,
        "max_per_parcel": None,
    }
    assert "radius_m" not in stage["config"]  # the flat shortcut is folded into sampler
    assert stage["summary"]["chips"] == meta["n_chips"]
    assert str(parcels) in stage["inputs"]  # hashed: a changed layer re-runs the stage


def test_errors_name_the_pipeline_field_and_the_cli_flag(scene, tmp_path, capsys):
    run = ["--run-dir", str(tmp_path / "run")]
    # found when the step is validated
    assert main(["run", str(_pipeline(tmp_path, scene, sampler={"method": "poisson"})), *run]) == 2
    err = capsys.readouterr().err
    assert "stages.chips.with.parcels: the poisson sampler needs a parcels layer" in err
    # found when the image is read
    assert main(["run", str(_pipeline(tmp_path, scene, bands=[9])), *run]) == 2
    assert "stages.chips.with.bands: image image.tif has bands 1..3" in capsys.readouterr().err
    cli = [
        "chips",
        "--image",
        str(scene["image"]),
        "--labels",
        f"use={scene['use']}",
        "--size",
        "32",
    ]
    assert main([*cli, "--bands", "9", "--out", str(tmp_path / "c")]) == 2
    assert "error: --bands: image image.tif has bands 1..3" in capsys.readouterr().err
    assert main([*cli, "--sampler", "random", "--radius-m", "5"]) == 2
    err = capsys.readouterr().err
    assert "error: --radius-m: only applies to the poisson sampler, not 'random'" in err
    assert main([*cli, "--split", "train=x"]) == 2
    assert "error: --split: expected 'spatial', 'none' or NAME=RATIO" in capsys.readouterr().err


def test_numpy_augmentation_matches_the_torch_dihedral():
    import torch

    from landforge.datasets.chip_dataset import _dihedral_np
    from landforge.training.augment import dihedral

    x = torch.arange(2 * 4 * 4).reshape(2, 4, 4)
    for k in range(8):
        got = torch.from_numpy(_dihedral_np(x.numpy(), k).copy())
        assert torch.equal(got, dihedral(x, k)), k
