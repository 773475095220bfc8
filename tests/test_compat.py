"""The torchvision shim: imports work on CPU torch, and the fallback NMS is correct."""

from __future__ import annotations

import torch

from landforge._compat import _nms_reference


def test_vision_stack_imports():
    import segmentation_models_pytorch as smp
    import timm
    import torchvision

    assert torchvision.__version__.startswith("0.28")
    assert timm.create_model("resnet18", pretrained=False, num_classes=0) is not None
    assert smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=1) is not None


def _brute_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    keep: list[int] = []
    for i in scores.argsort(descending=True).tolist():
        ok = True
        for j in keep:
            a, b = boxes[i], boxes[j]
            iw = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
            ih = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
            inter = iw * ih
            union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
            if inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_reference_nms_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 50
    wh = torch.rand(60, 2, generator=g) * 20 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(60, generator=g)
    assert _nms_reference(boxes, scores, 0.3).tolist() == _brute_nms(boxes, scores, 0.3)


def test_registered_op_is_callable():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert torch.ops.torchvision.nms(boxes, scores, 0.5).tolist() == [0, 2]


def _run(code: str) -> str:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_import_landforge_stays_light():
    # the CLI starts in about a second because torch is only imported when a model is used
    assert _run("import sys, landforge; print('torch' in sys.modules)") == "False"


def test_hook_fixes_first_import_of_any_vision_package():
    for first in ("torchvision", "timm", "segmentation_models_pytorch"):
        assert _run(f"import landforge, {first}; print('ok')") == "ok"
