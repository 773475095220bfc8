"""Seeded synthetic cities: true vectors, imagery, labels, time series, second epoch.

``make_city(out_dir, seed=0, size_m=3000, gsd=0.5)`` writes a whole city (see
docs/synth.md); the component modules (roads, parcels, buildings, pois, imagery,
sentinel, population, change) can be used alone.
"""

from landforge.synth.city import CityInfo, city_statistics, make_city

__all__ = ["CityInfo", "city_statistics", "make_city"]
