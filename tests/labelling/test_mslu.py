"""The MSLU-100K layout: export, read back, and a reader that stays inside the dataset."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import defusedxml.ElementTree as DET
import geopandas as gpd
import pandas as pd
import pytest
from labelling_helpers import make_parcels

from landforge.cli import main
from landforge.errors import InputError
from landforge.labelling.mslu import read_mslu


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One export + MSLU layout per module; each test gets its own copy."""
    tmp = tmp_path_factory.mktemp("mslu")
    parcels = tmp / "classes.parquet"
    make_parcels().to_parquet(parcels)
    tasks = tmp / "tasks"
    assert main(["label", "export", str(parcels), "--out", str(tasks), "--patch-px", "64"]) == 0
    out = tmp / "mslu"
    assert main(["label", "mslu", str(parcels), "--images", str(tasks), "--city",
                 "Testville", "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture
def mslu(tmp_path, pristine):
    return Path(shutil.copytree(pristine, tmp_path / "mslu"))


def test_layout_matches_mslu(mslu) -> None:
    parcels = make_parcels()
    folders = {"E": "Agr", "R": "Res", "B": "Com", "A": "Pub", "M": "Ind"}
    assert sorted(p.name for p in (mslu / "ImageSets").iterdir()) == sorted(folders.values())
    xmls = sorted((mslu / "Classification").glob("*.xml"))
    assert len(xmls) == len(parcels)
    node = DET.parse(str(xmls[0])).getroot()
    for tag in ("category", "filename", "path", "size/width", "size/height",
                "geographic/longitude", "geographic/latitude", "primary_class", "level"):  # fmt: skip
        assert node.find(tag) is not None, tag
    table = pd.read_csv(mslu / "dataset.csv")
    assert list(table.columns[:5]) == ["category", "filename", "path", "width", "height"]
    index = gpd.read_parquet(mslu / "index.parquet")
    assert index.crs.to_epsg() == 4326 and len(index) == len(parcels)
    want = parcels.set_index("parcel_id")
    got = index.set_index("parcel_id")
    assert (got["label"] == want.loc[got.index, "label"]).all()
    assert (got["level"] == want.loc[got.index, "level"]).all()
    assert (got["category"] == got["label"].map(folders)).all()
    stats = json.loads((mslu / "stats.json").read_text())
    assert stats["samples"] == len(parcels) and set(stats["per_class"]) == set(folders.values())
    assert (mslu / "stats.png").stat().st_size > 0


def test_reader_round_trip(mslu) -> None:
    table = read_mslu(mslu)
    csv = pd.read_csv(mslu / "dataset.csv")
    assert len(table) == len(csv)
    assert sorted(table["path"]) == sorted(csv["path"])
    assert (table["width"] == 64).all()
    assert table["primary_class"].isin(["Residential", "Commercial", "Public service",
                                        "Industrial", "Agricultural & natural"]).all()  # fmt: skip
    assert all(os.path.isfile(p) for p in table["image"])


def _edit_first_xml(mslu, new_path):
    xml = sorted((mslu / "Classification").glob("*.xml"))[0]
    text = xml.read_text()
    start, end = text.index("<path>") + 6, text.index("</path>")
    xml.write_text(text[:start] + new_path + text[end:])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "absolute path refused"),
        ("ImageSets/../../outside.png", "'..' refused"),
        ("ImageSets/Res/missing.png", "does not exist"),
    ],
)
def test_reader_refuses_paths_outside(mslu, path, message) -> None:
    _edit_first_xml(mslu, path)
    with pytest.raises(InputError, match=message):
        read_mslu(mslu)


def test_reader_refuses_symlink_out(tmp_path, mslu) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "a.png").write_bytes(b"x")
    (mslu / "ImageSets" / "Evil").symlink_to(secret)
    _edit_first_xml(mslu, "ImageSets/Evil/a.png")
    with pytest.raises(InputError, match="symbolic link"):
        read_mslu(mslu)


def test_reader_never_reads_pickles_or_entities(mslu) -> None:
    (mslu / "samples.pkl").write_bytes(b"\x80\x04crm -rf /\n.")  # never opened
    assert len(read_mslu(mslu)) == len(make_parcels())
    xml = sorted((mslu / "Classification").glob("*.xml"))[0]
    xml.write_text(
        '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><annotation>&e;</annotation>'
    )
    with pytest.raises(InputError, match="not a usable sample XML"):
        read_mslu(mslu)


def test_cli_bad_input(tmp_path, parcels_file, capsys) -> None:
    out = tmp_path / "m"
    code = main(["label", "mslu", str(parcels_file), "--label-col", "nope", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--label-col" in err[0]
    assert not out.exists()


def test_dataset_export_adapter(tmp_path, parcels_file) -> None:
    """The function 'dataset export --format mslu' dispatches to."""
    from landforge.labelling.mslu import export_mslu_dataset

    out = export_mslu_dataset(parcels_file, tmp_path / "ds", None)
    assert len(read_mslu(out)) == len(make_parcels())


def test_dataset_export_format_mslu_from_the_command_line(tmp_path, parcels_file, capsys) -> None:
    out = tmp_path / "ds"
    assert (
        main(["dataset", "export", str(parcels_file), "--format", "mslu", "--out", str(out)]) == 0
    )
    assert f"MSLU-100K layout of {len(make_parcels())} samples" in capsys.readouterr().out
    assert len(read_mslu(out)) == len(make_parcels())
