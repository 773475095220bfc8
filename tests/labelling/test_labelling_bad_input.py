"""Bad annotation files: one error line, exit 2, and nothing imported (never half-applied)."""

from __future__ import annotations

import json

import pytest

from landforge.cli import main


def _tasks(folder):
    return json.loads((folder / "tasks.json").read_text())


def _export(tasks, edit=None):
    """A Label Studio JSON export answering every task with its pre-label."""
    items = []
    for i, t in enumerate(tasks):
        items.append(
            {
                "id": i + 1,
                "data": dict(t["data"]),
                "annotations": [
                    {
                        "id": 100 + i,
                        "completed_by": {"id": 1, "email": "ann1"},
                        "result": [
                            {
                                "from_name": "class",
                                "type": "choices",
                                "value": {"choices": [t["data"]["pred"]]},
                            }
                        ],
                    }  # fmt: skip
                ],
            }
        )
    if edit is not None:
        edit(items)
    return items


def _run(tmp_path, exported, items, capsys, out_text=None):
    ann = tmp_path / "export.json"
    ann.write_text(json.dumps(items))
    out = tmp_path / "annotations.csv"
    if out_text is not None:
        out.write_text(out_text)
    code = main(["label", "import", str(ann), "--tasks", str(exported), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err, out


def _set(i, key, value):
    def edit(items):
        items[i]["data"][key] = value

    return edit


def _unknown(items):
    items[3]["data"]["parcel_id"] = "nope"


def _label(items):
    items[2]["annotations"][0]["result"][0]["value"]["choices"] = ["Disneyland"]


def _twice(items):
    items[1]["annotations"].append(dict(items[1]["annotations"][0], id=999))


def _other_project(items):
    for k, it in enumerate(items):
        it["data"]["parcel_id"] = f"other{k}"


def _other_key(items):
    for it in items:
        it["data"]["lf_project"] = "0123456789abcdef"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_unknown, "annotation of unknown task 'nope'"),
        (_set(0, "image_path", "/etc/passwd"), "absolute path refused"),
        (_set(0, "image_path", "images/../../secret.png"), "'..' refused"),
        (_set(0, "image_path", "images/p999.png"), "is not the task's image"),
        (_label, "label 'Disneyland' is not in the taxonomy"),
        (_twice, "annotated twice by ann1"),
        (_other_project, "an export of another project?"),
        (_other_key, "tasks of another export"),
    ],
)
def test_bad_annotations_fail_whole_import(tmp_path, exported, capsys, edit, message) -> None:
    before = "parcel_id,annotator,label\nold,x,R\n"
    code, err, out = _run(tmp_path, exported, _export(_tasks(exported), edit), capsys, before)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert "export.json" in err[0]
    assert out.read_text() == before  # the previous table is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".annotations")]


def test_symlink_out_of_the_dataset_is_refused(tmp_path, exported, capsys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (exported / "images" / "link").symlink_to(outside)
    items = _export(_tasks(exported), _set(0, "image_path", "images/link/x.png"))
    code, err, out = _run(tmp_path, exported, items, capsys)
    assert code == 2 and len(err) == 1
    assert "symbolic link" in err[0]
    assert not out.exists()


def test_good_export_imports(tmp_path, exported, capsys) -> None:
    code, err, out = _run(tmp_path, exported, _export(_tasks(exported)), capsys)
    assert code == 0, err
    assert len(out.read_text().splitlines()) == len(_tasks(exported)) + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "missing_dir"], "task list does not exist"),
        (["--format", "yaml"], "--format"),
    ],
)
def test_bad_options(tmp_path, exported, capsys, args, message) -> None:
    ann = tmp_path / "a.json"
    ann.write_text("[]")
    base = ["label", "import", str(ann), "--tasks", str(exported), "--out", str(tmp_path / "o.csv")]
    code = main([*base, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o.csv").exists()


def test_export_rejects_a_prediction_outside_the_taxonomy(tmp_path, capsys) -> None:
    from labelling_helpers import make_parcels

    frame = make_parcels()
    frame.loc[3, "pred"] = "Atlantis"
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    code = main(["label", "export", str(path), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'Atlantis'" in err[0] and "p.parquet" in err[0]
    assert not (tmp_path / "t").exists()


def test_export_with_another_class_column(tmp_path, capsys) -> None:
    """Any parcels file with a class column works (e.g. from 'parcels assign')."""
    from labelling_helpers import make_parcels

    frame = make_parcels()[["parcel_id", "label", "geometry"]].rename(columns={"label": "cls"})
    frame["conf"] = 0.5
    path = tmp_path / "assigned.gpkg"
    frame.to_file(path)
    out = tmp_path / "t"
    assert main(["label", "export", str(path), "--pred-col", "cls", "--score-col", "conf",
                 "--out", str(out), "--patch-px", "32"]) == 0  # fmt: skip
    tasks = _tasks(out)
    assert {t["predictions"][0]["score"] for t in tasks} == {0.5}
    code = main(["label", "export", str(path), "--out", str(tmp_path / "u")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--pred-col" in err[-1] and "'pred'" in err[-1]
