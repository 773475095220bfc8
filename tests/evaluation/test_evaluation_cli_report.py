"""`landforge evaluate` / `landforge report` and the HTML report of a run directory."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from evaluation_data import COLOURS, truth_array
from shapely.geometry import box

from landforge.cli import main
from landforge.errors import InputError
from landforge.evaluation.evaluate import evaluate_rasters, write_metrics
from landforge.evaluation.metrics import ChangeConfusion
from landforge.evaluation.plots import class_map_figure, png_bytes
from landforge.evaluation.report import build_report
from landforge.io.raster import write_cog

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_cli_evaluate_rasters_writes_metrics_and_prints_table(
    class_rasters, tmp_path, capsys
) -> None:
    pred, truth = class_rasters
    out = tmp_path / "m.json"
    code = main(
        [
            "evaluate",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--ignore",
            "0",
            "--classes",
            "1=res,2=com,3=ind",
            "--out",
            str(out),
            "--plots",
        ]
    )
    assert code == 0
    m = json.loads(out.read_text())
    assert m["kind"] == "landforge-metrics/1" and m["overall_accuracy"] == 1.0
    assert m["classes"] == ["res", "com", "ind"]
    printed = capsys.readouterr().out
    for word in ("OA", "kappa", "mIoU", "FWIoU", "res", "ind"):
        assert word in printed
    assert (tmp_path / "m.confusion.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "m.distribution.png").read_bytes().startswith(PNG_MAGIC)


def test_cli_missing_prediction_is_one_line_and_exit_2(
    class_rasters, tmp_path, monkeypatch, capsys
) -> None:
    _pred, truth = class_rasters
    monkeypatch.chdir(tmp_path)
    code = main(["evaluate", "--pred", "missing.tif", "--truth", str(truth), "--out", "m.json"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing.tif: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert not (tmp_path / "m.json").exists()


def test_cli_evaluate_tables(tmp_path, capsys) -> None:
    gdf = gpd.GeoDataFrame(
        {"pid": [1, 2, 3, 4], "truth": ["a", "b", "a", "b"], "pred": ["a", "b", "b", "b"]},
        geometry=[box(i, 0, i + 1, 1) for i in range(4)],
        crs="EPSG:32650",
    )
    gdf.to_parquet(tmp_path / "parcels.parquet")
    out = tmp_path / "t.json"
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "parcels.parquet"),
            "--truth",
            str(tmp_path / "parcels.parquet"),
            "--pred-col",
            "pred",
            "--truth-col",
            "truth",
            "--key",
            "pid",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads(out.read_text())["overall_accuracy"] == 0.75
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "parcels.parquet"),
            "--truth",
            str(tmp_path / "parcels.parquet"),
            "--out",
            str(out),
        ]
    )
    assert code == 2 and "--pred-col" in capsys.readouterr().err


def _run_dir(tmp_path: Path, grid, class_rasters) -> Path:
    """A tiny pipeline run: a predicted class map, its metrics, and a manifest."""
    pred, truth = class_rasters
    run = tmp_path / "run"
    (run / "predict").mkdir(parents=True)
    wrong = truth_array(grid)
    wrong[20:24] = 1
    write_cog(run / "predict" / "landuse.tif", wrong, grid, nodata=0, colormap=COLOURS)
    evaluate_rasters(
        run / "predict" / "landuse.tif",
        truth,
        classes={1: "residential", 2: "commercial", 3: "industrial"},
        out=run / "evaluate" / "metrics.json",
        quiet=True,
    )
    manifest = {
        "pipeline": "demo",
        "stages": {
            "predict": {
                "type": "predict",
                "status": "done",
                "seconds": 12.5,
                "outputs": ["predict/landuse.tif"],
                "summary": {"tiles": 4},
            },
            "evaluate": {
                "type": "evaluate",
                "status": "done",
                "seconds": 0.8,
                "outputs": ["evaluate/metrics.json"],
                "summary": {"miou": 0.91},
            },
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_report_is_self_contained_with_tables_and_images(
    tmp_path, grid, class_rasters, capsys
) -> None:
    run = _run_dir(tmp_path, grid, class_rasters)
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "Run summary" in html and "tiles=4" in html and "12.5" in html
    assert "Headline metrics" in html and "majority baseline (commercial)" in html
    assert "Per class" in html and "residential" in html and "industrial" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3  # confusion matrix, class distribution, class-map quicklook
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(PNG_MAGIC)
        assert b"http" not in png
    # the only scripts are the map's own, inline: Leaflet (whose code holds the SVG
    # namespace and its home page as strings) and the layer data; nothing is linked
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    assert "http://" not in markup and "https://" not in markup
    assert "<link" not in html and not re.search(r"<script[^>]*\bsrc=", html)
    assert "default-src 'none'" in html  # and the page may not load anything


def test_report_without_manifest_and_with_change_metrics(tmp_path, grid, class_rasters) -> None:
    run = _run_dir(tmp_path, grid, class_rasters)
    (run / "manifest.json").unlink()
    t1 = np.array([[1, 1], [2, 2]])
    t2 = np.array([[1, 3], [2, 2]])
    change = ChangeConfusion([1, 2, 3]).update(t1, t2, t1, t2).summary()
    write_metrics(change, run / "change.json")
    (run / "notes.json").write_text('{"kind": "something-else"}')
    out = build_report(run, tmp_path / "elsewhere" / "r.html")
    html = out.read_text()
    assert "Run summary" not in html
    assert "Change metrics" in html and "second.sek" in html
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == 3
    assert "something-else" not in html


def test_report_of_missing_directory_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        build_report(tmp_path / "nope")


def test_class_map_quicklook_reads_decimated(tmp_path, grid) -> None:
    path = write_cog(tmp_path / "map.tif", truth_array(grid), grid, nodata=0, colormap=COLOURS)
    fig = class_map_figure(path, names={1: "R", 2: "B", 3: "M"}, max_size=12)
    image = fig.axes[0].images[0].get_array()
    assert max(image.shape[:2]) == 12
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["1 R", "2 B", "3 M"]
    assert png_bytes(fig).startswith(PNG_MAGIC)
