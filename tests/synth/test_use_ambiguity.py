"""``synth city --use-ambiguity``: building looks drawn independently of their use."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from landforge.cli import main
from landforge.synth import make_city
from landforge.synth.buildings import POOLED_LOOKS, appearance_uses, place_buildings, pooled_looks
from landforge.synth.imagery import _roof_table

# Hash of image + building-use arrays and building WKB/uses of a small city, computed
# BEFORE use_ambiguity existed: the default (0) must keep generating the same city.
_BEFORE = {
    (3, 400.0, 2.0): ("69eae37b0e3a98671e3c1fbf3dc4c0e755ba99c68815704c27c30a7930018495", 19),
    (3, 800.0, 4.0): ("1c43b7e9b71db4f0142201206c003c33731894d42a5011027fa503196a2e9ebf", 64),
}


def _city_hash(d: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    for f in ("image.tif", "labels/building_use.tif"):
        with rasterio.open(d / f) as ds:
            h.update(ds.read().tobytes())
    b = gpd.read_file(d / "buildings.gpkg")
    h.update(b"".join(shapely.to_wkb(b.geometry.values)))
    h.update("|".join(b["use"]).encode())
    return h.hexdigest(), len(b)


def _make(d: Path, **kw: object) -> Path:
    make_city(
        d, seed=3, size_m=800.0, gsd=4.0, t2=False, s2=False, s1=False, population=False,
        quiet=True, **kw,
    )  # fmt: skip
    return d


def test_default_city_is_unchanged(tmp_path: Path) -> None:
    assert _city_hash(_make(tmp_path / "c")) == _BEFORE[(3, 800.0, 4.0)]


def test_full_ambiguity_changes_looks_not_uses(tmp_path: Path) -> None:
    d0 = _make(tmp_path / "a0")
    d1 = _make(tmp_path / "a1", use_ambiguity=1.0)
    assert _city_hash(d1) != _city_hash(d0)
    b0, b1 = gpd.read_file(d0 / "buildings.gpkg"), gpd.read_file(d1 / "buildings.gpkg")
    # the parcels and their uses are the same; only the buildings' looks differ
    p0, p1 = gpd.read_file(d0 / "parcels.gpkg"), gpd.read_file(d1 / "parcels.gpkg")
    assert p0["use_secondary"].tolist() == p1["use_secondary"].tolist()
    assert set(b1["use"]) <= {"residential", "commercial", "industrial"}
    assert len(b1) > 0 and len(b0) > 0


def _parcels(codes: list[str]) -> gpd.GeoDataFrame:
    """A row of 80 x 160 m parcels with the given codes (not mixed)."""
    n = len(codes)
    return gpd.GeoDataFrame(
        {
            "parcel_id": np.arange(1, n + 1),
            "use_secondary": codes,
            "mixed": np.zeros(n, bool),
            "use_secondary_2": [None] * n,
        },
        geometry=[shapely.box(i * 200.0, 0.0, i * 200.0 + 160.0, 80.0) for i in range(n)],
    )


def test_pooled_share_is_ambiguity_and_nested() -> None:
    parcels = _parcels(["R2", "M1", "B1", "E2"] * 500)  # E2 (farmland) is never pooled
    eligible = 1500
    prev: set[int] = set()
    for a in (0.0, 0.25, 0.5, 1.0):
        looks = pooled_looks(parcels, seed=5, ambiguity=a)
        assert abs(len(looks) / eligible - a) < 0.05
        assert prev <= set(looks)  # parcels pooled at a lower ambiguity stay pooled
        assert set(looks.values()) <= set(POOLED_LOOKS)
        prev = set(looks)
    assert not any(parcels.set_index("parcel_id").loc[list(prev), "use_secondary"] == "E2")


def test_full_ambiguity_makes_footprints_independent_of_use() -> None:
    codes = ["R2", "M1", "B1", "W1", "R1", "A3"] * 4
    swapped = codes[::-1]  # every parcel gets another use
    a, b = _parcels(codes), _parcels(swapped)
    fa = place_buildings(a, np.random.default_rng(1), looks=pooled_looks(a, 2, 1.0))
    fb = place_buildings(b, np.random.default_rng(1), looks=pooled_looks(b, 2, 1.0))
    assert len(fa) > 0
    assert shapely.equals_exact(fa.geometry.values, fb.geometry.values, 1e-9).all()
    assert fa["use"].tolist() != fb["use"].tolist()  # the use labels stay true
    # without ambiguity the footprints follow the use
    ga = place_buildings(a, np.random.default_rng(1))
    gb = place_buildings(b, np.random.default_rng(1))
    assert (
        len(ga) != len(gb)
        or not shapely.equals_exact(ga.geometry.values, gb.geometry.values, 1e-9).all()
    )


def test_roof_palette_follows_the_look() -> None:
    b = gpd.GeoDataFrame(
        {"building_id": [1, 2, 3], "parcel_id": [1, 1, 2], "use": ["residential"] * 3},
        geometry=[shapely.box(0, 0, 1, 1)] * 3,
    )
    looks = {1: "M1"}  # parcel 1 looks industrial
    roof_uses = appearance_uses(b, looks)
    assert roof_uses.tolist() == ["industrial", "industrial", "residential"]
    as_industrial = _roof_table(b.assign(use="industrial"), 0)
    mixed = _roof_table(b, 0, roof_uses)
    np.testing.assert_array_equal(mixed[:2], as_industrial[:2])
    np.testing.assert_array_equal(mixed[2], _roof_table(b, 0)[2])


@pytest.mark.parametrize("value", ["-0.1", "1.5", "abc"])
def test_bad_ambiguity_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    out = tmp_path / "c"
    rc = main(["synth", "city", "--out", str(out), "--use-ambiguity", value, "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --use-ambiguity")
    assert not out.exists()
