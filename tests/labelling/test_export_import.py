"""label export / label import: the files Label Studio reads, and the round trip back."""

from __future__ import annotations

import csv
import json

import defusedxml.ElementTree as DET
import numpy as np
import pandas as pd
import pytest
from labelling_helpers import CLASSES, make_parcels
from PIL import Image

from landforge.cli import main
from landforge.labelling.annotations import import_annotations


def _tasks(folder):
    return json.loads((folder / "tasks.json").read_text())


def test_export_writes_tasks_grouped_by_predicted_class(exported) -> None:
    tasks = _tasks(exported)
    parcels = make_parcels()
    assert len(tasks) == len(parcels)
    preds = [t["data"]["pred"] for t in tasks]
    # grouped in taxonomy order (R, B, A, M, E), each group by falling score
    ranks = [CLASSES.index(p) for p in preds]
    assert ranks == sorted(ranks)
    for c in set(preds):
        scores = [t["data"]["score"] for t in tasks if t["data"]["pred"] == c]
        assert scores == sorted(scores, reverse=True)
    probs = parcels.set_index("parcel_id")[[f"prob_{c}" for c in CLASSES]].max(axis=1)
    for t in tasks:
        pred = t["predictions"][0]
        assert pred["model_version"] == "landforge"
        assert pred["score"] == pytest.approx(probs[t["data"]["parcel_id"]], abs=1e-4)
        choice = pred["result"][0]
        assert choice["type"] == "choices" and choice["value"]["choices"] == [t["data"]["pred"]]
        assert (exported / t["data"]["image_path"]).is_file()


def test_outline_in_percent_of_the_patch(exported) -> None:
    task = _tasks(exported)[0]
    poly = task["predictions"][0]["result"][1]
    assert poly["type"] == "polygonlabels"
    pts = np.array(poly["value"]["points"])
    # a 100 x 60 m box in a square window 1.3 x 100 m wide, centred
    assert pts[:, 0].min() == pytest.approx(50 - 50 / 1.3, abs=0.01)
    assert pts[:, 0].max() == pytest.approx(50 + 50 / 1.3, abs=0.01)
    assert pts[:, 1].min() == pytest.approx(50 - 30 / 1.3, abs=0.01)
    img = np.asarray(Image.open(exported / task["data"]["image_path"]))
    assert img.shape == (64, 64, 3)
    # the outline is drawn in red at its left edge
    col = int(round(pts[:, 0].min() / 100 * 64))
    assert (img[20:44, max(col - 1, 0) : col + 2, 0] > 200).any()


def test_config_offers_the_taxonomy_and_csv_mirrors_tasks(exported) -> None:
    root = DET.parse(str(exported / "config.xml")).getroot()
    choices = [c.get("value") for c in root.iter("Choice")]
    assert choices == ["R", "B", "A", "M", "E", "S", "X"]
    with open(exported / "tasks.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["parcel_id"] for r in rows] == [t["data"]["parcel_id"] for t in _tasks(exported)]
    assert set(rows[0]) >= {"image", "pred", "score", "poi_summary", "label", "annotator"}


def test_cross_checks_are_a_quarter_of_each_annotators_items(tmp_path) -> None:
    frame = make_parcels(n=120, seed=3)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    out = tmp_path / "t"
    args = ["label", "export", str(path), "--out", str(out), "--annotators", "a,b,c,d",
            "--batch-size", "10", "--patch-px", "32", "--no-outline"]  # fmt: skip
    assert main(args) == 0
    data = pd.DataFrame([t["data"] for t in _tasks(out)])
    assert (data["checker"] != data["annotator"]).all()
    for who, grp in data.groupby("annotator"):
        share = (grp["checker"] != "").mean()
        assert 0.2 <= share <= 0.35, (who, share)
    # one predicted class per batch, batches of at most 10
    assert (data.groupby("batch")["pred"].nunique() == 1).all()
    assert data.groupby("batch").size().max() <= 10
    assert all(len(t["predictions"][0]["result"]) == 1 for t in _tasks(out))


def test_poi_summary_counts_the_pois_inside(tmp_path, parcels_file, poi_file) -> None:
    out = tmp_path / "t"
    assert main(["label", "export", str(parcels_file), "--poi", str(poi_file), "--out",
                 str(out), "--patch-px", "32"]) == 0  # fmt: skip
    tasks = _tasks(out)
    assert sum(t["data"]["n_pois"] for t in tasks) > 0
    for t in tasks:
        n = sum(
            int(part.rsplit("x", 1)[1]) for part in t["data"]["poi_summary"].split(", ") if part
        )
        assert n == t["data"]["n_pois"]


def _answers(tasks, flip=()):
    """Annotations as a Label Studio JSON export: annotator = assigned one, checker too."""
    out = []
    for i, t in enumerate(tasks):
        d = t["data"]
        anns = [(d["annotator"], d["pred"])]
        if d["checker"]:
            anns.append((d["checker"], "E" if i in flip else d["pred"]))
        out.append(
            {
                "id": 1000 + i,
                "project": 7,
                "data": d,
                "annotations": [
                    {
                        "id": 5000 + 10 * i + k,
                        "completed_by": {"id": k, "email": who},
                        "was_cancelled": False,
                        "result": [
                            {
                                "from_name": "class",
                                "to_name": "image",
                                "type": "choices",
                                "value": {"choices": [lab]},
                            }
                        ],  # fmt: skip
                    }
                    for k, (who, lab) in enumerate(anns)
                ],
            }
        )
    return out


def _json_min(items):
    rows = []
    for it in items:
        for a in it["annotations"]:
            rows.append({**it["data"], "id": it["id"], "annotator": a["completed_by"]["email"],
                         "annotation_id": a["id"], "class": a["result"][0]["value"]["choices"][0]})  # fmt: skip
    return rows


def test_every_format_imports_to_the_same_table(tmp_path, exported) -> None:
    items = _answers(_tasks(exported))
    (tmp_path / "ls.json").write_text(json.dumps(items))
    (tmp_path / "min.json").write_text(json.dumps(_json_min(items)))
    pd.DataFrame(_json_min(items)).to_csv(tmp_path / "ls.csv", index=False)
    ours = pd.DataFrame(_json_min(items)).rename(columns={"class": "label"})
    ours[["parcel_id", "label", "annotator"]].to_csv(tmp_path / "ours.csv", index=False)
    tables = {}
    for name in ("ls.json", "min.json", "ls.csv", "ours.csv"):
        out = tmp_path / f"{name}.out.csv"
        assert main(["label", "import", str(tmp_path / name), "--tasks", str(exported),
                     "--out", str(out)]) == 0  # fmt: skip
        tables[name] = pd.read_csv(out, dtype=str, keep_default_na=False)
    key = ["parcel_id", "annotator", "label"]
    ref = tables["ls.json"][key].sort_values(key).reset_index(drop=True)
    assert len(ref) == sum(len(i["annotations"]) for i in items)
    for table in tables.values():
        pd.testing.assert_frame_equal(table[key].sort_values(key).reset_index(drop=True), ref)
    roles = tables["ls.json"]["role"].value_counts()
    assert roles["checker"] == sum(1 for t in _tasks(exported) if t["data"]["checker"])


def test_cancelled_annotations_count_as_skipped(tmp_path, exported) -> None:
    items = _answers(_tasks(exported))
    items[0]["annotations"][0]["was_cancelled"] = True
    items[0]["annotations"][0]["result"] = []
    (tmp_path / "a.json").write_text(json.dumps(items))
    table, summary = import_annotations(tmp_path / "a.json", exported)
    assert summary["skipped"] == 1
    assert summary["annotations"] == sum(len(i["annotations"]) for i in items) - 1
    assert set(summary["per_annotator"]) <= {"ann1", "ann2", "ann3"}


def test_patches_are_cut_from_the_image(tmp_path, parcels_file) -> None:
    import rasterio
    from affine import Affine

    # a 3-band byte image over the parcels: band 1 rises to the east (x), band 3 constant
    x = np.tile(np.linspace(0, 250, 500, dtype=np.float32), (400, 1))
    data = np.stack([x, np.full_like(x, 50), np.full_like(x, 200)]).astype(np.uint8)
    tif = tmp_path / "image.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=500, height=400, count=3, dtype="uint8",
                       crs="EPSG:32635", transform=Affine(2, 0, 499900, 0, -2, 6670700)) as dst:  # fmt: skip
        dst.write(data)
    out = tmp_path / "t"
    assert main(["label", "export", str(parcels_file), "--image", str(tif), "--out", str(out),
                 "--patch-px", "32", "--no-outline"]) == 0  # fmt: skip
    tasks = _tasks(out)
    blue = []
    for t in tasks:
        img = np.asarray(Image.open(out / t["data"]["image_path"]))
        blue.append(img[2:6, 2:6, 2].mean())  # a corner, away from the outline
    assert np.allclose(blue, 200, atol=2)
    # band 1 grows eastwards: patches of eastern parcels are redder
    east = {t["data"]["parcel_id"]: np.asarray(Image.open(out / t["data"]["image_path"]))[2:6, 2:6, 0].mean() for t in tasks}  # fmt: skip
    assert east["p005"] > east["p000"] + 50
