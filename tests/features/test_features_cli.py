"""`landforge poi-maps`: POIs + a reference raster -> one probability band per class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from landforge.cli import main
from landforge.io.raster import RasterGrid, write_cog


@pytest.fixture
def inputs(tmp_path):
    grid = RasterGrid.from_bounds(500000, 3000000, 500400, 3000300, 10, "EPSG:32650")
    like = tmp_path / "image.tif"
    write_cog(like, np.zeros((1, *grid.shape), np.uint8), grid)
    to_lonlat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    lonlat = [
        to_lonlat.transform(500000 + x, 3000000 + y) for x, y in [(50, 50), (200, 250), (350, 100)]
    ]
    poi = tmp_path / "pois.csv"
    pd.DataFrame(
        {
            "lon": [p[0] for p in lonlat],
            "lat": [p[1] for p in lonlat],
            "gbt_category": ["residence_lodging", "catering", "enterprises_companies"],
            "residential_or_not": ["residential", "commercial", "industrial"],
        }
    ).to_csv(poi, index=False)
    return poi, like


def test_poi_maps_without_taxonomy_writes_a_cog(inputs, tmp_path, capsys) -> None:
    poi, like = inputs
    out = tmp_path / "poi.tif"
    code = main(
        [
            "poi-maps",
            "--poi",
            str(poi),
            "--like",
            str(like),
            "--category-col",
            "residential_or_not",
            "--dmax",
            "residential=300,commercial=300,industrial=800",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with rasterio.open(out) as src:
        assert src.count == 3 and src.descriptions == ("residential", "commercial", "industrial")
        assert src.shape == (30, 40) and src.crs.to_epsg() == 32650
        data = src.read()
    assert data.max() > 0.9 and data.min() >= 0


def test_poi_maps_with_gbt35648_rci(inputs, tmp_path, capsys) -> None:
    taxonomy = pytest.importorskip("landforge.taxonomy")
    try:
        taxonomy.load_mapping("gbt35648_rci")
    except Exception as exc:
        pytest.skip(f"gbt35648_rci not available: {exc}")
    poi, like = inputs
    out = tmp_path / "poi.tif"
    code = main(
        [
            "poi-maps",
            "--poi",
            str(poi),
            "--taxonomy",
            "gbt35648_rci",
            "--category-col",
            "gbt_category",
            "--like",
            str(like),
            "--dmax",
            "residential=300,commercial=300,industrial=800",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with rasterio.open(out) as src:
        assert src.descriptions == ("residential", "commercial", "industrial")
        assert (src.read().max(axis=(1, 2)) > 0.5).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--like": "missing.tif"}, "missing.tif: raster does not exist"),
        ({"--like": "NOCRS"}, "raster has no CRS"),
        ({"--taxonomy": "no_such_taxonomy"}, "no_such_taxonomy"),
        ({"--dmax": "residential:300"}, "--dmax: expected CLASS=METRES"),
        ({"--dmax": "residential=far"}, "--dmax: distance of 'residential' is not a number"),
        ({"--category-col": "kind"}, "no category column 'kind'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(inputs, tmp_path, capsys, change, message) -> None:
    poi, like = inputs
    if change.get("--like") == "NOCRS":
        nocrs = tmp_path / "nocrs.tif"
        with rasterio.open(
            nocrs,
            "w",
            driver="GTiff",
            width=4,
            height=4,
            count=1,
            dtype="uint8",
            transform=Affine(1, 0, 0, 0, -1, 4),
        ) as dst:
            dst.write(np.zeros((1, 4, 4), np.uint8))
        change = {"--like": str(nocrs)}
    opts = {
        "--poi": str(poi),
        "--like": str(like),
        "--category-col": "residential_or_not",
        "--dmax": "residential=300",
        "--out": str(tmp_path / "o.tif"),
    }
    opts.update({k: (str(tmp_path / v) if v.endswith(".tif") else v) for k, v in change.items()})
    args = ["poi-maps"] + [x for kv in opts.items() for x in kv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and message in err


def test_poi_maps_tile_changes_speed_not_values(inputs, tmp_path) -> None:
    poi, like = inputs
    args = ["poi-maps", "--poi", str(poi), "--like", str(like)]
    args += ["--category-col", "residential_or_not", "--dmax", "residential=300,industrial=800"]
    assert main([*args, "--out", str(tmp_path / "a.tif")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.tif"), "--tile", "3"]) == 0
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        # 1e-4 m of distance at dmax 300 m is ~3e-7 of p
        np.testing.assert_allclose(a.read(), b.read(), atol=1e-6)


def test_poi_maps_from_an_osm_pbf_on_a_utm_grid(shared_data, tmp_path, capsys):
    """The user's story: OSM POIs of central Helsinki on a 10 m UTM grid, OSM -> R/C/I."""
    import numpy as np
    import rasterio

    from landforge.cli import main
    from landforge.io.raster import RasterGrid, write_cog

    pbf = shared_data / "osm" / "helsinki.osm.pbf"
    # EPSG:32635 covering the extract (about 24.935-24.953 E, 60.164-60.179 N)
    grid = RasterGrid.from_bounds(385000, 6671000, 386200, 6672700, 10.0, 32635)
    like = write_cog(tmp_path / "like.tif", np.zeros((1, *grid.shape), np.uint8), grid)
    out = tmp_path / "poi.tif"
    code = main(
        [
            "poi-maps",
            "--poi",
            str(pbf),
            "--taxonomy",
            "osm_rci",
            "--like",
            str(like),
            "--dmax",
            "residential=300,commercial=300,industrial=800",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with rasterio.open(out) as src:
        maps = src.read()
        assert src.descriptions == ("residential", "commercial", "industrial")
    assert maps.shape == (3, *grid.shape)
    assert maps[1].max() > 0.9  # shops and cafes everywhere in central Helsinki
    assert ((maps >= 0) & (maps <= 1)).all()
