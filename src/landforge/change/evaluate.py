"""``landforge change evaluate``: FUSU change metrics of maps or of a model on chips.

:func:`evaluate_change_maps` reads the maps of ``change predict`` (``t1_classes.tif``,
``t2_classes.tif``, ``change.tif``) against true T1/T2 label rasters block by block;
:func:`evaluate_change_chips` runs a checkpoint on a chip split. Both accumulate a
:class:`~landforge.change.metrics.ChangeMetrics` (definitions there and in
``docs/change.md``) and write the metrics as JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from landforge.change.chips import check_pair
from landforge.change.metrics import ChangeMetrics
from landforge.change.options import ChangeEvaluateOptions
from landforge.change.predict import OUTPUTS
from landforge.errors import InputError
from landforge.io.atomic import atomic_path
from landforge.io.raster import iter_blocks, open_raster

__all__ = ["evaluate_change_chips", "evaluate_change_maps", "write_json"]


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON atomically (NaN as null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(obj), indent=2) + "\n")


def _classes(o: ChangeEvaluateOptions, truths: list[Path]) -> tuple[int, list[str] | None]:
    if o.classes is not None:
        return o.classes, None
    if o.taxonomy is not None:
        from landforge.change.chips import _taxonomy

        k, names, _ = _taxonomy(o.taxonomy)
        return k, names
    top = 0
    for p in truths:
        with open_raster(p) as src:
            for w in iter_blocks((src.height, src.width), o.block):
                top = max(top, int(src.read(1, window=w).max()))
    return top + 1, None


def evaluate_change_maps(
    pred: str | os.PathLike[str],
    truth1: str | os.PathLike[str],
    truth2: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    opts: ChangeEvaluateOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Metrics of a ``change predict`` folder against true T1/T2 labels."""
    o = ChangeEvaluateOptions.build(opts, **overrides)
    pdir = Path(pred)
    preds = [pdir / OUTPUTS[k] for k in ("t1", "t2", "change")]
    for p in preds:
        if not p.exists():
            raise InputError(p, "missing: pred must be a folder written by 'change predict'")
    grid = check_pair(truth1, truth2)
    for p in preds:
        check_pair(truth1, p)
    truths = [Path(truth1), Path(truth2)]
    k, names = _classes(o, truths)
    acc = ChangeMetrics(k, names)
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(open_raster(p)) for p in (*truths, *preds)]
        for w in iter_blocks(grid, o.block):
            a = [s.read(1, window=w) for s in srcs]
            for p, arr in zip((*truths, *preds[:2]), a[:4], strict=True):
                if arr.size and (int(arr.max()) >= k or int(arr.min()) < 0):
                    bad = np.unique(arr[(arr >= k) | (arr < 0)])[:8].tolist()
                    raise InputError(p, f"value(s) {bad} outside the classes 0..{k - 1}")
            acc.update(a[0], a[1], a[2], a[3], a[4] > 0)
    m = acc.summary()
    m.update(pred=str(pdir), truth1=str(truth1), truth2=str(truth2), classes=k)
    if out is not None:
        write_json(out, m)
        figure(preds[2], truths, Path(out).with_suffix(".png"))
    return m


def figure(change: Path, truths: list[Path], path: Path, max_side: int = 800) -> None:
    """PNG: true change, predicted change, and their agreement (TP white, FP red, FN blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landforge.change.chips import IGNORE, change_label

    with open_raster(change) as src:
        f = max(1, int(math.ceil(max(src.height, src.width) / max_side)))
        shape = (max(1, src.height // f), max(1, src.width // f))
        pc = src.read(1, out_shape=shape) > 0
    y = []
    for t in truths:
        with open_raster(t) as src:
            y.append(src.read(1, out_shape=shape))
    yc = change_label(y[0], y[1])
    agree = np.zeros((*shape, 3), np.float32)
    agree[(yc == 1) & pc] = (1, 1, 1)
    agree[(yc == 0) & pc] = (1, 0.1, 0.1)
    agree[(yc == 1) & ~pc] = (0.2, 0.4, 1)
    agree[yc == IGNORE] = (0.3, 0.3, 0.3)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    axes[0].imshow(
        np.where(yc == IGNORE, 0.5, yc), cmap="magma", vmin=0, vmax=1, interpolation="nearest"
    )
    axes[0].set_title("true change (grey: unknown)")
    axes[1].imshow(pc, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("predicted change")
    axes[2].imshow(agree, interpolation="nearest")
    axes[2].set_title("white: hit, red: false alarm, blue: miss")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def evaluate_change_chips(
    chips: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    split: str = "test",
    batch: int = 8,
    device: str = "cpu",
) -> dict[str, Any]:
    """Metrics of a checkpoint on the chips of ``split`` (series as in its training)."""
    import torch
    from torch.utils.data import DataLoader

    from landforge.change.dataset import ChangeChipDataset
    from landforge.change.train import evaluate_loader, read_series_card
    from landforge.models.checkpoint import load_checkpoint

    net, card = load_checkpoint(model)
    sc = read_series_card(model)
    steps = int(sc.get("time_steps", 0))
    s1 = "VV" in sc.get("series_channels", []) or not sc.get("series_channels")
    ds = ChangeChipDataset(chips, split, steps if steps else 0, s1)
    if len(ds) == 0:
        raise InputError(chips, f"no chips in split {split!r}")
    if ds.has_series and len(ds.steps) != steps:
        raise InputError(chips, f"{len(ds.steps)} series date(s); the model expects {steps}")
    if ds.in_channels != len(card.bands):
        raise InputError(chips, f"{ds.in_channels} band(s); the model takes {len(card.bands)}")
    dev = torch.device(device)
    m = evaluate_loader(
        net.to(dev), DataLoader(ds, batch_size=batch), ds.classes, ds.meta["classes"], dev
    )
    m.update(chips=str(chips), model=str(model), split=split, n_chips=len(ds))
    if out is not None:
        write_json(out, m)
    return m
