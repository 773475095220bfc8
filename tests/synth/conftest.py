"""A small synthetic city shared by the synth tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from landforge.synth import CityInfo, make_city

SMALL = {"size_m": 600.0, "gsd": 0.5, "months": 3}


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> CityInfo:
    """A 500 m city, seed 3, with every output."""
    return make_city(tmp_path_factory.mktemp("synth") / "city", seed=3, quiet=True, **SMALL)


@pytest.fixture(scope="session")
def small_city_dir(small_city: CityInfo) -> Path:
    return small_city.out_dir
