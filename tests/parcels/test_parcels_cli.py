"""`landforge parcels`: generate and label from the command line."""

from __future__ import annotations

import geopandas as gpd
import pytest
from parcel_helpers import box, road_grid

from landforge.cli import main


@pytest.fixture
def inputs(tmp_path):
    roads = tmp_path / "roads.gpkg"
    road_grid([0, 100, 200, 300], [0, 100, 200, 300]).to_file(roads)
    boundary = tmp_path / "boundary.gpkg"
    box(0, 0, 300, 300).to_file(boundary)
    return roads, boundary


def test_generate_writes_geoparquet_and_geopackage(inputs, tmp_path, capsys) -> None:
    roads, boundary = inputs
    out = tmp_path / "parcels.parquet"
    assert (
        main(
            [
                "parcels",
                "generate",
                "--roads",
                str(roads),
                "--boundary",
                str(boundary),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    parcels = gpd.read_parquet(out)
    assert len(parcels) == 9 and parcels.crs.to_epsg() == 32650
    assert "9 parcels" in capsys.readouterr().out

    widths = tmp_path / "widths.yaml"
    widths.write_text("residential: 20\n")
    gpkg = tmp_path / "parcels.gpkg"
    assert (
        main(
            [
                "parcels",
                "generate",
                "--roads",
                str(roads),
                "--boundary",
                str(boundary),
                "--widths",
                str(widths),
                "--clean-m",
                "2",
                "--out",
                str(gpkg),
            ]
        )
        == 0
    )
    wide = gpd.read_file(gpkg)
    assert len(wide) == 9
    assert wide["area_m2"].iloc[0] == pytest.approx(80 * 80)


def test_bare_parcels_command_generates(inputs, tmp_path) -> None:
    roads, _ = inputs
    out = tmp_path / "p.parquet"
    assert main(["parcels", "--roads", str(roads), "--out", str(out)]) == 0
    assert len(gpd.read_parquet(out)) > 0


def test_label_command(inputs, tmp_path) -> None:
    roads, boundary = inputs
    parcels = tmp_path / "parcels.parquet"
    assert (
        main(["parcels", "--roads", str(roads), "--boundary", str(boundary), "--out", str(parcels)])
        == 0
    )
    landuse = tmp_path / "landuse.gpkg"
    lu = box(0, 0, 120, 300).assign(CLASS="residential")
    lu.to_file(landuse)
    out = tmp_path / "labelled.parquet"
    assert (
        main(
            [
                "parcels",
                "label",
                str(parcels),
                "--labels",
                str(landuse),
                "--col",
                "CLASS",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    labelled = gpd.read_parquet(out)
    assert (labelled["label"] == "residential").sum() == 3  # the left column of blocks
    assert {"purity", "coverage", "mixed"} <= set(labelled.columns)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["parcels", "generate", "--roads", "nowhere.gpkg", "--out", "p.parquet"],
            "nowhere.gpkg: vector file does not exist",
        ),
        (["parcels", "generate", "--out", "p.parquet"], "--roads: give exactly one of roads"),
        (["parcels", "generate", "--roads", "ROADS", "--out", "p.txt"], "--out: "),
        (["parcels", "generate", "--roads", "ROADS", "--out", "p.txt"], "use a .parquet"),
        (["parcels", "--roads", "ROADS", "--clean-m", "-1"], "--clean-m: "),
        (["parcels", "--roads", "ROADS", "--centre-method", "x"], "--centre-method: "),
        (["parcels", "--roads", "ROADS", "--centre-crs", "nowhere"], "--centre-crs: unknown CRS"),
        (
            [
                "parcels",
                "generate",
                "--roads",
                "ROADS",
                "--widths",
                "nope.yaml",
                "--out",
                "p.parquet",
            ],
            "widths file does not exist",
        ),
    ],
)
def test_user_mistakes_exit_2_with_one_line(inputs, tmp_path, capsys, args, message) -> None:
    roads, _ = inputs
    args = [str(roads) if a == "ROADS" else a for a in args]
    args = [str(tmp_path / a) if a.endswith((".parquet", ".txt")) else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ") and message in err


def test_label_with_an_unknown_taxonomy_exits_2(inputs, tmp_path, capsys) -> None:
    roads, _ = inputs
    parcels = tmp_path / "p.parquet"
    assert main(["parcels", "--roads", str(roads), "--out", str(parcels)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "parcels",
                "label",
                str(parcels),
                "--labels",
                str(roads),
                "--col",
                "road_class",
                "--taxonomy",
                "no_such_mapping",
                "--out",
                str(tmp_path / "l.parquet"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_mapping" in err


def test_library_warnings_reach_the_user_as_one_line_each(tmp_path, capsys) -> None:
    roads = tmp_path / "roads.gpkg"
    road_grid([0, 100, 200], [0, 100, 200], classes=["alley"] * 6).to_file(roads)
    boundary = tmp_path / "boundary.gpkg"
    box(0, 0, 200, 200).to_file(boundary)
    out = tmp_path / "p.parquet"
    args = ["parcels", "--roads", str(roads), "--boundary", str(boundary), "--out", str(out)]
    assert main(args) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning: ")]
    assert len(err) == 1 and "alley" in err[0]
