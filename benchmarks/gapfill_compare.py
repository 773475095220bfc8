"""Gap-fill on real imagery with artificial cloud masks: kriging against three baselines.

The truth is known because the clouds are artificial: smooth random blobs (a Gaussian-
smoothed noise field above its ``1 - cover`` quantile, seeded) laid on clear images:

* ``slovenia_s2``: the three clear Sentinel-2 L1C reference scenes (2, 3, 4), bands
  B02, B03, B04, B08 (TOA reflectance), 100 x 101 px at 10 m;
* ``lausanne_swissimage``: the 875 x 600 SWISSIMAGE RGB tile at 0.5 m (uint8).

Every method runs through :func:`landforge.prep.gapfill.gapfill` (the function behind
``landforge prep gapfill``) with the same neighbourhoods; the RMSE is over the masked
pixels of all bands, in the image's units. Run from the project root::

    .venv/bin/python benchmarks/gapfill_compare.py --out benchmarks/results/gapfill.json

Needs ../shared/data (skips a data set that is absent).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from scipy.ndimage import gaussian_filter

from landforge.prep.gapfill import gapfill

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("kriging", "mean", "idw", "linear")


def cloud_mask(shape: tuple[int, int], seed: int, scale: float, cover: float) -> np.ndarray:
    """Smooth random blobs covering about ``cover`` of the image."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=shape), scale)
    return field > np.quantile(field, 1 - cover)


def cases() -> list[tuple[str, Path, list[int], float]]:
    """(name, image, bands, blob scale in pixels) of the data sets present."""
    out = []
    s2 = DATA / "slovenia_s2" / "derived_geotiff"
    for i in (2, 3, 4):
        path = s2 / f"REFERENCE_SCENE_{i}_S2L1C_13band.tif"
        if path.exists():
            out.append((f"slovenia_s2 scene {i} (B02,B03,B04,B08)", path, [2, 3, 4, 8], 4.0))
    lausanne = DATA / "lausanne_swissimage" / "big_img" / "1091-322_00.tif"
    if lausanne.exists():
        out.append(("lausanne_swissimage 0.5 m RGB", lausanne, [1, 2, 3], 8.0))
    return out


def run(seeds: list[int], cover: float, ring: int) -> list[dict[str, Any]]:
    """RMSE of every method on every case and seed."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, bands, scale in cases():
            with rasterio.open(path) as src:
                truth = src.read(bands).astype(np.float64)
                profile = src.profile
            for seed in seeds:
                gap = cloud_mask(truth.shape[1:], seed, scale, cover)
                mask = Path(tmp) / "mask.tif"
                prof = {k: profile[k] for k in ("driver", "crs", "transform", "width", "height")}
                prof.update(count=1, dtype="uint8")
                with rasterio.open(mask, "w", **prof) as dst:
                    dst.write(gap.astype(np.uint8), 1)
                for method in METHODS:
                    out = Path(tmp) / f"{method}.tif"
                    t0 = time.perf_counter()
                    s = gapfill(path, mask, out, method=method, bands=bands, ring=ring, seed=seed)
                    seconds = time.perf_counter() - t0
                    with rasterio.open(out) as f:
                        filled = f.read().astype(np.float64)
                    rmse = float(np.sqrt(np.mean((filled[:, gap] - truth[:, gap]) ** 2)))
                    rows.append(
                        {
                            "data": name,
                            "seed": seed,
                            "method": method,
                            "rmse": rmse,
                            "gap_pixels": int(gap.sum()),
                            "gaps": s["gaps"],
                            "models": s["models"],
                            "seconds": round(seconds, 1),
                        }
                    )
                    print(f"{name} seed {seed} {method}: RMSE {rmse:.4g} ({seconds:.0f} s)")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: mean RMSE per data set and method (over seeds), best in bold."""
    names = list(dict.fromkeys(str(r["data"]) for r in rows))
    lines = [
        "| data | gap pixels | " + " | ".join(METHODS) + " |",
        "|---|---|" + "---|" * len(METHODS),
    ]
    for name in names:
        sub = [r for r in rows if r["data"] == name]
        means = {
            m: float(np.mean([float(r["rmse"]) for r in sub if r["method"] == m])) for m in METHODS
        }
        best = min(means, key=means.__getitem__)
        px = int(np.mean([int(r["gap_pixels"]) for r in sub if r["method"] == "mean"]))
        cells = [f"**{means[m]:.4g}**" if m == best else f"{means[m]:.4g}" for m in METHODS]
        lines.append(f"| {name} | {px} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1", help="Mask seeds, e.g. 0,1,2.")
    parser.add_argument("--cover", type=float, default=0.1, help="Cloud cover of a mask.")
    parser.add_argument("--ring", type=int, default=12, help="Neighbourhood ring (px).")
    parser.add_argument("--out", default=None, help="Write the rows and table as JSON.")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = run(seeds, args.cover, args.ring)
    md = table(rows)
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({"rows": rows, "table": md, "args": vars(args)}, indent=1)
        )


if __name__ == "__main__":
    main()
