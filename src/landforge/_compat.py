"""Environment shims, installed before anything else touches torchvision.

The only torchvision wheel available for torch 2.13 on this platform is a CUDA build.
On a CPU-only torch its C extension fails to load and ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist`` while registering fake
kernels; that breaks timm and segmentation-models-pytorch too. When (and only when)
the extension cannot be loaded, we define pure-PyTorch ``torchvision::nms`` and
``torchvision::qnms`` before torchvision is imported, so the import succeeds. Nothing
in landforge calls NMS; the reference implementation is still correct so nothing
silently misbehaves.

Importing torch costs seconds, so the fix is lazy: ``import landforge`` only installs an
import hook, which runs :func:`ensure_torchvision` the first time torchvision, timm or
segmentation-models-pytorch is imported (by landforge or by the user). CLI commands that
never touch a model therefore start fast.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.util
import os
import sys
from typing import Any

__all__ = ["ensure_torchvision", "install"]

_TRIGGERS = frozenset({"torchvision", "timm", "segmentation_models_pytorch"})
_done = False


def _nms_reference(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    import torch

    order = scores.argsort(descending=True)
    keep = []
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def _extension_loads(package_dir: str) -> bool:
    """Whether torchvision's compiled ops load on this torch (without importing it)."""
    import torch

    libs = glob.glob(os.path.join(package_dir, "_C*.so")) + glob.glob(
        os.path.join(package_dir, "_C*.pyd")
    )
    if not libs:
        return False
    try:
        torch.ops.load_library(libs[0])
    except (OSError, RuntimeError):
        return False
    return True


def ensure_torchvision() -> None:
    """Make ``import torchvision`` work on CPU torch with a CUDA torchvision wheel."""
    global _done
    if _done:
        return
    _done = True
    if "torchvision" in sys.modules or importlib.util.find_spec("torch") is None:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    if _extension_loads(list(spec.submodule_search_locations)[0]):
        return
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_reference, "CompositeExplicitAutograd")
    lib.impl("qnms", _nms_reference, "CompositeExplicitAutograd")
    globals()["_torchvision_lib"] = lib  # the registration lives as long as this object


class _Hook(importlib.abc.MetaPathFinder):
    """Runs :func:`ensure_torchvision` just before the first vision import."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname in _TRIGGERS:
            _uninstall()
            ensure_torchvision()
        return None  # the regular finders import the module


_hook = _Hook()


def _uninstall() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)


def install() -> None:
    """Install the lazy hook (idempotent); run the fix now if a trigger is imported."""
    if _done:
        return
    if any(name in sys.modules for name in _TRIGGERS):
        ensure_torchvision()
        return
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)


install()
