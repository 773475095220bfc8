"""`landforge prep reclassify`: UBGG's grass-outside-the-urban-boundary -> farmland rule."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
from prep_helpers import CRS, assert_one_error, read, run_cli, write_tif
from shapely.geometry import box

from landforge.prep.reclassify import reclassify

# ubgg values: water 1, tree 2, grass 3, farmland 4, impervious 5
X0, Y0 = 500000.0, 5100000.0


def _inputs(tmp_path):
    labels = np.full((20, 20), 3, np.uint8)  # grass everywhere
    labels[:, :5] = 2  # trees on the left
    src = write_tif(tmp_path / "map.tif", labels)
    # urban boundary: the top-left 10 x 10 pixels (10 m pixels)
    urban = gpd.GeoDataFrame(geometry=[box(X0, Y0 - 100, X0 + 100, Y0)], crs=CRS)
    # given in another CRS: it is reprojected onto the map
    boundary = tmp_path / "urban.gpkg"
    urban.to_crs(4326).to_file(boundary)
    return src, boundary, labels


def test_default_rule_grass_outside_becomes_farmland(tmp_path) -> None:
    src, boundary, labels = _inputs(tmp_path)
    s = reclassify(src, boundary, tmp_path / "out.tif")
    out = read(tmp_path / "out.tif")[0]
    inside = np.zeros_like(labels, bool)
    inside[:10, :10] = True
    assert (out[inside & (labels == 3)] == 3).all()  # grass inside stays grass
    assert (out[~inside & (labels == 3)] == 4).all()  # outside: farmland
    assert (out[labels == 2] == 2).all()  # trees untouched
    assert s["rules"][0]["pixels"] == int((~inside & (labels == 3)).sum())
    with rasterio.open(tmp_path / "out.tif") as f:
        assert f.colormap(1)[4][:3] == (255, 235, 175)


def test_rules_file_inside_and_by_name(tmp_path, capsys) -> None:
    src, boundary, labels = _inputs(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("taxonomy: ubgg\nrules:\n  - {from: [Tree], to: impervious, where: inside}\n")
    out = tmp_path / "out.tif"
    args = ["prep", "reclassify", src, "--boundary", boundary, "--rules", rules, "--out", out]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "Tree inside -> impervious: 50 pixels" in stdout
    res = read(out)[0]
    assert (res[:10, :5] == 5).all() and (res[10:, :5] == 2).all() and (res[:, 5:] == 3).all()


def test_unknown_class_in_rules_names_the_file(tmp_path, capsys) -> None:
    src, boundary, _ = _inputs(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {from: meadow, to: farmland}\n")
    out = tmp_path / "out.tif"
    args = ["prep", "reclassify", src, "--boundary", boundary, "--rules", rules, "--out", out]
    code, _, err = run_cli(args, capsys)
    assert_one_error(code, err, "rules.yaml", "unknown class 'meadow'", "ubgg")
    assert not out.exists()
