"""Cross-domain matrix, CBST and a region sequence on two synthetic cities.

Two seeded cities stand in for two regions with a domain gap: ``city_a`` (seed 0,
1 m pixels) and ``city_b`` (seed 7, 0.6 m pixels: other layout, buildings and roads
appear 1.7x larger). Both get RGB chips with a building-use label (background,
residential, commercial, industrial) and a spatial train/val/test split; then

- ``landforge cross-domain`` trains on each city, tests on both (FUSU Table 4 design)
  and adapts A -> B and B -> A with CBST;
- ``landforge train-sequence`` trains on A, fine-tunes on B (encoder frozen for the
  first epoch) and scores both cities after each step (UBGG-style transfer).

    python benchmarks/cross_domain_synth.py --out runs/xdomain [--steps 150]

Prints both markdown matrices (copied into docs/results.md).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

import landforge  # noqa: F401

HEADS = {
    "use": {
        "label": "use",
        "classes": ["background", "residential", "commercial", "industrial"],
        "values": [0, 1, 2, 3],
        "loss": "ce_dice",
    }
}
SLIM = {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]}


def city_store(out: Path, name: str, seed: int, gsd: float, size_m: float) -> Path:
    from landforge.datasets.chips import build_chips
    from landforge.synth import make_city

    city = out / name
    if not (city / "city.json").exists():
        make_city(city, seed=seed, size_m=size_m, gsd=gsd, t2=False, s2=False, s1=False,
                  population=False, quiet=True)
    store = out / f"chips_{name}"
    if not (store / "index.parquet").exists():
        build_chips(city / "image.tif", {"use": city / "labels" / "building_use.tif"}, store,
                    bands=[1, 2, 3], size=128,
                    split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 3}, seed=0)
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/xdomain"))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--size-m", type=float, default=1200.0)
    a = ap.parse_args()
    os.environ.setdefault("LANDFORGE_QUIET", "1")
    a.out.mkdir(parents=True, exist_ok=True)
    stores = {
        "city_a": city_store(a.out, "city_a", 0, 1.0, a.size_m),
        "city_b": city_store(a.out, "city_b", 7, 0.6, a.size_m * 0.6),
    }
    base = {"model": "multitask_unet", "model_kwargs": SLIM | {"classes": 4},
            "heads": HEADS, "epochs": 1000, "max_steps": a.steps, "max_minutes": 10,
            "batch_size": 8, "lr": 0.003, "monitor": "val/loss",
            "early_stopping_patience": None, "taxonomy": None}
    xd = {"out": str(a.out / "cross_domain"), "regions": {k: str(v) for k, v in stores.items()},
          "eval_split": "test", "base": base,
          "cbst": {"rounds": 2, "epochs": 2}}
    seq = {"out": str(a.out / "sequence"), "regions": {k: str(v) for k, v in stores.items()},
           "order": ["city_a", "city_b"], "eval_split": "test",
           "base": base | {"freeze_encoder_epochs": 1}}
    for name, cfg in {"cross_domain": xd, "sequence": seq}.items():
        (a.out / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    from landforge.cli import main as cli

    assert cli(["cross-domain", str(a.out / "cross_domain.yaml")]) == 0
    assert cli(["train-sequence", str(a.out / "sequence.yaml")]) == 0
    print((a.out / "cross_domain" / "cross_domain.md").read_text())
    print((a.out / "sequence" / "sequence.md").read_text())


if __name__ == "__main__":
    main()
