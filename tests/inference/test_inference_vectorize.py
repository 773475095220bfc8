"""Buildings from a class map: known rectangles come back with their area and use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inference_helpers import grid_for

from landforge.cli import main
from landforge.inference.vectorize import vectorize_buildings
from landforge.io.raster import write_cog
from landforge.io.vector import read_vector


def _class_map(tmp_path: Path) -> tuple[Path, Path]:
    m = np.zeros((100, 120), np.uint8)
    m[10:20, 10:30] = 1  # A: residential, 200 px = 50 m²
    m[40:60, 10:20] = 2  # B: 150 px commercial + 50 px industrial
    m[55:60, 10:20] = 3
    m[60:76, 25:46] = 3  # C: industrial, crosses the block seams at row 64 and col 32
    m[20:40, 70:73] = 1  # U: two arms apart in block (0, 2), joined below row 32
    m[20:40, 76:79] = 1
    m[36:40, 73:76] = 2
    m[90:92, 100:102] = 1  # 1 m²: below the 4 m² minimum
    m[0:5, 100:120] = 255  # nodata is not a building
    grid = grid_for(100, 120)
    write_cog(tmp_path / "map.tif", m, grid, nodata=255)
    fp = np.full((100, 120), 0.8, np.float32)
    fp[60:76, 25:46] = 0.6
    write_cog(tmp_path / "fp.tif", fp, grid, nodata=float("nan"))
    return tmp_path / "map.tif", tmp_path / "fp.tif"


@pytest.mark.parametrize("block", [4096, 32, 7])
def test_rectangles_become_buildings_with_majority_use(tmp_path: Path, block: int) -> None:
    map_path, fp_path = _class_map(tmp_path)
    b = vectorize_buildings(map_path, fp_path, simplify_m=0.0, min_area_m2=4, block=block)
    assert len(b) == 4 and b.crs.to_epsg() == 32650
    assert b.geometry.is_valid.all()
    assert (b.geometry.geom_type == "Polygon").all()  # seams merged: one polygon each
    b = b.sort_values("area_m2").reset_index(drop=True)
    assert b["area_m2"].tolist() == pytest.approx([33.0, 50.0, 50.0, 84.0])
    np.testing.assert_allclose(b.geometry.area, b["area_m2"])
    u, a_or_b, c = b.iloc[0], b.iloc[1:3], b.iloc[3]
    assert u["use"] == "residential" and u["n_pixels"] == 132
    assert u["frac_commercial"] == pytest.approx(12 / 132)
    assert sorted(a_or_b["use"]) == ["commercial", "residential"]
    mixed = a_or_b[a_or_b["use"] == "commercial"].iloc[0]
    assert mixed["use_value"] == 2
    assert mixed["frac_commercial"] == pytest.approx(0.75)
    assert mixed["frac_industrial"] == pytest.approx(0.25)
    assert mixed["use_fraction"] == pytest.approx(0.75)
    assert c["use"] == "industrial" and c["confidence"] == pytest.approx(0.6)
    assert u["confidence"] == pytest.approx(0.8)


def test_simplification_keeps_rectangles_and_cli_writes_gpkg(tmp_path: Path, capsys) -> None:
    map_path, _ = _class_map(tmp_path)
    out = tmp_path / "buildings.gpkg"
    code = main(
        [
            "vectorize",
            str(map_path),
            "--out",
            str(out),
            "--simplify-m",
            "0.5",
            "--min-area-m2",
            "40",
            "--block",
            "32",
        ]
    )
    assert code == 0, capsys.readouterr().err
    b = read_vector(out)
    assert len(b) == 3 and b.crs.to_epsg() == 32650
    rect = b[b["area_m2"] == 84.0].iloc[0]
    assert rect.geometry.area == pytest.approx(84.0)
    assert len(rect.geometry.exterior.coords) == 5  # four corners, seam vertices removed
