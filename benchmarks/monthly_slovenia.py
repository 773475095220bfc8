"""Monthly NDVI composites of the real Slovenia Sentinel-2 series with its cloud masks.

``slovenia_s2/derived_geotiff`` holds the series as two 68-band stacks (NDVI and the
CLM cloud mask, dates as band descriptions). This script writes them out as the dated
scenes ``landforge prep monthly`` reads (one file per date, masks of the same name in a
second folder), runs the command, and prints the months, their scenes and the share of
clear observations. Run from the project root::

    .venv/bin/python benchmarks/monthly_slovenia.py --out /tmp/slovenia_monthly.tif
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from landforge.cli import main as cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slovenia_s2"


def split_series(scenes: Path, masks: Path) -> int:
    """Write one NDVI file and one mask file per date; return the number of dates."""
    src_dir = DATA / "derived_geotiff"
    with (
        rasterio.open(src_dir / "NDVI_68dates.tif") as ndvi,
        rasterio.open(src_dir / "CLM_cloudmask_68dates.tif") as clm,
    ):
        for i, date in enumerate(ndvi.descriptions, start=1):
            name = f"NDVI_{date.replace(':', '')}.tif"
            with rasterio.open(scenes / name, "w", **{**ndvi.profile, "count": 1}) as dst:
                dst.write(ndvi.read(i), 1)
            with rasterio.open(masks / name, "w", **{**clm.profile, "count": 1}) as dst:
                dst.write(clm.read(i), 1)
        return int(ndvi.count)


def main() -> None:
    """Split the series, run ``landforge prep monthly --stack`` and summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="slovenia_monthly.tif", help="Output stack (.tif).")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent")
    with tempfile.TemporaryDirectory() as tmp:
        scenes, masks = Path(tmp) / "ndvi", Path(tmp) / "clm"
        scenes.mkdir()
        masks.mkdir()
        n = split_series(scenes, masks)
        argv = ["prep", "monthly", str(scenes), "--masks", str(masks), "--stack"]
        argv += ["--out", args.out]
        print(f"{n} dated scenes; landforge {' '.join(argv)}")
        code = cli(argv)
        if code:
            raise SystemExit(code)
    with rasterio.open(Path(args.out).with_suffix(".count.tif")) as f:
        counts = f.read()
        months = list(f.descriptions)
    pixels = counts.shape[1] * counts.shape[2]
    clear = {m: round(float(counts[k].sum()) / pixels, 2) for k, m in enumerate(months)}
    empty = [m for m in months if clear[m] == 0]
    print(json.dumps({"months": len(months), "clear_obs_per_pixel": clear, "empty": empty}))
    print(
        f"months without any clear observation: {len(empty)}; mean clear obs per pixel "
        f"and month {np.mean(list(clear.values())):.2f}"
    )


if __name__ == "__main__":
    main()
