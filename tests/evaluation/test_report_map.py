"""The report's interactive map: layers, budgets, offline-only, and a real headless browser.

The browser test opens the report from ``file://`` in Debian's ``chromium`` through
Selenium with the system ``chromedriver`` (nothing downloads a browser): the map and its
layers render, a click on a parcel opens its popup, and no request leaves ``file:`` /
``data:``. It skips, saying why, when no browser is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from evaluation_data import COLOURS, truth_array

from landforge.errors import InputError
from landforge.evaluation.evaluate import evaluate_rasters, evaluate_tables
from landforge.evaluation.report import build_report
from landforge.io.raster import RasterGrid, write_cog

CLASSES = {1: "residential", 2: "commercial", 3: "industrial"}


def _map_data(report: Path) -> dict:
    text = report.read_text()
    m = re.search(r'<script id="lf-map-data" type="application/json">(.*?)</script>', text, re.S)
    assert m, "no map data in the report"
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run directory: image, prediction, truth, parcels with classes, split blocks, metrics."""
    root = tmp_path / "run"
    root.mkdir()
    grid = RasterGrid.from_bounds(500000, 3500000, 500096, 3500080, 1.0, "EPSG:32650")
    truth = truth_array(grid)
    pred = truth.copy()
    pred[40:60, 10:30] = 2  # a wrong patch
    write_cog(root / "truth.tif", truth, grid, nodata=0, colormap=COLOURS)
    write_cog(root / "map.tif", pred, grid, nodata=255, colormap=COLOURS)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (3, *grid.shape), dtype=np.uint8)
    write_cog(root / "image.tif", image, grid, nodata=None)
    x0, y0 = 500000, 3500000
    cells = [shapely.box(x0 + i * 24, y0 + j * 20, x0 + (i + 1) * 24, y0 + (j + 1) * 20)
             for i in range(4) for j in range(4)]  # fmt: skip
    names = list(CLASSES.values())
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": range(len(cells)),
            "class_name": [names[i % 3] for i in range(len(cells))],
            "prob_residential": np.linspace(0, 1, len(cells)),
        },
        geometry=cells,
        crs="EPSG:32650",
    )
    parcels.to_parquet(root / "parcel_pred.parquet")
    truth_tab = parcels[["parcel_id", "geometry"]].copy()
    truth_tab["class_name"] = [names[(i + (i % 5 == 0)) % 3] for i in range(len(cells))]
    truth_tab.to_parquet(root / "parcel_truth.parquet")
    blocks = gpd.GeoDataFrame(
        {"split": ["train", "test"]},
        geometry=[
            shapely.box(x0, y0, x0 + 48, y0 + 80),
            shapely.box(x0 + 48, y0, x0 + 96, y0 + 80),
        ],
        crs="EPSG:32650",
    )
    blocks.to_file(root / "split_blocks.gpkg")
    evaluate_rasters(
        root / "map.tif", root / "truth.tif", classes=CLASSES, split_blocks=root / "split_blocks.gpkg",
        split="test", out=root / "metrics.json", quiet=True,
    )  # fmt: skip
    evaluate_tables(
        root / "parcel_pred.parquet", root / "parcel_truth.parquet", "class_name", "class_name",
        key="parcel_id", out=root / "parcel_metrics.json",
    )  # fmt: skip
    manifest = {
        "pipeline": "test.yaml",
        "stages": {
            "predict": {"type": "predict", "status": "done", "config": {"image": "image.tif"}}
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_the_map_has_image_prediction_truth_difference_parcels_and_blocks(run):
    data = _map_data(build_report(run))
    names = [layer["name"] for layer in data["layers"]]
    assert names[0] == "image (image.tif)"
    assert "prediction (map.tif)" in names and "truth (truth.tif)" in names
    assert "prediction vs truth" in names and "split blocks" in names
    parcels = next(layer for layer in data["layers"] if layer["name"].startswith("parcels"))
    feats = parcels["geojson"]["features"]
    assert len(feats) == 16
    props = feats[0]["properties"]
    assert {"parcel_id", "predicted", "truth", "correct", "prob_residential"} <= set(props)
    assert sum(not f["properties"]["correct"] for f in feats) == sum(i % 5 == 0 for i in range(16))
    # metres from the frame's lower-left corner: the frame is the prediction's 96 x 80 m
    assert data["bounds"] == [[0, 0], [80, 96]]
    xs = [c[0] for f in feats for c in f["geometry"]["coordinates"][0]]
    assert min(xs) == 0 and max(xs) == 96
    legend = dict(data["legend"])
    assert legend["residential"] == "#e6503c" and {"correct", "wrong"} <= set(legend)


def test_difference_layer_marks_the_wrong_patch(run):
    from io import BytesIO

    from PIL import Image

    data = _map_data(build_report(run))
    diff = next(layer for layer in data["layers"] if layer["name"] == "prediction vs truth")
    import base64

    png = Image.open(BytesIO(base64.b64decode(diff["src"].split(",", 1)[1]))).convert("RGBA")
    arr = np.asarray(png)
    wrong = (arr[..., 0] > 200) & (arr[..., 1] < 100)
    truth = truth_array(RasterGrid.from_bounds(0, 0, 96, 80, 1.0, "EPSG:32650"))
    pred = truth.copy()
    pred[40:60, 10:30] = 2
    expected = (pred != truth) & (truth != 0)
    assert np.array_equal(wrong, expected)
    assert (arr[truth == 0, 3] == 0).all()  # truth nodata: transparent


def test_large_rasters_and_many_features_are_cut_to_the_budget_with_a_note(run):
    out = build_report(run, out=run / "small.html", map_pixels=1000, map_features=5)
    data = _map_data(out)
    text = out.read_text()
    assert "shown at" in text and "budget 1,000 pixels" in text
    assert "5 of 16 features shown" in text
    parcels = next(layer for layer in data["layers"] if layer["name"].startswith("parcels"))
    assert len(parcels["geojson"]["features"]) == 5
    import base64
    from io import BytesIO

    from PIL import Image

    pred = next(layer for layer in data["layers"] if layer["name"] == "prediction (map.tif)")
    img = Image.open(BytesIO(base64.b64decode(pred["src"].split(",", 1)[1])))
    assert img.width * img.height <= 1100


def test_the_report_loads_nothing_from_the_network(run):
    text = build_report(run).read_text()
    assert 'http-equiv="Content-Security-Policy"' in text and "default-src 'none'" in text
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S)  # attributes only
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "leaflet" in text.lower() and "sourceMappingURL" not in text


def test_a_run_without_rasters_says_there_is_no_map(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    text = build_report(tmp_path).read_text()
    assert "there is no map" in text


def test_map_pixels_zero_leaves_the_map_out(run):
    text = build_report(run, out=run / "nomap.html", map_pixels=0).read_text()
    assert 'id="lf-map"' not in text


def test_parcels_without_crs_name_the_file(run):
    gdf = gpd.read_parquet(run / "parcel_pred.parquet")
    gdf = gdf.set_crs(None, allow_override=True)
    gdf.to_parquet(run / "parcel_pred.parquet")
    with pytest.raises(InputError) as err:
        build_report(run)
    assert "parcel_pred.parquet" in str(err.value) and "CRS" in str(err.value)


# ------------------------------------------------------------------ a real browser
def _browser() -> tuple[str, str] | None:
    for name in ("chromium", "chromium-browser"):
        binary = shutil.which(name)
        if binary and shutil.which("chromedriver"):
            return binary, str(shutil.which("chromedriver"))
    return None


@pytest.mark.browser
def test_the_report_map_renders_in_headless_chromium(run, tmp_path):
    found = _browser()
    if found is None:
        pytest.skip(
            "no chromium + chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    report = build_report(run)
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                "--disable-dev-shm-usage", "--no-first-run"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=opts)
    try:
        driver.get(report.resolve().as_uri())
        WebDriverWait(driver, 20).until(lambda d: d.execute_script("return !!window.landforgeMap"))
        # every image overlay decoded, parcels drawn as interactive paths
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script(
                "const im=[...document.querySelectorAll('img.leaflet-image-layer')];"
                "return im.length>0 && im.every(i=>i.complete && i.naturalWidth>0);"
            )
        )
        n_images = driver.execute_script(
            "return document.querySelectorAll('img.leaflet-image-layer').length"
        )
        assert n_images == 2  # image + prediction shown; truth and difference toggled off
        paths = driver.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")
        assert len(paths) >= 16
        labels = [
            e.text
            for e in driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label")
        ]
        assert any("truth" in t for t in labels) and any("split blocks" in t for t in labels)
        # a click in the middle of the first parcel opens its popup
        x, y = driver.execute_script(
            "const l=window.landforgeLayers[Object.keys(window.landforgeLayers)"
            ".find(k=>k.startsWith('parcels'))].getLayers()[0];"
            "const p=window.landforgeMap.latLngToContainerPoint(l.getBounds().getCenter());"
            "const r=document.getElementById('lf-map').getBoundingClientRect();"
            "window.scrollTo(0, r.top + window.scrollY - 50);"
            "const r2=document.getElementById('lf-map').getBoundingClientRect();"
            "return [r2.left + p.x, r2.top + p.y];"
        )
        ActionChains(driver).move_by_offset(int(x), int(y)).click().perform()
        WebDriverWait(driver, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-popup-content")
        )
        popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").text
        assert "parcel_id" in popup and "predicted" in popup and "truth" in popup
        # nothing but file: and data: was requested; no policy violation was logged
        urls = []
        for entry in driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        shots = Path(os.environ.get("LANDFORGE_TEST_ARTIFACTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "report_map.png"))
    finally:
        driver.quit()


# ------------------------------------------------------------------ dataset statistics
def test_parcel_statistics_per_class_place_area_and_level(run):
    gdf = gpd.read_parquet(run / "parcel_truth.parquet")
    gdf["district"] = ["north" if i < 8 else "south" for i in range(len(gdf))]
    gdf["level"] = [i % 6 for i in range(len(gdf))]
    gdf.to_parquet(run / "parcel_truth.parquet")
    text = build_report(run, map_pixels=0).read_text()
    assert "Dataset: parcels <code>parcel_truth.parquet</code>" in text
    assert "parcels per district and class" in text and "quality level x class" in text
    counts = gdf["class_name"].value_counts()
    for name, n in counts.items():
        assert f'<td class="l">{name}</td><td>{n:,}</td>' in text
    assert "parcel area per class" in text


def test_chip_store_statistics_per_class_and_split(tmp_path):
    import pandas as pd

    store = tmp_path / "chips"
    store.mkdir()
    index = pd.DataFrame(
        {
            "split": ["train", "train", "val", "test"],
            "use_0": [10, 0, 5, 1],
            "use_1": [0, 7, 0, 3],
        }
    )
    index.to_parquet(store / "index.parquet")
    meta = {"size": 32, "sampler": "grid", "label_names": ["use"], "labels": {"use": "x.tif"}}
    (store / "meta.json").write_text(json.dumps(meta))
    text = build_report(tmp_path).read_text()
    assert "Dataset: chip store <code>chips</code>" in text
    assert "train 2, val 1, test 1" in text
    # class 1: train 7 px in 1 chip, val 0 px, test 3 px in 1 chip
    assert (
        '<td class="l">1</td><td>7</td><td>0</td><td>3</td><td>1</td><td>0</td><td>1</td>' in text
    )
