"""Safe loading: no data file landforge reads can run code.

Each reader is given a hostile file: a pickle that, if it were unpickled, would create a
marker file (``builtins.open(marker, "w")``). The reader must refuse it with an
InputError (or the format library's refusal) and the marker must not appear. A source
scan checks that no pickle-based loader is used anywhere in ``src/``.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from landforge.errors import InputError, OptionError
from landforge.io.safe_paths import safe_member_path

SRC = Path(__file__).resolve().parents[1] / "src" / "landforge"


def hostile_pickle(marker: Path) -> bytes:
    """Protocol-0 pickle whose loading calls ``open(marker, "w")`` (never loaded here)."""
    return b"cbuiltins\nopen\n(S'" + str(marker).encode() + b"'\nS'w'\ntR."


class _Opens:
    """An object that, when unpickled, creates a file (to hide in an object array)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----------------------------------------------------------------------- the source


_BANNED_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve"}
_BANNED_CALLS = {
    "torch.load",
    "torch.hub.load",
    "pickle.load",
    "pickle.loads",
    "marshal.load",
    "marshal.loads",
    "yaml.unsafe_load",
    "yaml.full_load",
    "yaml.load_all",
    "yaml.unsafe_load_all",
}
_BANNED_ATTRS = {"read_pickle", "unsafe_load", "load_state_dict_from_url"}
_GENSIM_MODELS = {"Word2Vec", "KeyedVectors", "FastText", "Doc2Vec"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _source_problems(path: Path, root: Path = SRC.parent) -> tuple[list[str], set[str]]:
    """(problems, names of the yaml Loader classes used) of one module."""
    problems: list[str] = []
    loaders: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(root)
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _BANNED_MODULES:
                    problems.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in _BANNED_MODULES:
                problems.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            attr = name.rsplit(".", 1)[-1]
            if name in _BANNED_CALLS or attr in _BANNED_ATTRS:
                problems.append(f"{where}: {name}(...)")
            if attr == "load" and name.split(".")[-2:-1] and name.split(".")[-2] in _GENSIM_MODELS:
                problems.append(f"{where}: {name}(...) unpickles a gensim model")
            if name in ("np.load", "numpy.load"):
                value = kw.get("allow_pickle")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    problems.append(f"{where}: np.load without allow_pickle=False")
            if name == "yaml.load":
                loader = kw.get("Loader")
                if loader is None:
                    problems.append(f"{where}: yaml.load without a Loader")
                else:
                    loaders.add(_dotted(loader))
            for key in ("allow_pickle", "weights_only"):
                value = kw.get(key)
                if key == "allow_pickle" and isinstance(value, ast.Constant) and value.value:
                    problems.append(f"{where}: allow_pickle=True")
                if key == "weights_only" and isinstance(value, ast.Constant) and not value.value:
                    problems.append(f"{where}: weights_only=False")
    return problems, loaders


def test_no_pickle_based_loader_in_the_source():
    problems: list[str] = []
    loaders: set[str] = set()
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        found, used = _source_problems(path)
        problems += found
        loaders |= used
    assert problems == []
    # the one yaml.load in the package uses a SafeLoader subclass
    from landforge.taxonomy import loader as taxonomy_loader

    for name in loaders:
        cls = getattr(taxonomy_loader, name.rsplit(".", 1)[-1], None)
        assert isinstance(cls, type) and issubclass(cls, yaml.SafeLoader), name


def test_the_scan_catches_what_it_should(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import pickle\nimport torch\nimport numpy as np\nimport yaml\n"
        "from gensim.models import Word2Vec\n"
        "torch.load('x', weights_only=False)\nnp.load('x')\nyaml.load('x')\n"
        "Word2Vec.load('m')\nimport pandas as pd\npd.read_pickle('x')\n"
    )
    problems, _ = _source_problems(bad, tmp_path)
    text = "\n".join(problems)
    for what in (
        "import pickle",
        "torch.load",
        "weights_only=False",
        "np.load without",
        "yaml.load without",
        "gensim",
        "read_pickle",
    ):
        assert what in text, what


# ----------------------------------------------------------------------- YAML


def test_yaml_python_tags_are_refused(tmp_path):
    from landforge.config import load_yaml

    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"chips: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_yaml(path)
    assert not marker.exists()


def test_taxonomy_yaml_python_tags_are_refused(tmp_path):
    from landforge.taxonomy.loader import _read_yaml

    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"taxonomy: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(InputError, match="invalid YAML"):
        _read_yaml(path)
    assert not marker.exists()


# ----------------------------------------------------------------------- checkpoints


def test_model_checkpoint_that_is_a_pickle_is_refused(tmp_path):
    from landforge.models.checkpoint import ModelCard, load_checkpoint

    marker = tmp_path / "ran"
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(hostile_pickle(marker))
    card = ModelCard(model="multitask_unet", bands=["r"], mean=[0.0], std=[1.0], heads={})
    weights.with_suffix(".json").write_text(card.model_dump_json())
    with pytest.raises(InputError, match="not a safetensors file"):
        load_checkpoint(weights)
    assert not marker.exists()


def test_encoder_weights_that_are_a_pickle_are_refused(tmp_path):
    from landforge.models.multitask_unet import load_encoder_weights

    marker = tmp_path / "ran"
    path = tmp_path / "resnet18.safetensors"
    path.write_bytes(hostile_pickle(marker))
    with pytest.raises(InputError, match="not a safetensors file"):
        load_encoder_weights(torch.nn.Conv2d(3, 8, 3), path, in_channels=3)
    assert not marker.exists()


def test_init_refuses_pickled_checkpoint_formats(tmp_path):
    from landforge.training.train import _checkpoint_file

    for name in ("model.pt", "model.ckpt", "model.pth", "model.bin"):
        with pytest.raises(InputError, match="pickled .pt/.ckpt files are never loaded"):
            _checkpoint_file(tmp_path / name)


def test_training_state_round_trips_without_pickle(tmp_path):
    from landforge.models.checkpoint import _STATE_KEY, STATE_FORMAT, load_state, save_state

    state = {
        "epoch": 3,
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(4.0), "exp_avg": torch.ones(2, 3)}},
                "param_groups": [{"betas": (0.9, 0.999), "params": [0], "foreach": None}],
            }
        ],
        "callbacks": {"Best": {"best": math.inf, "worst": -math.inf, "odd": math.nan}},
        "$literal": "a key that looks like a tag",
        "rng": (3, (1, 2, 3), None),
        "empty": {},
    }
    path = save_state(state, tmp_path / "last.safetensors")
    back = load_state(path)
    opt = back["optimizer_states"][0]
    assert list(opt["state"]) == [0]  # integer keys stay integers (optimizer ids)
    torch.testing.assert_close(opt["state"][0]["exp_avg"], torch.ones(2, 3))
    assert opt["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["rng"] == (3, (1, 2, 3), None)
    best = back["callbacks"]["Best"]
    assert best["best"] == math.inf and best["worst"] == -math.inf and math.isnan(best["odd"])
    assert back["$literal"] == state["$literal"] and back["empty"] == {}
    # the file is plain safetensors: tensors plus JSON metadata
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert list(meta) == [_STATE_KEY]  # one key: the bytes do not depend on map order
    assert json.loads(meta[_STATE_KEY])["format"] == STATE_FORMAT
    # the same state gives the same bytes
    again = save_state(state, tmp_path / "again.safetensors")
    assert again.read_bytes() == path.read_bytes()
    # anything that would need pickle cannot be stored at all
    with pytest.raises(TypeError, match="cannot store a _Opens"):
        save_state({"x": _Opens(tmp_path / "m")}, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_training_state_that_is_a_pickle_is_refused(tmp_path):
    from landforge.training.resume import SafeCheckpointIO

    marker = tmp_path / "ran"
    path = tmp_path / "last.safetensors"
    path.write_bytes(hostile_pickle(marker))
    with pytest.raises(InputError, match="not a landforge training state"):
        SafeCheckpointIO().load_checkpoint(path)
    # a genuine torch.save (zip + pickle) file is refused just the same
    torch.save({"state_dict": {"w": torch.ones(1)}}, path)
    with pytest.raises(InputError, match="not a landforge training state"):
        SafeCheckpointIO().load_checkpoint(path)
    # a safetensors file without our metadata (e.g. model weights) is not a state either
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(path))
    with pytest.raises(InputError, match="no 'landforge-train-state/1' metadata"):
        SafeCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_resume_never_loads_a_lightning_ckpt(tmp_path):
    from landforge.training.train import find_resume_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "train_config.json").write_text("{}")
    marker = tmp_path / "ran"
    (run / "checkpoints" / "last.ckpt").write_bytes(hostile_pickle(marker))
    for given in (run, run / "checkpoints", run / "checkpoints" / "last.ckpt"):
        with pytest.raises(OptionError, match="never loaded"):
            find_resume_checkpoint(given)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"")
    assert find_resume_checkpoint(run) == run / "checkpoints" / "last.safetensors"
    assert not marker.exists()


# ----------------------------------------------------------------------- data files


def test_chip_with_an_object_array_is_refused(tmp_path):
    from landforge.datasets.chip_store import load_chip

    marker = tmp_path / "ran"
    (tmp_path / "chips").mkdir()
    np.savez(
        tmp_path / "chips" / "c0.npz",
        image=np.array([_Opens(marker)], dtype=object),
    )
    assert not marker.exists()
    with pytest.raises((InputError, ValueError), match="allow_pickle|pickle"):
        load_chip(tmp_path, "c0")
    assert not marker.exists()


def test_poi_embeddings_are_parquet_and_a_pickle_is_refused(tmp_path):
    from landforge.features.poi_embed import POIEmbedder, _frame

    emb = POIEmbedder(dim=2)
    emb.embeddings_ = _frame(["cafe", "school"], np.eye(2, dtype=np.float32))
    path = emb.save(tmp_path / "emb.parquet")
    assert path.read_bytes()[:4] == b"PAR1"
    back = POIEmbedder.load(path)
    assert back.categories_ == ["cafe", "school"]

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.parquet"
    evil.write_bytes(hostile_pickle(marker))
    with pytest.raises(InputError, match="not a readable Parquet file"):
        POIEmbedder.load(evil)
    assert not marker.exists()


def test_pyarrow_does_not_unpickle_extension_types():
    import pyarrow as pa

    # CVE-2023-47248: pyarrow < 14.0.1 unpickled PyExtensionType metadata of Parquet/IPC
    major, minor, patch = (int(x) for x in pa.__version__.split(".")[:3])
    assert (major, minor, patch) >= (14, 0, 1)


# ----------------------------------------------------------------------- member paths


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "\\\\server\\share\\x.tif",
        "C:\\Windows\\x.tif",
        "C:x.tif",
        "../x.tif",
        "a/../../x.tif",
        "a\\..\\..\\x.tif",
        "..",
        "",
        "./",
        "a\x00b",
    ],
)
def test_member_paths_that_leave_the_root_are_refused(tmp_path, name):
    with pytest.raises(InputError):
        safe_member_path(tmp_path, name)


def test_member_paths_inside_the_root_are_kept(tmp_path):
    assert safe_member_path(tmp_path, "images/a.tif") == tmp_path / "images" / "a.tif"
    assert safe_member_path(tmp_path, "./images//b.tif") == tmp_path / "images" / "b.tif"
    assert safe_member_path(tmp_path, "images\\c.tif") == tmp_path / "images" / "c.tif"
    assert safe_member_path(tmp_path, "a..b/c.tif") == tmp_path / "a..b" / "c.tif"


def test_member_path_through_a_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InputError, match="symbolic link"):
        safe_member_path(root, "link/x.tif")


def test_member_path_error_names_the_archive(tmp_path):
    with pytest.raises(InputError) as info:
        safe_member_path(tmp_path, "../x.tif", source="labels.zip")
    assert info.value.source == "labels.zip"
    assert "'../x.tif'" in info.value.problem and "'..'" in info.value.problem


def test_train_resume_never_calls_torch_load(tmp_path, monkeypatch):
    from landforge.datasets.chips import build_chips
    from landforge.synth.toy import make_toy_scene
    from landforge.training.train import train

    scene = make_toy_scene(tmp_path / "scene", size=64, seed=0)
    store = build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        tmp_path / "chips",
        extras=[scene["poi"]],
        size=32,
        split={"train": 0.5, "val": 0.5, "block_size": 1},
    )
    cfg = {
        "chips": str(store),
        "out": str(tmp_path / "run"),
        "model_kwargs": {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 8]},
        "batch_size": 2,
        "epochs": 3,
        "max_steps": 1,
    }
    train(cfg)
    state = tmp_path / "run" / "checkpoints" / "last.safetensors"
    assert state.is_file() and not list(state.parent.glob("*.ckpt"))

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", refuse)
    train(cfg, max_steps=2, resume=str(tmp_path / "run"))
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["metrics"]["steps"] == 2
