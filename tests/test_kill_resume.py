"""Kill and resume: SIGKILL ``landforge run``, ``predict`` and ``train`` mid-way, run again.

Each command runs as a subprocess (``python -m landforge.cli``) and is killed with
SIGKILL as soon as it shows progress on disk (a manifest entry, a finished block in
``OUT.parts/``, a training checkpoint). The same command is then run again (``train``
with ``--resume OUT``) and its outputs are compared with those of an uninterrupted run
in another directory:

* rasters, chips, Parquet files and model weights byte for byte;
* training: the same tensors, exactly (CPU, one thread, the random generators are part
  of the checkpoint), and the same validation metrics in the model card;
* vector files (GeoPackage stores a timestamp) and JSON side files by content.

All subprocesses run with one thread (``OMP_NUM_THREADS=1``): the same arithmetic in
every run, and little load on a shared machine.
"""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
import torch

from landforge.models.checkpoint import ModelCard, save_checkpoint
from landforge.synth.toy import make_toy_scene

TINY = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
ENV = os.environ | {
    "LANDFORGE_QUIET": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def landforge(*args: object) -> list[str]:
    """The command line of ``landforge ARGS`` in this interpreter."""
    return [sys.executable, "-m", "landforge.cli", *(str(a) for a in args)]


class Started:
    """A command running in the background, its output going to a log file."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.args = args
        self.log = cwd / f"run-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                args, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT
            )

    def finish(self) -> None:
        """Wait for the end; fail with its output unless it succeeded."""
        try:
            rc = self.proc.wait(timeout=900)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        assert rc == 0, f"{' '.join(self.args)}\n{self.log.read_text()[-4000:]}"


def run_ok(args: list[str], cwd: Path) -> None:
    """Run a command to the end; fail with its output unless it succeeds."""
    Started(args, cwd).finish()


def kill_when(args: list[str], cwd: Path, ready: Callable[[], bool], after_s: float = 0.0) -> None:
    """Start ``args``; SIGKILL it ``after_s`` seconds after ``ready()`` first holds.

    Fails if the command ends before it could be killed (then nothing was interrupted).
    """
    log = cwd / f"killed-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"ended (rc {proc.returncode}) before any progress:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no progress in 600 s:\n{log.read_text()}")
            time.sleep(0.01)
        time.sleep(after_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"ended before the kill:\n{log.read_text()}"


def stage_status(run: Path, stage: str) -> str | None:
    """The manifest status of ``stage`` (None before the manifest names it)."""
    try:
        manifest = json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("stages", {}).get(stage, {}).get("status")


def same_file(a: Path, b: Path) -> None:
    assert b.is_file(), f"missing {b}"
    assert filecmp.cmp(a, b, shallow=False), f"{b} differs from {a}"


def same_json(a: Path, b: Path, ra: Path, rb: Path) -> None:
    """Equal JSON once the run directories are named alike and timestamps dropped."""

    def norm(path: Path, run: Path) -> object:
        text = path.read_text().replace(str(run), "RUN")
        data = json.loads(text)
        if isinstance(data, dict):
            data.pop("created", None)
        return data

    assert norm(a, ra) == norm(b, rb), f"{b} differs from {a}"


def same_vectors(a: Path, b: Path) -> None:
    da, db = gpd.read_file(a), gpd.read_file(b)
    assert list(da.columns) == list(db.columns) and len(da) == len(db), b
    assert da.drop(columns="geometry").equals(db.drop(columns="geometry")), b
    assert da.geometry.to_wkb().tolist() == db.geometry.to_wkb().tolist(), b


def same_outputs(ra: Path, rb: Path) -> int:
    """Compare every output of run directory ``rb`` with ``ra``; returns files compared."""
    n = 0
    for a in sorted(p for p in ra.rglob("*") if p.is_file()):
        rel = a.relative_to(ra)
        b = rb / rel
        if rel.name == "manifest.json" or "logs" in rel.parts or rel.suffix == ".log":
            continue  # timings and Lightning's CSV logs (one per run)
        if a.suffix in (".gpkg",):
            same_vectors(a, b)
        elif a.suffix == ".json":
            same_json(a, b, ra, rb)
        else:
            same_file(a, b)
        n += 1
    return n


def leftovers(run: Path) -> list[str]:
    """Temporary files of interrupted writers that are still there.

    Every temporary (atomic outputs, the staging files of StagedCOG / TiledStage) is
    named after its writer's process, and the next write of the same output removes a
    dead writer's ones.
    """
    return sorted(
        str(p.relative_to(run))
        for p in run.rglob("*")
        if p.name.startswith(".") or p.name.endswith((".parts", ".tmp"))
    )


def tiny_checkpoint(path: Path, bands: list[str]) -> Path:
    """A randomly initialised tiny multi-task U-Net as a landforge checkpoint."""
    from landforge.models.registry import build

    kwargs = TINY | {"in_channels": len(bands), "classes": 3}
    torch.manual_seed(0)
    model = build("multitask_unet", **kwargs)
    card = ModelCard(
        model="multitask_unet",
        model_kwargs=kwargs,
        bands=bands,
        mean=[100.0 if b in ("red", "green", "blue") else 0.0 for b in bands],
        std=[50.0 if b in ("red", "green", "blue") else 1.0 for b in bands],
        heads={"footprint": ["building"], "use": ["residential", "commercial", "industrial"]},
        taxonomy="rci",
    )
    return save_checkpoint(model.eval(), card, path)


# ----------------------------------------------------------------------- predict


def test_predict_killed_mid_way_resumes_to_identical_rasters(tmp_path):
    scene = make_toy_scene(tmp_path / "scene", size=192, seed=3)
    ckpt = tiny_checkpoint(tmp_path / "model", ["red", "green", "blue", "poi_use"])

    def args(out: Path) -> list[str]:
        return landforge(
            "predict", "--model", ckpt, "--image", scene["image"], "--extra", scene["poi"],
            "--out", out / "map.tif", "--probs", out / "probs.tif",
            "--footprint-prob", out / "fp.tif",
            "--window", 64, "--overlap", 8, "--block-windows", 1,
        )  # fmt: skip

    ref, killed = tmp_path / "ref", tmp_path / "killed"
    reference = Started(args(ref), tmp_path)  # the uninterrupted run, alongside
    parts = killed / "map.tif.parts"
    kill_when(args(killed), tmp_path, lambda: any(parts.glob("b*.done.json")))
    finished = len(list(parts.glob("b*.done.json")))
    assert not (killed / "map.tif").exists()
    assert finished >= 1
    run_ok(args(killed), tmp_path)  # resume is on by default
    reference.finish()
    for name in ("map.tif", "probs.tif", "fp.tif"):
        same_file(ref / name, killed / name)
    assert not parts.exists()
    assert leftovers(killed) == []


# ----------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from landforge.datasets.chips import build_chips

    d = tmp_path_factory.mktemp("kill_train")
    scene = make_toy_scene(d / "scene", size=96, seed=0)
    return build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        d / "chips",
        extras=[scene["poi"]],
        size=32,
        split={"train": 0.5, "val": 0.5, "block_size": 1},
    )


def _train_config(tmp_path: Path, store: Path, epochs: int) -> Path:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        json.dumps(  # JSON is YAML
            {
                "chips": str(store),
                "model_kwargs": TINY,
                "batch_size": 2,
                "epochs": epochs,
                "augment": True,  # draws from torch's generator: must resume exactly too
                "seed": 7,
                "early_stopping_patience": None,
            }
        )
    )
    return cfg


def _epochs_logged(run: Path) -> list[list[int]]:
    """Per Lightning log version (one per run or resume), the epochs it logged."""
    out = []
    for log in sorted((run / "logs").glob("version_*/metrics.csv")):
        rows = log.read_text().splitlines()
        col = rows[0].split(",").index("epoch")
        out.append(sorted({int(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]}))
    return out


def _check_train_resume(tmp_path: Path, store: Path, epochs: int, kill_after_epochs: int) -> None:
    from safetensors.torch import load_file

    cfg = _train_config(tmp_path, store, epochs)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    reference = Started(landforge("train", cfg, "--out", ref), tmp_path)
    state = killed / "checkpoints" / "last.safetensors"

    def saved_epochs() -> bool:
        from landforge.errors import InputError
        from landforge.models.checkpoint import load_state

        try:
            return int(load_state(state)["epoch"]) >= kill_after_epochs
        except InputError:  # not written yet
            return False

    kill_when(landforge("train", cfg, "--out", killed), tmp_path, saved_epochs)
    assert not (killed / "model.safetensors").exists()
    run_ok(landforge("train", cfg, "--out", killed, "--resume", killed), tmp_path)
    reference.finish()

    # the resumed run started where the checkpoint was, not at epoch 0
    logged = _epochs_logged(killed)
    assert len(logged) == 2 and logged[1][0] >= kill_after_epochs and logged[1][-1] == epochs - 1
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma = json.loads((ref / "model.json").read_text())["metrics"]
    mb = json.loads((killed / "model.json").read_text())["metrics"]
    assert ma.keys() == mb.keys()
    for key in ma:
        assert mb[key] == pytest.approx(ma[key], rel=1e-6, abs=1e-7), key
    assert [p.name for p in (killed / "checkpoints").iterdir()] == ["last.safetensors"]


def test_train_killed_after_a_checkpoint_resumes_to_the_same_weights(tmp_path, store):
    _check_train_resume(tmp_path, store, epochs=3, kill_after_epochs=1)


@pytest.mark.slow
def test_train_killed_late_resumes_to_the_same_weights(tmp_path, store):
    _check_train_resume(tmp_path, store, epochs=8, kill_after_epochs=5)


# ----------------------------------------------------------------------- run


def _pipeline(tmp_path: Path, with_train: bool) -> Path:
    """City -> parcels -> POI maps -> chips (-> train) -> predict -> buildings."""
    if with_train:
        model = "model/model.safetensors"
        train = f"""
  - name: train
    type: train
    with:
      chips: chips
      out: model
      model_kwargs: {json.dumps(TINY)}
      epochs: 3
      batch_size: 4
      seed: 3
"""
    else:
        model = str(tiny_checkpoint(tmp_path / "model", ["red", "green", "blue"] + RCI))
        train = ""
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"""name: killed
stages:
  - name: city
    type: synth_city
    with: {{out: city, seed: 0, size_m: 400, gsd: 2.0, t2: false, s1: false, s2: false,
           population: false, quiet: true}}
  - name: parcels
    type: parcels
    with: {{roads: city/roads.gpkg, boundary: city/boundary.gpkg, out: parcels.parquet}}
  - name: poi_maps
    type: poi_maps
    with:
      poi: city/pois.parquet
      like: city/image.tif
      taxonomy: gbt35648_rci
      category_col: gbt_category
      dmax: {{residential: 300, commercial: 300, industrial: 800}}
      out: poi.tif
  - name: chips
    type: chips
    with:
      image: city/image.tif
      bands: [1, 2, 3]
      extras: [poi.tif]
      labels: {{footprint: city/labels/footprint.tif, use: city/labels/building_use.tif}}
      size: 64
      split: {{train: 0.7, val: 0.3, block_size: 1}}
      out: chips
{train}
  - name: predict
    type: predict
    with:
      model: {model}
      image: city/image.tif
      extras: [poi.tif]
      out: map.tif
      footprint_out: footprint_prob.tif
      window: 64
      overlap: 8
      block_windows: 1
  - name: buildings
    type: vectorize
    with: {{map: map.tif, footprint_prob: footprint_prob.tif, out: buildings.gpkg}}
"""
    )
    return path


RCI = ["residential", "commercial", "industrial"]


def _check_run_resume(tmp_path: Path, with_train: bool, stage: str, after_s: float) -> None:
    pipeline = _pipeline(tmp_path, with_train)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    reference = Started(landforge("run", pipeline, "--run-dir", ref), tmp_path)
    kill_when(
        landforge("run", pipeline, "--run-dir", killed),
        tmp_path,
        lambda: stage_status(killed, stage) == "running",
        after_s=after_s,
    )
    stages = json.loads((killed / "manifest.json").read_text())["stages"]
    killed_in = [name for name, st in stages.items() if st["status"] != "done"]
    left = leftovers(killed)
    run_ok(landforge("run", pipeline, "--run-dir", killed), tmp_path)
    reference.finish()
    manifest = json.loads((killed / "manifest.json").read_text())
    assert {s["status"] for s in manifest["stages"].values()} == {"done"}, killed_in
    try:
        compared = same_outputs(ref, killed)
    except AssertionError as exc:
        raise AssertionError(f"killed in {killed_in}: {exc}") from None
    assert compared >= 20
    assert leftovers(killed) == [], f"killed in {killed_in}, leaving {left}"


def test_run_killed_in_a_stage_resumes_to_identical_outputs(tmp_path):
    # killed while the synthetic city is being written (its temporary directory exists)
    _check_run_resume(tmp_path, with_train=False, stage="city", after_s=0.6)


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "after_s"), [("chips", 0.2), ("predict", 0.5)])
def test_run_killed_in_a_later_stage_resumes_to_identical_outputs(tmp_path, stage, after_s):
    _check_run_resume(tmp_path, with_train=False, stage=stage, after_s=after_s)


@pytest.mark.slow
def test_run_killed_while_training_resumes_to_identical_outputs(tmp_path):
    _check_run_resume(tmp_path, with_train=True, stage="train", after_s=2.0)


# ----------------------------------------------------------------------- atomic outputs


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from landforge.synth import make_city

    out = tmp_path_factory.mktemp("atomic") / "city"
    make_city(out, size_m=400, gsd=2, t2=False, s1=False, s2=False, population=False, quiet=True)
    return out


class _Boom(RuntimeError):
    pass


def _fail_after_first(fn: Callable, calls: list[int]) -> Callable:
    """``fn`` that raises _Boom on its second call (the first block is written)."""

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise _Boom("injected failure after the first block")
        return fn(*args, **kwargs)

    return wrapped


def test_poi_maps_failing_mid_way_leave_no_output(city, tmp_path, monkeypatch):
    from landforge.cli import main
    from landforge.features import poi_maps as P

    original = P._blocks
    written: list[int] = []

    def blocks(per_class, classes, grid, *args, **kwargs):
        # the first full-width strip of blocks reaches the staged COG, then a block fails
        for rows, cols, block in original(per_class, classes, grid, *args, **kwargs):
            yield rows, cols, block
            if cols.stop == grid.width:
                written.append(rows.stop)
                raise _Boom("injected failure after the first strip")

    monkeypatch.setattr(P, "_blocks", blocks)
    out = tmp_path / "out" / "poi.tif"
    args = [
        "poi-maps", "--poi", city / "pois.parquet", "--like", city / "image.tif",
        "--taxonomy", "gbt35648_rci", "--category-col", "gbt_category",
        "--dmax", "residential=300,commercial=300,industrial=800",
        "--block-pixels", 2048, "--out", out,
    ]  # fmt: skip
    with pytest.raises(_Boom):
        main([str(a) for a in args])
    assert written and written[0] < 200  # failed after one strip of the 200-row grid
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging file either
    monkeypatch.setattr(P, "_blocks", original)
    assert main([str(a) for a in args]) == 0 and out.is_file()


def test_builtup_failing_mid_way_leaves_no_output(city, tmp_path, monkeypatch):
    from landforge.inference import builtup as B
    from landforge.inference.builtup import builtup_mask

    calls: list[int] = []
    monkeypatch.setattr(B, "builtup_block", _fail_after_first(B.builtup_block, calls))
    out = tmp_path / "out" / "builtup.tif"
    inputs = [city / "labels" / "footprint.tif"]
    with pytest.raises(_Boom):
        builtup_mask(inputs, city / "image.tif", out, block=64)
    assert len(calls) == 2  # the first block was written, the second failed
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging file either
    monkeypatch.undo()
    summary = builtup_mask(inputs, city / "image.tif", out, block=64)
    assert out.is_file() and summary["blocks"] > 1


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    from landforge.io.atomic import _host, atomic_dir, atomic_path, temp_sibling

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    out = tmp_path / "map.tif"
    mine = temp_sibling(out, ".stage.tif")  # a live writer's (this process)
    stale = tmp_path / mine.name.replace(f".{os.getpid()}-", f".{pid}-")
    stale.write_bytes(b"half a raster")
    other_host = tmp_path / f".map.tif.{pid}-elsewhere.abc.tmp.tif"
    other_host.write_bytes(b"")
    unrelated = tmp_path / f".map.gpkg.{pid}-{_host()}.abc.tmp.gpkg"  # another output's
    unrelated.write_bytes(b"")
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert not stale.exists()  # its writer is gone
    assert mine.exists() and other_host.exists()  # alive, or not ours to judge
    assert unrelated.exists()  # cleaned when map.gpkg is written, not map.tif
    stale_dir = tmp_path / f".city.{pid}-{_host()}.x.tmp"
    stale_dir.mkdir()
    (stale_dir / "image.tif").write_bytes(b"")
    with atomic_dir(tmp_path / "city") as tmp:
        (tmp / "city.json").write_text("{}")
    assert not stale_dir.exists() and (tmp_path / "city" / "city.json").is_file()


def test_a_killed_staged_cog_leaves_nothing_after_the_next_write(tmp_path):
    import numpy as np

    from landforge.io.raster import RasterGrid, StagedCOG

    out = tmp_path / "poi.tif"
    code = (
        "import os, signal, sys\n"
        "from landforge.io.raster import RasterGrid, StagedCOG\n"
        "g = RasterGrid.from_bounds(0, 0, 64, 64, 1.0, 'EPSG:32650')\n"
        "StagedCOG(sys.argv[1], g, 1, 'uint8', None)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=ENV, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert leftovers(tmp_path)  # the killed writer's staging file
    grid = RasterGrid.from_bounds(0, 0, 64, 64, 1.0, "EPSG:32650")
    staged = StagedCOG(out, grid, 1, "uint8", None)
    staged.write(np.zeros((1, 64, 64), np.uint8), 0)
    staged.finish()
    assert out.is_file()
    assert leftovers(tmp_path) == []
