"""Scene clusters by mean-shift, balanced samples, contact sheets and similar patches."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from curate_helpers import write_frame
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from landforge.cli import main
from landforge.curate.cluster import balanced_sample, cluster_features, cluster_patches
from landforge.curate.options import ClusterOptions
from landforge.curate.similar import similar_patches
from landforge.curate.tiles import tile_frames
from landforge.errors import OptionError


def test_mean_shift_recovers_well_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 6, [10.0] * 6, [0, 10, 0, 10, 0, 10]])
    sizes = [40, 25, 10]
    x = np.concatenate(
        [c + rng.normal(0, 0.5, (n, 6)) for c, n in zip(centres, sizes, strict=True)]
    )
    truth = np.repeat([0, 1, 2], sizes)
    labels, bandwidth = cluster_features(x, ClusterOptions(quantile=0.2))
    assert bandwidth > 0
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.array_equal(labels, truth)  # renumbered by size: 0 is the largest


def test_balanced_sample_draws_n_per_cluster():
    clusters = np.repeat([0, 1, 2], [50, 7, 2])
    rows = balanced_sample(clusters, 5, seed=1)
    assert np.bincount(clusters[rows]).tolist() == [5, 5, 2]
    assert np.array_equal(rows, balanced_sample(clusters, 5, seed=1))


@pytest.fixture(scope="module")
def patches(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiles") / "patches.parquet"
    tile_frames([frame[0]], out, [frame[1]], size=32, bins=2)
    return out


def test_texture_clusters_split_the_two_scenes(patches, tmp_path):
    rep = cluster_patches(
        patches, tmp_path / "c.parquet", features="texture", report=tmp_path / "c.json",
        sheet=tmp_path / "c.png", sample=tmp_path / "s.parquet", sample_per_cluster=3,
        examples=2, thumb=16, max_clusters_shown=3,
    )  # fmt: skip
    table = gpd.read_parquet(tmp_path / "c.parquet")
    smooth = table["col"] < 64
    assert rep["n_clusters"] >= 2
    # no cluster mixes the smooth half with the textured half
    for _, group in table.groupby("cluster"):
        assert (group["col"] < 64).nunique() == 1
    assert table.loc[smooth, "cluster"].nunique() >= 1
    saved = json.loads((tmp_path / "c.json").read_text())
    assert sum(saved["sizes"].values()) == 16 == rep["n_patches"]
    sample = gpd.read_parquet(tmp_path / "s.parquet")
    assert (sample.groupby("cluster").size() <= 3).all()
    with Image.open(tmp_path / "c.png") as png:
        assert png.size[0] > 50


def test_similar_patches_inside_the_dataset_and_for_a_new_image(patches, tmp_path):
    found = similar_patches(patches, patches=["frame_r000064_c000000"], k=3, features="combined")
    assert list(found["rank"]) == [1, 2, 3]
    assert "frame_r000064_c000000" not in set(found["patch_id"])
    assert (found["col"] < 64).all()  # smooth, class-1 patches are nearest
    assert found["distance"].is_monotonic_increasing
    other = write_frame(tmp_path, name="new", size=64, seed=5)
    new = similar_patches(
        patches, image=other[0], k=2, features="texture", out=tmp_path / "s.parquet"
    )
    assert new["query_id"].nunique() == 4
    for qid, group in new.groupby("query_id"):
        col = int(qid.rsplit("_c", 1)[1])
        assert ((group["col"] < 64) == (col < 32)).all()  # same texture, same half
    assert len(gpd.read_parquet(tmp_path / "s.parquet")) == 8
    with pytest.raises(OptionError, match="unknown patch id"):
        similar_patches(patches, patches=["nope"])
    with pytest.raises(OptionError, match="labels"):
        similar_patches(patches, image=other[0], features="combined")


def test_cli_tiles_cluster_similar(frame, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    image, labels = frame
    assert (
        main(
            [
                "curate",
                "tiles",
                "--image",
                str(image),
                "--labels",
                str(labels),
                "--size",
                "32",
                "--bins",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "curate",
                "cluster",
                "--tiles",
                "patches.parquet",
                "--features",
                "label",
                "--sheet",
                "none",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "curate",
                "similar",
                "--tiles",
                "clusters.parquet",
                "--patches",
                "frame_r000000_c000000",
                "--k",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "16 patches" in out and "clusters" in out and "frame_r000000_c000000:" in out
    assert not (tmp_path / "clusters.png").exists()
    # a label feature set on a table without labels: one error line, exit 2, nothing written
    assert (
        main(["curate", "tiles", "--image", str(image), "--size", "32", "--out", "t.parquet"]) == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "curate",
                "cluster",
                "--tiles",
                "t.parquet",
                "--features",
                "label",
                "--out",
                "x.parquet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --features:")
    assert not (tmp_path / "x.parquet").exists()
