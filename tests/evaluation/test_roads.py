"""Centre-line completeness / correctness against hand and geometric references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landforge.evaluation.roads import centreline_length, rasterize_lines, road_metrics


def hline(shape, row, c0, c1, width=1):
    a = np.zeros(shape, bool)
    a[row - width // 2 : row + width // 2 + 1, c0:c1] = True
    return a


def test_identical_roads_are_complete_and_correct():
    truth = hline((50, 60), 25, 5, 55)
    # thinning a 5-pixel-wide road shortens its ends by 2 pixels: within tau = 2
    m = road_metrics(hline((50, 60), 25, 5, 55, width=5), truth, tolerance_m=2.0)
    assert m["completeness"] == pytest.approx(1.0)
    assert m["correctness"] == pytest.approx(1.0)
    assert m["quality"] == pytest.approx(1.0)


def test_shift_within_and_beyond_tolerance():
    truth = hline((50, 60), 25, 5, 55)
    inside = road_metrics(hline((50, 60), 27, 5, 55), truth, tolerance_m=2.0)
    assert inside["completeness"] == pytest.approx(1.0)
    outside = road_metrics(hline((50, 60), 31, 5, 55), truth, tolerance_m=2.0)
    assert outside["completeness"] == 0.0 and outside["correctness"] == 0.0


def test_half_found_road_and_spurious_road():
    truth = hline((50, 100), 25, 0, 100)
    half = road_metrics(hline((50, 100), 25, 0, 50), truth, tolerance_m=0.5)
    assert half["completeness"] == pytest.approx(0.5, abs=0.02)
    assert half["correctness"] == pytest.approx(1.0)
    extra = hline((50, 100), 25, 0, 100) | hline((50, 100), 5, 0, 100)
    both = road_metrics(extra, truth, tolerance_m=0.5)
    assert both["completeness"] == pytest.approx(1.0)
    assert both["correctness"] == pytest.approx(0.5, abs=0.02)
    assert both["quality"] == pytest.approx(0.5, abs=0.02)


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(0, math.pi), px=st.sampled_from([0.3, 0.5, 1.0, 2.0]))
def test_length_matches_geometry(angle, px):
    from affine import Affine
    from shapely.geometry import LineString

    n = 200
    c = n * px / 2
    r = 0.4 * n * px
    line = LineString(
        [
            (c - r * math.cos(angle), c - r * math.sin(angle)),
            (c + r * math.cos(angle), c + r * math.sin(angle)),
        ]
    )
    transform = Affine(px, 0, 0, 0, -px, n * px)
    raster = rasterize_lines([line], transform, (n, n))
    assert centreline_length(raster, (px, px)) == pytest.approx(line.length, rel=0.06)


def test_region_restricts_counted_length():
    truth = hline((50, 100), 25, 0, 100)
    pred = hline((50, 100), 25, 0, 50)
    region = np.zeros((50, 100), bool)
    region[:, :50] = True
    m = road_metrics(pred, truth, tolerance_m=0.5, valid=region)
    assert m["completeness"] == pytest.approx(1.0, abs=0.03)


def test_empty_prediction_is_undefined_correctness():
    truth = hline((20, 20), 10, 0, 20)
    m = road_metrics(np.zeros((20, 20), bool), truth)
    assert m["completeness"] == 0.0 and math.isnan(m["correctness"])


def test_spacenet_road_mask_against_its_centre_lines(shared_data):
    """The reference road mask of the SpaceNet-3 sample matches its own centre lines;
    the same mask shifted by ~7-9 m diagonally does not; raster length ~ geometric length."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    from landforge.evaluation.roads import pixel_size_m

    src = shared_data / "spacenet_samples"
    with rasterio.open(src / "sample_road_raster_mask.tif") as ds:
        mask, transform, crs, bounds = ds.read(1) == 255, ds.transform, ds.crs, ds.bounds
    lines = gpd.read_file(src / "sample_roads_for_masking.geojson").to_crs(crs)
    centre = rasterize_lines(lines.geometry, transform, mask.shape)
    px = pixel_size_m(transform, crs)
    same = road_metrics(mask, centre, px, tolerance_m=2.0)
    assert same["completeness"] > 0.95 and same["correctness"] > 0.95
    shifted = road_metrics(np.roll(mask, (30, 30), axis=(0, 1)), centre, px, tolerance_m=2.0)
    assert shifted["completeness"] < 0.5
    clipped = lines.clip(box(*bounds))
    metric = clipped.to_crs(clipped.estimate_utm_crs()).length.sum()
    assert same["truth_length_m"] == pytest.approx(metric, rel=0.05)


def test_evaluate_roads_cli(shared_data, tmp_path, capsys):
    import json

    from landforge.cli import main

    src = shared_data / "spacenet_samples"
    out = tmp_path / "roads.json"
    code = main(
        [
            "evaluate-roads",
            "--pred",
            str(src / "sample_road_raster_mask.tif"),
            "--lines",
            str(src / "sample_roads_for_masking.geojson"),
            "--truth-mask",
            str(src / "sample_road_raster_mask.tif"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    m = json.loads(out.read_text())
    assert m["completeness"] > 0.95 and m["pixel_iou"] == 1.0
    assert "completeness" in capsys.readouterr().out
    lines = str(src / "sample_roads_for_masking.geojson")
    assert main(["evaluate-roads", "--pred", str(tmp_path / "nope.tif"), "--lines", lines]) == 2
    assert "nope.tif" in capsys.readouterr().err
    assert main(["evaluate-roads", "--pred", str(src / "sample_road_raster_mask.tif")]) == 2
    assert "--lines" in capsys.readouterr().err
