"""Environment shims, imported before anything else touches torchvision.

The only torchvision wheel available for torch 2.13 on this platform is a CUDA build.
On a CPU-only torch its C extension fails to load and ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist`` while registering fake
kernels; that breaks timm and segmentation-models-pytorch too. When (and only when)
the extension cannot provide the operators, we define pure-PyTorch ``torchvision::nms``
and ``torchvision::qnms`` so the import succeeds. Nothing in landforge calls NMS; the
reference implementation below is still correct so nothing silently misbehaves.
"""

from __future__ import annotations

import importlib.util

__all__ = ["ensure_torchvision"]

_done = False


def _nms_reference(boxes, scores, iou_threshold: float):  # type: ignore[no-untyped-def]
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


def _torchvision_ops_missing() -> bool:
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute lookup is the probe
    except (AttributeError, RuntimeError):
        return True
    return False


def ensure_torchvision() -> None:
    """Make ``import torchvision`` work on CPU torch with a CUDA torchvision wheel."""
    global _done
    if _done or importlib.util.find_spec("torch") is None:
        return
    _done = True
    if importlib.util.find_spec("torchvision") is None:
        return
    import torch

    # Try the real extension first: on a matching build it registers the ops.
    try:
        import torchvision  # noqa: F401

        return
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    if not _torchvision_ops_missing():
        return
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive below
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_reference, "CompositeExplicitAutograd")
    lib.impl("qnms", _nms_reference, "CompositeExplicitAutograd")
    globals()["_torchvision_lib"] = lib
    import torchvision  # noqa: F401,F811


ensure_torchvision()
