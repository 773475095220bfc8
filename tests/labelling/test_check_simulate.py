"""label check (agreement, acceptance, revision list) and the simulated annotators / loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labelling_helpers import make_parcels

from landforge.cli import main
from landforge.labelling.check import check_annotations
from landforge.labelling.options import SimulateOptions
from landforge.labelling.simulate import SimAnnotator


def _tasks(batches):
    """Tasks: batch name -> list of (annotator, checker) per item."""
    out = []
    for b, items in batches.items():
        for k, (ann, chk) in enumerate(items):
            out.append({"data": {"parcel_id": f"{b}-{k}", "batch": b, "annotator": ann,
                                 "checker": chk}})  # fmt: skip
    return out


def test_batches_below_min_agreement_go_back() -> None:
    tasks = _tasks({"b1": [("a", "b")] * 10, "b2": [("b", "a")] * 10, "b3": [("a", "")] * 3})
    rows = []
    for t in tasks:
        d = t["data"]
        rows.append((d["parcel_id"], d["annotator"], "R"))
        if d["checker"]:
            # b1: all agree; b2: 8 of 10 agree (80 % < 90 %)
            k = int(d["parcel_id"].split("-")[1])
            lab = "B" if d["batch"] == "b2" and k < 2 else "R"
            rows.append((d["parcel_id"], d["checker"], lab))
    table = pd.DataFrame(rows, columns=["parcel_id", "annotator", "label"])
    res = check_annotations(table, tasks)
    status = dict(zip(res.batches["batch"], res.batches["status"], strict=True))
    assert status == {"b1": "accepted", "b2": "revision", "b3": "pending"}
    assert res.batches.set_index("batch").loc["b2", "agreement"] == pytest.approx(0.8)
    assert sorted(res.revision) == sorted(f"b2-{k}" for k in range(10))
    assert len(res.accepted) == 10
    s = res.summary
    assert s["acceptance_rate"] == pytest.approx(10 / 23)
    assert not s["target_met"]
    # with min_agreement 0.8 b2 passes, but its two disputed items still go back
    res = check_annotations(table, tasks, min_agreement=0.8)
    assert sorted(res.revision) == ["b2-0", "b2-1"]
    assert len(res.accepted) == 18


@settings(max_examples=25, deadline=None)
@given(
    st.floats(0, 1),
    st.integers(0, 10_000),
)
def test_sim_annotator_error_rate_and_confusion(rate, seed) -> None:
    classes = ["R", "B", "A", "M", "E"]
    ann = SimAnnotator("x", rate, classes, {"B": "A"}, confusion_share=1.0, seed=seed)
    labels = np.array([ann.label("B") for _ in range(400)])
    errors = labels != "B"
    # binomial: 400 draws, 5 standard deviations
    assert abs(errors.mean() - rate) <= 5 * np.sqrt(rate * (1 - rate) / 400) + 1e-9
    assert set(labels[errors]) <= {"A"}  # every mistake goes to the confusable class


def test_loop_cli_reports_rounds(tmp_path, capsys) -> None:
    frame = make_parcels(n=150, seed=5)
    rng = np.random.default_rng(0)
    codes = frame["label"].map({c: i for i, c in enumerate("RBAME")}).to_numpy()
    frame["f1"] = codes + rng.normal(0, 0.6, len(frame))  # informative features
    frame["f2"] = rng.normal(0, 1, len(frame))
    path = tmp_path / "truth.parquet"
    frame.to_parquet(path)
    out = tmp_path / "loop.json"
    assert main(["label", "simulate", str(path), "--features", "f1,f2", "--rounds", "3",
                 "--batch-size", "10", "--error-rate", "0.15", "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    rounds = report["rounds"]
    assert rounds[0]["revised_tasks"] == 0
    assert len(rounds) >= 2
    assert rounds[1]["revised_tasks"] == rounds[0]["tasks"] - rounds[0]["accepted"]
    # accepted labels are at least as good as the annotators' raw labels: the check
    # sends the worst batches back
    raw = np.mean([r["annotated_accuracy"] for r in rounds])
    assert rounds[-1]["all_accepted_accuracy"] >= raw - 0.01
    # the retrained model beats the majority class on held-out blocks
    assert rounds[-1]["model_accuracy"] > report["majority_accuracy"]
    assert "round 1:" in capsys.readouterr().out


def test_simulate_options_are_checked(tmp_path, capsys) -> None:
    path = tmp_path / "p.parquet"
    make_parcels().to_parquet(path)
    assert main(["label", "simulate", str(path), "--seed-share", "0.8", "--test-share", "0.3",
                 "--out", str(tmp_path / "o.json")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed-share" in err[0]
    assert main(["label", "simulate", str(path), "--truth-col", "nope",
                 "--out", str(tmp_path / "o.json")]) == 2  # fmt: skip
    assert "--truth-col" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
    with pytest.raises(Exception, match="seed_share"):
        SimulateOptions(seed_share=0.9)


def test_check_cli_writes_revision_tasks_and_labelled_parcels(
    tmp_path, exported, parcels_file
) -> None:
    tasks = json.loads((exported / "tasks.json").read_text())
    rows = []
    for t in tasks:
        d = t["data"]
        rows.append({"parcel_id": d["parcel_id"], "annotator": d["annotator"], "label": d["pred"]})
        if d["checker"]:
            wrong = d["batch"] == tasks[0]["data"]["batch"]
            rows.append({"parcel_id": d["parcel_id"], "annotator": d["checker"],
                         "label": "X" if wrong else d["pred"]})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "ann.csv", index=False)
    out, labelled = tmp_path / "check", tmp_path / "labelled.parquet"
    assert main(["label", "check", str(tmp_path / "ann.csv"), "--tasks", str(exported), "--out",
                 str(out), "--parcels", str(parcels_file), "--labelled", str(labelled)]) == 0  # fmt: skip
    revision = json.loads((out / "revision_tasks.json").read_text())
    first = [
        t["data"]["parcel_id"] for t in tasks if t["data"]["batch"] == tasks[0]["data"]["batch"]
    ]
    assert sorted(t["data"]["parcel_id"] for t in revision) == sorted(first)
    assert revision[0]["predictions"]  # the revision list is importable into Label Studio
    parcels = pd.read_parquet(labelled)
    status = parcels.set_index("parcel_id")["label_status"]
    assert (status[first] == "revision").all()
    assert (parcels["label"].notna() == (parcels["label_status"] == "accepted")).all()
