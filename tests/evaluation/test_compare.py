"""Product comparison: an external legend reclassified into UBGG and compared with a map."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from landforge.cli import main
from landforge.errors import InputError, OptionError
from landforge.evaluation.compare import compare_products, target_lut
from landforge.io.raster import RasterGrid, write_cog
from landforge.taxonomy import load_classes, load_mapping

GRID = RasterGrid.from_bounds(500_000, 4_000_000, 500_080, 4_000_040, 10.0, "EPSG:32650")


@pytest.fixture()
def rasters(tmp_path):
    """A 4x8 ubgg map and a WorldCover product with known (dis)agreement."""
    ours = np.array(
        [
            [2, 2, 3, 4, 5, 5, 1, 1],  # tree tree grass farm imperv imperv water water
            [2, 2, 3, 4, 5, 5, 1, 1],
            [5, 5, 5, 5, 2, 2, 2, 0],  # impervious where the product has trees; 0 nodata
            [5, 5, 5, 5, 2, 2, 2, 2],
        ],
        np.uint8,
    )
    theirs = np.array(
        [
            [10, 95, 30, 40, 50, 50, 80, 80],  # agrees (mangroves -> tree)
            [10, 10, 20, 40, 50, 60, 80, 80],  # shrub -> grass agrees; 60 bare is ignored
            [10, 10, 10, 10, 50, 50, 50, 50],  # under x4, over x3, nodata x1
            [50, 50, 50, 50, 10, 10, 10, 10],
        ],
        np.uint8,
    )
    m, p = tmp_path / "map.tif", tmp_path / "worldcover.tif"
    write_cog(m, ours, GRID, nodata=0)
    write_cog(p, theirs, GRID, nodata=0)
    return m, p


def test_worldcover_legend_reclassifies_to_ubgg_primary():
    lut = target_lut(load_mapping("esa_worldcover_ubgg"), load_classes("ubgg"), 0)
    # ubgg level 0: UBS 1, UGS 2, UIS 3
    assert [lut[v] for v in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)] == [
        2,
        2,
        2,
        2,
        3,
        0,
        0,
        1,
        2,
        2,
        0,
    ]
    own = target_lut(load_classes("ubgg"), load_classes("ubgg"), 0)
    assert [own[v] for v in range(6)] == [0, 1, 2, 2, 2, 3]


def test_metrics_and_three_state_difference_map(rasters, tmp_path):
    m, p = rasters
    out, diff = tmp_path / "c.json", tmp_path / "diff.tif"
    metrics = compare_products(m, p, legend="esa_worldcover_ubgg", out=out, diff=diff)
    # 32 pixels - 1 nodata in the map - 1 bare (ignored) in the product = 30 compared
    assert metrics["n"] == 30
    cm = np.array(metrics["confusion_matrix"])  # rows: product, columns: map (UBS, UGS, UIS)
    assert cm.tolist() == [[4, 0, 0], [0, 12, 4], [0, 3, 7]]
    assert metrics["overall_accuracy"] == pytest.approx(23 / 30)
    f = metrics["focus"]
    assert (f["agree"], f["under"], f["over"], f["nodata"]) == (23, 4, 3, 2)
    with rasterio.open(diff) as src:
        d = src.read(1)
        assert src.nodata == 0 and src.colormap(1)[2][:3] == (215, 48, 39)
    assert (d[2, :4] == 2).all() and (d[2, 4:7] == 3).all() and d[2, 7] == 0 and d[1, 5] == 0
    assert json.loads(out.read_text())["focus"]["class"] == "UGS"


def test_misaligned_grids_name_both_files_and_write_nothing(rasters, tmp_path, capsys):
    m, _ = rasters
    shifted = RasterGrid.from_bounds(500_005, 4_000_000, 500_085, 4_000_040, 10.0, "EPSG:32650")
    p = tmp_path / "shifted.tif"
    write_cog(p, np.full((4, 8), 10, np.uint8), shifted, nodata=0)
    out, diff = tmp_path / "o.json", tmp_path / "o.tif"
    code = main(["compare", str(m), "--product", str(p), "--legend", "esa_worldcover_ubgg",
                 "--out", str(out), "--diff", str(diff)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {p}: not on the grid of {m}") and "resample" in err[0]
    assert not out.exists() and not diff.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == [
        "map.tif",
        "shifted.tif",
        "worldcover.tif",
    ]
    # with resample (nearest) the product is warped onto the map's grid
    metrics = compare_products(m, p, legend="esa_worldcover_ubgg", resample=True)
    assert metrics["n"] > 0


def test_bad_inputs(rasters, tmp_path, capsys):
    m, p = rasters
    bad_legend = tmp_path / "my_legend.yaml"
    bad_legend.write_text(
        "taxonomy: mapping\nsource: esa_worldcover\ntarget: ubgg\n"
        "map:\n  tree: [tree_cover, palm_trees]\n"
    )
    code = main(["compare", str(m), "--product", str(p), "--legend", str(bad_legend),
                 "--out", str(tmp_path / "x.json")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "palm_trees" in err[0] and str(bad_legend) in err[0]
    code = main(["compare", str(m), "--product", str(p), "--legend", "esa_worldcover_ubgg",
                 "--product-band", "3", "--out", str(tmp_path / "x.json")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        f"error: --product-band: band 3 does not exist: {p.name} has 1 band(s)"
    ]
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "compare_diff.tif").exists()
    with pytest.raises(OptionError, match="focus"):
        compare_products(m, p, legend="esa_worldcover_ubgg", focus="forest")
    with pytest.raises(InputError, match="does not exist"):
        compare_products(m, tmp_path / "missing.tif", legend="esa_worldcover_ubgg")


@pytest.mark.parametrize(
    "legend", ["esa_worldcover_ubgg", "esri_lulc_ubgg", "globeland30_ubgg", "sinolc1_ubgg"]
)
def test_shipped_legends_map_every_product_class(legend):
    mapping = load_mapping(legend)
    source = mapping.source_system()
    assert mapping.target == "ubgg"
    hit = {mapping.map(c.code, level=0) for c in source.valued()}
    assert hit - {None} == {"UBS", "UGS", "UIS"}
