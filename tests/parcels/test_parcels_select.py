"""Parcel selection: the MSLU area filter, centre-weighted sampling and its report."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from parcel_helpers import CRS, X0, Y0, road_grid

from landforge.cli import main
from landforge.errors import InputError, OptionError
from landforge.parcels.generate import generate_parcels
from landforge.parcels.options import SelectOptions
from landforge.parcels.select import (
    MSLU_AREA_RANGE,
    select_centre,
    select_parcels,
    selection_report,
)

# the grid of _parcel_field records no centre: select falls back to the centroid (tested
# below with the warning it gives)
pytestmark = pytest.mark.filterwarnings("ignore:no centre recorded by parcels generate")


def _parcel_field(n_side: int = 12, cell: float = 300.0) -> gpd.GeoDataFrame:
    """A grid of square parcels; sizes cycle so some fall outside the MSLU range."""
    sides = np.array([100.0, 250.0, 290.0, 150.0])  # 1e4, 6.25e4, 8.41e4, 2.25e4 m2
    geoms, labels, mixed = [], [], []
    for i in range(n_side):
        for j in range(n_side):
            s = sides[(i + j) % len(sides)]
            x, y = X0 + i * cell, Y0 + j * cell
            geoms.append(shapely.box(x, y, x + s, y + s))
            labels.append(["R", "B", None, "M"][(i * 7 + j) % 4])
            mixed.append((i + 2 * j) % 5 == 0)
    return gpd.GeoDataFrame({"label": labels, "mixed": mixed}, geometry=geoms, crs=CRS)


def test_the_mslu_area_range_is_the_default_filter() -> None:
    parcels = _parcel_field()
    chosen = select_parcels(parcels)
    lo, hi = MSLU_AREA_RANGE
    assert len(chosen) == int(((parcels.area >= lo) & (parcels.area <= hi)).sum()) == 72
    assert chosen["area_m2"].between(lo, hi).all()
    assert chosen.index.isin(parcels.index).all() and chosen.crs == parcels.crs
    assert sorted(chosen["select_rank"]) == list(range(1, 73))
    every = select_parcels(parcels, min_area_m2=0, max_area_m2=0)  # 0: no bound
    assert len(every) == len(parcels)
    small = select_parcels(parcels, SelectOptions(min_area_m2=0, max_area_m2=20_000))
    assert len(small) == 36 and (small["area_m2"] <= 20_000).all()


def test_sampling_is_seeded_and_draws_without_replacement() -> None:
    parcels = _parcel_field()
    a = select_parcels(parcels, n=20, seed=3)
    b = select_parcels(parcels, n=20, seed=3)
    c = select_parcels(parcels, n=20, seed=4)
    assert len(a) == 20 and a.index.is_unique
    assert a.index.equals(b.index) and not a.index.equals(c.index)
    assert len(select_parcels(parcels, fraction=0.25)) == 18


def test_a_strong_distance_weight_pulls_the_sample_to_the_centre() -> None:
    parcels = _parcel_field(n_side=16)
    centre = (X0 + 2400.0, Y0 + 2400.0)
    near = select_parcels(parcels, n=15, weights=(1, 0), dispersion=0.05, centre=centre)
    spread = select_parcels(parcels, n=15, weights=(0, 1), centre=centre)
    assert near["dist_centre_m"].mean() < 0.6 * spread["dist_centre_m"].mean()
    # distance alone: weights fall off with the distance
    order = np.argsort(near["dist_centre_m"].to_numpy())
    assert np.all(np.diff(near["select_weight"].to_numpy()[order]) <= 1e-15)


def test_bad_options_raise_input_errors() -> None:
    parcels = _parcel_field(n_side=4)
    for kwargs, field in (
        ({"n": 0}, "n"),
        ({"fraction": 1.5}, "fraction"),
        ({"n": 3, "fraction": 0.5}, "fraction"),
        ({"weights": (0, 0)}, "weights"),
        ({"weights": "0.5"}, "weights"),
        ({"dispersion": 0}, "dispersion"),
        ({"min_area_m2": 5e4, "max_area_m2": 1e4}, "min_area_m2"),
    ):
        with pytest.raises(OptionError) as err:
            select_parcels(parcels, **kwargs)
        assert err.value.field == field
    with pytest.raises(InputError, match="no parcel has an area"):
        select_parcels(parcels, min_area_m2=1e9, max_area_m2=2e9)
    with pytest.warns(UserWarning, match="only"):
        assert len(select_parcels(parcels, n=1000)) == 8


def test_the_report_compares_balance_mixing_and_coverage() -> None:
    parcels = _parcel_field()
    chosen = select_parcels(parcels, n=10, seed=1)
    report = selection_report(parcels, chosen, label_col="label")
    before, after = report["before"], report["after"]
    assert before["count"] == 144 and after["count"] == 10
    assert before["hull_share"] == pytest.approx(1.0) and before["grid_occupancy"] == 1.0
    assert 0 < after["hull_share"] <= 1 and 0 < after["grid_occupancy"] < 0.2
    assert sum(before["classes"].values()) == pytest.approx(1.0)
    assert set(before["classes"]) == {"B", "M", "R", "unlabelled"}
    assert before["mixed_share"] == pytest.approx(parcels["mixed"].mean())
    json.dumps(report)  # JSON-ready
    with pytest.raises(OptionError, match="label_col: parcels has no column 'nope'"):
        selection_report(parcels, chosen, label_col="nope")


def test_select_cli_writes_parcels_and_a_json_report(tmp_path, capsys) -> None:
    src = tmp_path / "parcels.parquet"
    _parcel_field().to_parquet(src)
    out = tmp_path / "selected.parquet"
    args = ["parcels", "select", str(src), "--out", str(out), "--n", "12"]
    assert main([*args, "--weights", "0.5,0.5", "--seed", "2", "--label-col", "label"]) == 0
    assert len(gpd.read_parquet(out)) == 12
    report = json.loads((tmp_path / "selected.report.json").read_text())
    assert report["after"]["count"] == 12 and report["settings"]["weights"] == [0.5, 0.5]
    printed = capsys.readouterr().out
    assert "Parcel selection" in printed and "class R" in printed

    assert main([*args, "--weights", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --weights: ") and len(err.splitlines()) == 1
    assert main([*args, "--label-col", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: --label-col: ")
    assert main(["parcels", "select", str(tmp_path / "no.parquet"), "--out", str(out)]) == 2
    assert main([*args, "--min-area", "1e9", "--max-area", "0"]) == 2


# ---------------------------------------------------------------- the centre
def _dense_corner_roads() -> gpd.GeoDataFrame:
    """A 2 km grid of roads, 400 m apart, denser (100 m) in the north-east corner."""
    coarse = road_grid(range(0, 2001, 400), range(0, 2001, 400), overhang=0)
    fine = [
        shapely.LineString([(X0 + x, Y0 + 1600), (X0 + x, Y0 + 2000)])
        for x in range(1600, 2001, 100)
    ] + [
        shapely.LineString([(X0 + 1600, Y0 + y), (X0 + 2000, Y0 + y)])
        for y in range(1600, 2001, 100)
    ]
    lines = list(coarse.geometry) + fine
    return gpd.GeoDataFrame({"road_class": ["residential"] * len(lines)}, geometry=lines, crs=CRS)


def _dense_corner_parcels() -> gpd.GeoDataFrame:
    """Parcels of :func:`_dense_corner_roads`: the density-peak centre that
    ``generate_parcels`` records lies far from the parcels' centroid."""
    parcels = generate_parcels(
        _dense_corner_roads(), None, centre_cell_m=50, centre_bandwidth_m=200
    )
    assert parcels.attrs["centre_method"] == "density"
    return parcels


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg"])
def test_select_uses_the_centre_recorded_by_generate(tmp_path, suffix) -> None:
    parcels = _dense_corner_parcels()
    generated = parcels.attrs["centre"]
    path = tmp_path / f"parcels{suffix}"
    if suffix == ".parquet":
        parcels.to_parquet(path)  # keeps attrs["centre"] in the file's metadata
        read = gpd.read_parquet(path)
        assert tuple(read.attrs["centre"]) == generated
    else:
        parcels.to_file(path)  # a GeoPackage keeps only the dist_centre_m column
        read = gpd.read_file(path)
        assert "centre" not in read.attrs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        chosen = select_parcels(read, min_area_m2=0, max_area_m2=0, n=10)
        centre, source = select_centre(read)
    assert source == chosen.attrs["centre_source"] == "recorded"
    assert chosen.attrs["centre"] == pytest.approx(generated, abs=1e-6)
    assert (centre.x, centre.y) == pytest.approx(generated, abs=1e-6)
    # the distances the weight used are those generate reported, parcel by parcel
    np.testing.assert_allclose(
        chosen["dist_centre_m"], parcels.loc[chosen.index, "dist_centre_m"], atol=1e-6
    )
    # ... and not those to the parcels' centroid, which select used to take
    bare = read.drop(columns="dist_centre_m")
    if suffix == ".parquet":  # the recorded centre alone is enough
        assert select_centre(bare)[1] == "recorded"
    else:
        with pytest.warns(UserWarning, match="centroid"):
            centroid, how = select_centre(bare)
        assert how == "centroid" and centroid.distance(shapely.Point(generated)) > 300


def test_a_given_centre_wins_and_a_missing_one_warns() -> None:
    parcels = _dense_corner_parcels()
    given = (X0 + 100.0, Y0 + 100.0)
    chosen = select_parcels(parcels, min_area_m2=0, max_area_m2=0, centre=given)
    assert chosen.attrs == {"centre": given, "centre_source": "given"}
    centroids = shapely.centroid(chosen.geometry.values)
    np.testing.assert_allclose(
        chosen["dist_centre_m"], shapely.distance(centroids, shapely.Point(given))
    )
    # in another CRS, as text (the CLI and a pipeline give it so)
    lonlat = gpd.GeoSeries([shapely.Point(given)], crs=CRS).to_crs(4326).iloc[0]
    again = select_parcels(
        parcels, min_area_m2=0, max_area_m2=0, centre=f"{lonlat.x},{lonlat.y}", centre_crs="4326"
    )
    assert again.attrs["centre"] == pytest.approx(given, abs=1e-3)
    assert select_parcels(parcels, centre=shapely.Point(given)).attrs["centre"] == given
    # nothing recorded: the area-weighted centroid, with a warning saying so
    bare = parcels.drop(columns="dist_centre_m")
    bare.attrs = {}
    with pytest.warns(UserWarning, match="no centre recorded by parcels generate"):
        fallback = select_parcels(bare, min_area_m2=0, max_area_m2=0)
    area = bare.area.to_numpy()
    c = shapely.centroid(bare.geometry.values)
    expect = (
        np.average(shapely.get_x(c), weights=area),
        np.average(shapely.get_y(c), weights=area),
    )
    assert fallback.attrs["centre_source"] == "centroid"
    assert fallback.attrs["centre"] == pytest.approx(expect)
    # a record that no longer matches the distances (an edited file) is not trusted
    edited = parcels.copy()
    edited["dist_centre_m"] = edited["dist_centre_m"] + 50.0
    with pytest.warns(UserWarning, match="does not reproduce dist_centre_m"):
        assert select_centre(edited)[1] == "centroid"
    for kwargs, field in (({"centre": "1,2,3"}, "centre"), ({"centre": "nan,1"}, "centre")):
        with pytest.raises(OptionError) as err:
            select_parcels(parcels, **kwargs)
        assert err.value.field == field
    with pytest.raises(OptionError, match="centre_crs"):
        select_parcels(parcels, centre_crs="4326")


def test_select_cli_says_which_centre_it_used(tmp_path, capsys) -> None:
    parcels = _dense_corner_parcels()
    gx, gy = parcels.attrs["centre"]
    src = tmp_path / "parcels.parquet"
    parcels.to_parquet(src)
    out = tmp_path / "selected.parquet"
    args = ["parcels", "select", str(src), "--out", str(out), "--min-area", "0", "--n", "8"]
    assert main(args) == 0
    captured = capsys.readouterr()
    first = captured.out.splitlines()[0]
    assert first == f"centre (recorded by parcels generate): {gx:.1f}, {gy:.1f} (EPSG:32650)"
    assert "warning" not in captured.err
    report = json.loads((tmp_path / "selected.report.json").read_text())
    assert report["settings"]["centre"] == pytest.approx([gx, gy])
    assert report["settings"]["centre_source"] == "recorded"
    assert gpd.read_parquet(out).attrs["centre"] == pytest.approx([gx, gy])

    assert main([*args, "--centre", f"{X0 + 100},{Y0 + 100}"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"centre (given): {X0 + 100:.1f}, {Y0 + 100:.1f} (EPSG:32650)"
    )
    sel = gpd.read_parquet(out)
    centroids = shapely.centroid(sel.geometry.values)
    np.testing.assert_allclose(
        sel["dist_centre_m"], shapely.distance(centroids, shapely.Point(X0 + 100, Y0 + 100))
    )

    bare = tmp_path / "bare.gpkg"
    parcels.drop(columns="dist_centre_m").to_file(bare)
    assert main(["parcels", "select", str(bare), "--out", str(out), "--min-area", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("centre (centroid: no recorded centre): ")
    assert captured.err.startswith("warning: no centre recorded by parcels generate")
    assert len(captured.err.splitlines()) == 1

    assert main([*args, "--centre", "1,2,3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --centre: ") and len(err.splitlines()) == 1
    assert main([*args, "--centre-crs", "4326"]) == 2
    assert capsys.readouterr().err.startswith("error: --centre-crs: ")


PIPELINE = """
name: centre
stages:
  - name: parcels
    type: parcels
    with: {roads: ROADS, centre_cell_m: 50, centre_bandwidth_m: 200, out: parcels.gpkg}
  - name: selected
    type: parcels_select
    with: {parcels: parcels.gpkg, min_area_m2: 0, max_area_m2: 0, n: 6, out: selected.parquet}
  - name: given
    type: parcels_select
    with: {parcels: parcels.gpkg, min_area_m2: 0, max_area_m2: 0, n: 6,
           centre: [GX, GY], out: given.parquet}
"""


def test_the_pipeline_select_step_uses_the_generate_centre(tmp_path) -> None:
    _dense_corner_roads().to_file(tmp_path / "roads.gpkg")
    pipeline = tmp_path / "centre.yaml"
    text = PIPELINE.replace("ROADS", str(tmp_path / "roads.gpkg"))
    pipeline.write_text(text.replace("GX", str(X0 + 100)).replace("GY", str(Y0 + 100)))
    assert main(["run", str(pipeline), "--run-dir", str(tmp_path / "run")]) == 0
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    generated = stages["parcels"]["summary"]["centre"]
    assert stages["parcels"]["summary"]["centre_method"] == "density"
    assert stages["selected"]["summary"]["centre_source"] == "recorded"
    assert stages["selected"]["summary"]["centre"] == pytest.approx(generated, abs=1e-6)
    assert stages["given"]["summary"]["centre_source"] == "given"
    assert stages["given"]["summary"]["centre"] == [X0 + 100, Y0 + 100]
    parcels = gpd.read_file(tmp_path / "run" / "parcels.gpkg")
    sel = gpd.read_parquet(tmp_path / "run" / "selected.parquet")
    by_geom = {g.wkb: d for g, d in zip(parcels.geometry, parcels["dist_centre_m"], strict=True)}
    np.testing.assert_allclose(
        sel["dist_centre_m"], [by_geom[g.wkb] for g in sel.geometry], atol=1e-6
    )
