"""Parcel selection: the MSLU area filter, centre-weighted sampling and its report."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from parcel_helpers import CRS, X0, Y0

from landforge.cli import main
from landforge.errors import InputError, OptionError
from landforge.parcels.options import SelectOptions
from landforge.parcels.select import MSLU_AREA_RANGE, select_parcels, selection_report


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
