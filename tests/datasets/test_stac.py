"""A chip store exported as a STAC catalog: valid (label + ML-AOI), and read back the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
from pystac.validation import JsonSchemaSTACValidator, set_validator
from typer.testing import CliRunner

from landforge.cli import app
from landforge.datasets.chip_store import load_chip, read_index, read_meta
from landforge.datasets.chip_writer import build_chips
from landforge.datasets.export import export_dataset, import_dataset
from landforge.datasets.stac import LABEL_EXTENSION, ML_AOI_EXTENSION
from landforge.errors import InputError, OptionError
from landforge.synth.toy import make_toy_scene

SCHEMAS = Path(__file__).parent / "stac_schemas"


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's validator with the vendored extension schemas; never fetches a schema."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache[LABEL_EXTENSION] = json.loads((SCHEMAS / "label-v1.0.1.json").read_text())
        self.schema_cache[ML_AOI_EXTENSION] = json.loads(
            (SCHEMAS / "ml-aoi-v0.2.0.json").read_text()
        )

    def _get_schema(self, schema_uri: str):
        if schema_uri not in self.schema_cache:
            raise AssertionError(f"validation would fetch {schema_uri}")
        return self.schema_cache[schema_uri]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_toy_scene(tmp_path_factory.mktemp("scene"), size=96, seed=2, nodata_corner=24)


@pytest.fixture(scope="module")
def store(scene, tmp_path_factory):
    return build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        tmp_path_factory.mktemp("store") / "chips",
        size=32,
        split={"train": 0.5, "val": 0.25, "test": 0.25, "block_size": 1},
        min_valid=0.3,
        seed=1,
    )


@pytest.fixture(scope="module")
def catalog(store, scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("stac") / "catalog"
    export_dataset(
        store, out, format="stac", taxonomies={"use": "rci"}, datetime="2020-05-01T10:00:00Z",
        map_path=scene["use"],
    )  # fmt: skip
    return out


def test_catalog_validates_offline_with_label_and_ml_aoi(catalog):
    set_validator(OfflineValidator())
    try:
        cat = pystac.Catalog.from_file(str(catalog / "catalog.json"))
        cat.validate_all()
        items = list(cat.get_items(recursive=True))
        chip = next(i for i in items if i.collection_id == "chips")
        # the item is checked against the extension schemas, not only the core one
        assert set(chip.validate()) >= {LABEL_EXTENSION, ML_AOI_EXTENSION}
        broken = chip.to_dict()
        broken["properties"]["ml-aoi:split"] = "holdout"
        with pytest.raises(pystac.STACValidationError):
            pystac.validation.validate_dict(broken)
    finally:
        set_validator(JsonSchemaSTACValidator())


def test_catalog_content(catalog, store):
    cat = pystac.Catalog.from_file(str(catalog / "catalog.json"))
    items = {i.id: i for i in cat.get_items(recursive=True)}
    index = read_index(store)
    chips = [items[c] for c in index["chip_id"]]
    first = chips[0].properties
    assert first["label:type"] == "raster"
    assert first["label:tasks"] == ["segmentation"]
    assert [c["name"] for c in first["label:classes"]] == [None, None]
    # class counts are the store's, named by the taxonomy (rci codes for use)
    use = next(o for o in first["label:overviews"] if o["property_key"] == "use")
    row = index.iloc[0]
    assert {c["name"]: c["count"] for c in use["counts"]} == {
        name: int(row[f"use_{v}"]) for v, name in [(0, "0"), (1, "R"), (2, "C"), (3, "I")]
    }
    splits = {i.properties["ml-aoi:split"] for i in chips}
    assert splits == {"train", "validate", "test"}
    # chips as COGs, and a source link to the image item
    href = chips[0].assets["image"].get_absolute_href()
    with open(href, "rb") as f:
        assert f.read(4) in (b"II*\x00", b"II+\x00")
    assert chips[0].get_single_link("source").get_target_str().endswith("image.json")
    # the predicted map as an automated label item with class counts
    pred = items["prediction"].properties
    assert pred["label:methods"] == ["automated"]
    assert sum(c["count"] for c in pred["label:overviews"][0]["counts"]) > 0


def test_round_trip_gives_the_same_store(catalog, store, tmp_path):
    back = import_dataset(catalog, tmp_path / "back", format="stac")
    a, b = read_index(store), read_index(back)
    assert list(a["chip_id"]) == list(b["chip_id"])
    assert list(a["split"]) == list(b["split"])
    cols = [c for c in a.columns if c.startswith(("footprint_", "use_"))]
    assert (a[cols].to_numpy() == b[cols].to_numpy()).all()
    assert np.allclose(a["valid_fraction"], b["valid_fraction"])
    assert a.geometry.geom_equals_exact(b.geometry, 1e-6).all()
    for chip_id in a["chip_id"]:
        x, y = load_chip(store, chip_id), load_chip(back, chip_id)
        assert set(x) == set(y)
        for key in x:
            assert np.array_equal(x[key], y[key]) and x[key].dtype == y[key].dtype
    assert read_meta(back)["label_names"] == ["footprint", "use"]
    assert (back / "split_blocks.gpkg").is_file()


@pytest.mark.parametrize("href", ["../outside.json", "/etc/passwd"])
def test_reader_refuses_hrefs_leaving_the_catalog(catalog, tmp_path, href):
    copy = tmp_path / "cat"
    shutil.copytree(catalog, copy)
    coll = copy / "chips" / "collection.json"
    data = json.loads(coll.read_text())
    link = next(link for link in data["links"] if link["rel"] == "item")
    link["href"] = href
    coll.write_text(json.dumps(data))
    with pytest.raises(InputError, match="refused"):
        import_dataset(copy, tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_cli_export_import_and_bad_input(store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(
        app, ["dataset", "export", str(store), "--out", "cat", "--datetime", "2020-06-01"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["dataset", "import", "cat", "--out", "back"])
    assert res.exit_code == 0, res.output
    assert "train" in res.output
    from landforge.cli import main

    capsys.readouterr()
    for argv, named in [
        ([str(store), "--out", "x", "--datetime", "yesterday"], "--datetime"),
        ([str(store), "--out", "y", "--taxonomies", "land=rci"], "--taxonomies"),
        ([str(tmp_path), "--out", "z"], str(tmp_path)),
    ]:
        assert main(["dataset", "export", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {named}"), err
    assert not any((tmp_path / n).exists() for n in ("x", "y", "z"))


def test_bad_options_raise_option_error(store, tmp_path):
    with pytest.raises(OptionError, match="format"):
        export_dataset(store, tmp_path / "c", format="zip")
