"""The model registry contract: real modules, one argument vocabulary, no name checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch.nn as nn

import landforge.training
from landforge.errors import OptionError
from landforge.models import available, build, register
from landforge.models import registry as reg
from landforge.models.registry import _BUILDERS, builder_options


def test_every_registry_module_exists_and_its_import_errors_raise(monkeypatch):
    for name in reg._MODULES:
        __import__(name)  # no silently skipped module
    monkeypatch.setattr(reg, "_MODULES", (*reg._MODULES, "landforge.models.no_such_model"))
    with pytest.raises(ModuleNotFoundError, match="no_such_model"):
        available()


@pytest.mark.parametrize("name", ["multitask_unet", "hrnet_ocr", "hrnet", "unet", "pspnet"])
def test_segmentation_builders_share_argument_names(name):
    assert {"in_channels", "classes"} <= builder_options(name)
    assert "use_classes" not in builder_options(name) or name == "multitask_unet"


def test_all_registered_builders_take_in_channels_and_classes():
    for name in available():
        if not getattr(
            getattr(_BUILDERS[name], "func", _BUILDERS[name]), "__module__", ""
        ).startswith("landforge."):
            continue  # toy models registered by other tests
        assert {"in_channels", "classes"} <= builder_options(name), name


def test_multitask_unet_classes_sizes_the_use_head_use_classes_is_deprecated():
    kw = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
    model = build("multitask_unet", classes=5, **kw)
    assert model.use_head[0].out_channels == 5 and model.classes == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = build("multitask_unet", use_classes=4, **kw)
    assert old.use_head[0].out_channels == 4
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_register_is_one_line_with_fixed_keywords():
    class Net(nn.Module):
        def __init__(self, in_channels: int = 3, classes: int = 2, variant: str = "a") -> None:
            super().__init__()
            self.args = (in_channels, classes, variant)

    try:
        register("registry_test_b", Net, variant="b")
        register("registry_test_b", Net, variant="b")  # the same again: allowed
        assert builder_options("registry_test_b") == {"in_channels", "classes"}
        assert build("registry_test_b", classes=4).args == (3, 4, "b")
        with pytest.raises(OptionError, match="unknown variant"):
            build("registry_test_b", variant="c")
        with pytest.raises(ValueError, match="registered twice"):
            register("registry_test_b", Net, variant="c")
    finally:
        _BUILDERS.pop("registry_test_b", None)


def test_builder_errors_name_the_model_kwargs_field():
    with pytest.raises(OptionError) as err:
        build("multitask_unet", classes=0)
    assert err.value.field == "model_kwargs.classes"
    with pytest.raises(OptionError) as err:
        build("hrnet_ocr", classes=3, backbone="resnet50")
    assert err.value.field == "model_kwargs.backbone"
    with pytest.raises(OptionError) as err:
        build("unet", classes=3, colour="red")
    assert err.value.field == "model_kwargs"
    with pytest.raises(OptionError) as err:
        build("no_such_model")
    assert err.value.field == "model"


def test_no_training_code_branches_on_a_model_name():
    names = available()
    folder = Path(landforge.training.__file__).parent
    for path in folder.glob("*.py"):
        text = path.read_text()
        if path.name == "options.py":  # the default of TrainOptions.model
            text = text.replace('"multitask_unet", description="Registry model', "")
        for name in names:
            assert not re.search(rf"[\"']{name}[\"']", text), f"{path.name} names {name!r}"
