"""Synthetic city generation time: 3 km at 0.5 m (the foundation issue's < 2 min target).

Prints a JSON line with the wall time of `make_city` for 1 km and 3 km cities (all
layers) and the per-km² cost ratio between them.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from landforge.synth import make_city


def _time(size_m: float, out: Path) -> float:
    t0 = time.perf_counter()
    make_city(out, seed=0, size_m=size_m, gsd=0.5, quiet=True)
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t1 = _time(1000, Path(tmp) / "c1")
        t3 = _time(3000, Path(tmp) / "c3")
    print(
        json.dumps(
            {
                "city_1km_s": round(t1, 1),
                "city_3km_s": round(t3, 1),
                "cost_per_km2_ratio_3km_vs_1km": round((t3 / 9) / t1, 2),
                "target_3km_s": 120,
            }
        )
    )


if __name__ == "__main__":
    main()
