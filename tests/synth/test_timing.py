"""The full-size city generates in the promised time (slow: `make test-all`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from landforge.synth import make_city


@pytest.mark.slow
def test_3km_city_at_half_a_metre_in_under_two_minutes(tmp_path: Path) -> None:
    start = time.perf_counter()
    info = make_city(tmp_path / "city", seed=0, size_m=3000, gsd=0.5, quiet=True)
    assert time.perf_counter() - start < 120
    core, edge = info.stats["core"], info.stats["periphery"]
    assert core["buildings_per_km2"] > edge["buildings_per_km2"]
    assert core["pois_per_km2"] > edge["pois_per_km2"]
