"""Building-level evaluation (``evaluate --buildings``): known answers, sklearn, properties."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.features import rasterize
from rasterio.transform import from_origin
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from landforge.cli import main
from landforge.evaluation.buildings import (
    building_uses,
    evaluate_buildings,
    match_buildings,
    soft_uses,
)
from landforge.evaluation.report import build_report
from landforge.io.raster import read_grid

CRS = "EPSG:32650"
SIDE = 20
TF = from_origin(0, SIDE, 1, 1)
CLASSES = "0=background,1=residential,2=commercial,3=industrial"
NAMES = {1: "residential", 2: "commercial", 3: "industrial"}


def _px_box(r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    """Polygon of the pixels rows r0..r1-1, columns c0..c1-1."""
    return shapely.box(c0, SIDE - r1, c1, SIDE - r0)


# five 4 x 4 buildings: (rows, cols), true use
BUILDINGS = [((1, 1), 1), ((1, 8), 2), ((8, 1), 3), ((8, 8), 1), ((14, 14), 2)]


def _pred_map() -> np.ndarray:
    a = np.zeros((SIDE, SIDE), np.uint8)
    a[1:5, 1:5] = 1
    a[1:3, 1:4] = 2  # 6 of 16 pixels commercial: residential wins (10)
    a[1:5, 8:12] = 2
    a[1:4, 8:11] = 3  # 9 industrial, 7 commercial: industrial wins (wrong)
    # building 3 (industrial): all background -> no use predicted
    a[8:12, 8:12] = 1
    a[8:10, 8:11] = 0  # 6 background pixels do not vote
    a[11, 8:12] = 255  # 4 nodata pixels do not vote
    a[10, 11] = 255  # 5 nodata in all, 5 residential votes
    a[14:18, 14:18] = 2
    return a


EXPECTED_TRUTH = [1, 2, 3, 1, 2]
EXPECTED_PRED = [1, 3, 0, 1, 2]


def _write_raster(path: Path, a: np.ndarray, nodata: int | None = 255) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", width=SIDE, height=SIDE, count=1, dtype="uint8",
        crs=CRS, transform=TF, nodata=nodata,
    ) as ds:  # fmt: skip
        ds.write(a, 1)
    return path


def _buildings(order: list[int] | None = None) -> gpd.GeoDataFrame:
    rows = [(_px_box(r, c, r + 4, c + 4), NAMES[u], i) for i, ((r, c), u) in enumerate(BUILDINGS)]
    if order is not None:
        rows = [rows[i] for i in order]
    return gpd.GeoDataFrame(
        {"use": [r[1] for r in rows], "bid": [r[2] for r in rows]},
        geometry=[r[0] for r in rows],
        crs=CRS,
    )


@pytest.fixture()
def scene(tmp_path: Path) -> dict[str, Path]:
    pred = _write_raster(tmp_path / "pred.tif", _pred_map())
    b = _buildings()
    b.to_file(tmp_path / "buildings.gpkg", engine="pyogrio")
    value = {"residential": 1, "commercial": 2, "industrial": 3}
    truth = rasterize(
        ((g, value[u]) for g, u in zip(b.geometry, b["use"], strict=True)),
        out_shape=(SIDE, SIDE),
        transform=TF,
        dtype="uint8",
    )
    return {
        "pred": pred,
        "truth": _write_raster(tmp_path / "truth.tif", truth, nodata=None),
        "buildings": tmp_path / "buildings.gpkg",
        "dir": tmp_path,
    }


def _classes() -> tuple[list[int], list[str]]:
    return [0, 1, 2, 3], ["background", "residential", "commercial", "industrial"]


def test_majority_of_use_pixels_per_footprint(scene: dict[str, Path]) -> None:
    geoms = np.asarray(_buildings().geometry.values)
    got = building_uses(scene["pred"], geoms, [1, 2, 3], 0, block=7)  # blocks cut buildings
    assert got.pred.tolist() == EXPECTED_PRED
    assert got.pixels.tolist() == [16, 16, 0, 5, 16]


def test_scores_equal_sklearn(scene: dict[str, Path]) -> None:
    labels, names = _classes()
    out = evaluate_buildings(scene["pred"], scene["buildings"], labels=labels, names=names)
    m = out["true_footprints"]
    p, r, f, _ = precision_recall_fscore_support(
        EXPECTED_TRUTH, EXPECTED_PRED, labels=[1, 2, 3], zero_division=0
    )
    for i, name in enumerate(["residential", "commercial", "industrial"]):
        pc = m["per_class"][name]
        assert pc["precision"] == pytest.approx(p[i])
        assert pc["recall"] == pytest.approx(r[i])
        assert pc["f1"] == pytest.approx(f[i])
        t = np.array(EXPECTED_TRUTH) == i + 1
        q = np.array(EXPECTED_PRED) == i + 1
        assert pc["ovr_accuracy"] == pytest.approx(np.mean(t == q))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(EXPECTED_TRUTH, EXPECTED_PRED))
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert m["n"] == 5 and m["n_no_use_predicted"] == 1
    # majority baseline: every building the most frequent true use (residential, 2 of 5;
    # ties with commercial go to the first class)
    assert m["baseline"]["overall_accuracy"] == pytest.approx(2 / 5)
    assert m["baseline"]["kappa"] == pytest.approx(0.0)


def test_predicted_footprints_matched_at_iou(scene: dict[str, Path]) -> None:
    pb = gpd.GeoDataFrame(
        geometry=[
            _px_box(1, 1, 5, 5),  # = building 0 (IoU 1)
            _px_box(14, 14, 18, 17),  # building 4, IoU 12/16
            _px_box(1, 8, 5, 9),  # building 1, IoU 4/16: no match
            _px_box(17, 0, 19, 2),  # nothing there
        ],
        crs=CRS,
    )
    pb.to_file(scene["dir"] / "pred_buildings.gpkg", engine="pyogrio")
    labels, names = _classes()
    out = evaluate_buildings(
        scene["pred"], scene["buildings"], labels=labels, names=names,
        pred_buildings=scene["dir"] / "pred_buildings.gpkg",
    )  # fmt: skip
    m = out["predicted_footprints"]
    det = m["detection"]
    assert (det["n_predicted"], det["n_true"], det["n_matched"]) == (4, 5, 2)
    assert det["precision"] == pytest.approx(0.5) and det["recall"] == pytest.approx(0.4)
    assert det["mean_iou_matched"] == pytest.approx((1 + 12 / 16) / 2)
    assert m["overall_accuracy"] == 1.0  # both matched buildings' uses are right


def test_split_blocks_keep_buildings_of_the_split(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = gpd.GeoDataFrame(
        {"split": ["test", "train"]},
        geometry=[shapely.box(0, 0, 7, SIDE), shapely.box(7, 0, SIDE, SIDE)],
        crs=CRS,
    )
    blocks.to_file(scene["dir"] / "blocks.gpkg", engine="pyogrio")
    out = scene["dir"] / "m.json"
    rc = main(
        ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"]),
         "--classes", CLASSES, "--buildings", str(scene["buildings"]), "--use-col", "use",
         "--split-blocks", str(scene["dir"] / "blocks.gpkg"), "--split", "test",
         "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    assert "Per building (2 true footprints): OA 50" in capsys.readouterr().out
    b = json.loads(out.read_text())["buildings"]
    m = b["true_footprints"]
    assert m["n"] == 2  # buildings 0 (residential, right) and 2 (industrial, missed)
    assert m["per_class"]["residential"]["f1"] == 1.0
    assert m["per_class"]["industrial"]["recall"] == 0.0
    assert b["evaluated_on"]["buildings"] == 2 and b["evaluated_on"]["split"] == "test"
    # the report shows the building table
    html = build_report(scene["dir"], map_pixels=0).read_text()
    assert "Per building" in html and "true footprints" in html


def _reference_uses(pred: np.ndarray, geoms: np.ndarray) -> list[int]:
    """One footprint at a time: its pixels' majority use (values 1..3), else 0."""
    out = []
    for g in geoms:
        inside = rasterize([(g, 1)], out_shape=pred.shape, transform=TF, dtype="uint8") > 0
        counts = np.bincount(pred[inside], minlength=4)[1:4]
        out.append(int(np.argmax(counts)) + 1 if counts.sum() else 0)
    return out


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pred=arrays(np.uint8, (SIDE, SIDE), elements=st.integers(0, 3)),
    order=st.permutations(range(len(BUILDINGS))),
)
def test_order_of_buildings_changes_nothing(
    tmp_path: Path, pred: np.ndarray, order: list[int]
) -> None:
    path = _write_raster(tmp_path / "p.tif", pred, nodata=None)
    geoms = np.asarray(_buildings().geometry.values)
    got = building_uses(path, geoms, [1, 2, 3], 0)
    assert got.pred.tolist() == _reference_uses(pred, geoms)
    perm = building_uses(path, geoms[list(order)], [1, 2, 3], 0)
    assert perm.pred.tolist() == got.pred[list(order)].tolist()
    # whole evaluation through files: the same scores in any order
    labels, names = _classes()
    a_path, b_path = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    _buildings().to_file(a_path, engine="pyogrio")
    _buildings(list(order)).to_file(b_path, engine="pyogrio")
    a = evaluate_buildings(path, a_path, labels=labels, names=names)["true_footprints"]
    b = evaluate_buildings(path, b_path, labels=labels, names=names)["true_footprints"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert json.dumps(a["per_class"], sort_keys=True) == json.dumps(b["per_class"], sort_keys=True)


def test_matching_is_one_to_one_and_order_free() -> None:
    truth = np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)])
    pred = np.array(
        [shapely.box(1, 0, 11, 10), shapely.box(0, 0, 10, 10), shapely.box(21, 0, 31, 10)]
    )
    pi, ti, iou = match_buildings(pred, truth)
    pairs = sorted(zip(pi.tolist(), ti.tolist(), strict=True))
    assert pairs == [(1, 0), (2, 1)]  # the exact copy wins building 0
    pi2, ti2, _ = match_buildings(pred[::-1], truth)
    assert sorted(zip((2 - pi2).tolist(), ti2.tolist(), strict=True)) == pairs


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    rc = main(args)
    return rc, capsys.readouterr().err.strip().splitlines()


def test_missing_use_column_is_one_error_line(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = scene["dir"] / "m.json"
    rc, err = _run(
        ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"]),
         "--classes", CLASSES, "--buildings", str(scene["buildings"]), "--use-col", "kind",
         "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: {scene['buildings']}") and "'kind'" in err[0]
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_buildings_without_crs_are_refused(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    nocrs = scene["dir"] / "nocrs.gpkg"
    _buildings().set_crs(None, allow_override=True).to_file(nocrs, engine="pyogrio")
    out = scene["dir"] / "m.json"
    rc, err = _run(
        ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"]),
         "--classes", CLASSES, "--buildings", str(nocrs), "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {nocrs}")
    assert "CRS" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("case", ["text_uses_without_classes", "pred_without_true"])
def test_bad_building_options(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    out = scene["dir"] / "m.json"
    args = ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"])]
    if case == "text_uses_without_classes":
        args, flag = [*args, "--buildings", str(scene["buildings"])], "--classes"
    else:
        args = [*args, "--classes", CLASSES, "--pred-buildings", str(scene["buildings"])]
        flag = "--pred-buildings"
    rc, err = _run([*args, "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: {flag}")
    assert not out.exists()


# ------------------------------------------------------------------ soft vote
def _write_probs(
    path: Path,
    p: np.ndarray,
    names: tuple[str, ...] = ("background", "residential", "commercial", "industrial"),
) -> Path:
    """Probabilities as predict --probs writes them: uint8 x 254, nodata 255, names."""
    with rasterio.open(
        path, "w", driver="GTiff", width=SIDE, height=SIDE, count=len(names), dtype="uint8",
        crs=CRS, transform=TF, nodata=255,
    ) as ds:  # fmt: skip
        ds.write(p)
        ds.descriptions = names
    return path


def _probs_scene() -> np.ndarray:
    """Probabilities where the soft vote differs from the hard majority."""
    p = np.zeros((4, SIDE, SIDE), np.uint8)
    p[0] = 254  # background everywhere...
    # building 0 (residential): 10 pixels commercial at 0.4 (bg 0.6), 6 residential at 0.9
    p[:, 1:5, 1:5] = np.array([152, 0, 102, 0], np.uint8)[:, None, None]
    p[:, 1:3, 1:4] = np.array([25, 229, 0, 0], np.uint8)[:, None, None]
    # building 2 (industrial): background wins every pixel, industrial second
    p[:, 8:12, 1:5] = np.array([178, 0, 25, 51], np.uint8)[:, None, None]
    # building 3 (residential): all nodata -> background
    p[:, 8:12, 8:12] = 255
    return p


def test_soft_vote_takes_the_highest_mean_probability(scene: dict[str, Path]) -> None:
    probs = _write_probs(scene["dir"] / "probs.tif", _probs_scene())
    labels, names = _classes()
    out = evaluate_buildings(
        scene["pred"], scene["buildings"], labels=labels, names=names, probs=probs, block=7
    )
    soft = out["true_footprints_soft"]
    # building 0: residential (mean 6 * 229 / 16 = 85.9 against commercial 10 * 102 /
    # 16 = 63.8) although 10 of its 16 pixels lean commercial; 1: every use band 0, the
    # tie goes to the first use (residential); 2: industrial (51 > 25) although
    # background wins every pixel; 3: no valid pixel -> background; 4: residential (tie)
    grid = read_grid(probs)
    geoms = np.asarray(_buildings().geometry.values)
    got = soft_uses(probs, grid, geoms, labels, names, 0)
    assert got.tolist() == [1, 1, 3, 0, 1]
    assert soft["n"] == 5 and soft["n_no_use_predicted"] == 1
    assert soft["overall_accuracy"] == pytest.approx(2 / 5)
    assert soft["kappa"] == pytest.approx(cohen_kappa_score(EXPECTED_TRUTH, got.tolist()))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(p=arrays(np.uint8, (3, SIDE, SIDE), elements=st.integers(0, 255)))
def test_soft_vote_equals_brute_force(tmp_path: Path, p: np.ndarray) -> None:
    from landforge.evaluation.buildings import building_probabilities

    path = _write_probs(tmp_path / "p.tif", p, ("residential", "commercial", "industrial"))
    geoms = np.asarray(_buildings().geometry.values)
    means, counts = building_probabilities(path, geoms, [1, 2, 3], block=6)
    for i, g in enumerate(geoms):
        inside = rasterize([(g, 1)], out_shape=(SIDE, SIDE), transform=TF, dtype="uint8") > 0
        px = p[:, inside].T
        ok = (px != 255).all(axis=1)
        assert counts[i] == ok.sum()
        if ok.any():
            np.testing.assert_allclose(means[i], px[ok].mean(axis=0))
        else:
            assert np.isnan(means[i]).all()


def test_soft_vote_from_the_cli(scene: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    probs = _write_probs(scene["dir"] / "probs.tif", _probs_scene())
    out = scene["dir"] / "m.json"
    rc = main(
        ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"]),
         "--classes", CLASSES, "--buildings", str(scene["buildings"]),
         "--building-probs", str(probs), "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    assert "Per building (5 true footprints, soft vote): OA" in capsys.readouterr().out
    b = json.loads(out.read_text())["buildings"]
    assert b["true_footprints_soft"]["per_class"]["industrial"]["recall"] == 1.0
    assert b["true_footprints"]["per_class"]["industrial"]["recall"] == 0.0
    html = build_report(scene["dir"], map_pixels=0).read_text()
    assert "true footprints, soft vote" in html


@pytest.mark.parametrize("case", ["names", "grid", "no_buildings"])
def test_bad_building_probs(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    probs = scene["dir"] / "probs.tif"
    if case == "names":
        _write_probs(probs, _probs_scene()[:3], ("a", "b", "c"))
    elif case == "grid":
        with rasterio.open(
            probs, "w", driver="GTiff", width=SIDE + 1, height=SIDE, count=1, dtype="uint8",
            crs=CRS, transform=TF,
        ) as ds:  # fmt: skip
            ds.write(np.zeros((1, SIDE, SIDE + 1), np.uint8))
    else:
        _write_probs(probs, _probs_scene())
    out = scene["dir"] / "m.json"
    args = ["evaluate", "--pred", str(scene["pred"]), "--truth", str(scene["truth"]),
            "--classes", CLASSES, "--building-probs", str(probs), "--out", str(out)]  # fmt: skip
    if case != "no_buildings":
        args += ["--buildings", str(scene["buildings"])]
    rc, err = _run(args, capsys)
    assert rc == 2 and len(err) == 1, err
    want = "error: --building-probs" if case == "no_buildings" else f"error: {probs}"
    assert err[0].startswith(want), err[0]
    if case == "names":
        assert "residential" in err[0] and "predict --probs" in err[0]
    assert not out.exists()
