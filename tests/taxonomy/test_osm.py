"""OSM tags: key=value beats key=*, keys are tried in priority order, ignored tags pass."""

from __future__ import annotations

import pandas as pd
import pytest

from landforge.taxonomy import load_mapping


@pytest.fixture(scope="module")
def osm_mslu():  # type: ignore[no-untyped-def]
    return load_mapping("osm_mslu")


def test_single_tags(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    assert osm_mslu.map("landuse=residential") == "R"
    assert osm_mslu.map("amenity=school") == "A"
    assert osm_mslu.map("shop=bakery") == "B"  # via shop=*
    assert osm_mslu.map("highway=primary") == "S"  # via highway=*
    assert osm_mslu.map("highway=street_lamp") is None  # explicitly ignored
    assert osm_mslu.map("building=yes") is None
    with pytest.raises(KeyError):
        osm_mslu.map("colour=red")  # a key the mapping does not use
    with pytest.raises(KeyError):
        osm_mslu.map("amenity")  # not a tag


def test_specific_value_beats_wildcard_of_the_same_key() -> None:
    rci = load_mapping("osm_rci")
    assert rci.map("office=company") == "I"  # Table 1: companies are industrial
    assert rci.map("office=lawyer") == "C"  # office=*
    assert rci.map_tags({"office": "company"}) == "I"


def test_more_telling_key_wins(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    tags = {"building": "yes", "amenity": "school"}
    assert osm_mslu.map_tags(tags) == "A"
    assert osm_mslu.map_tags({"landuse": "residential", "amenity": "hospital"}) == "A"
    assert osm_mslu.map_tags({"building": "industrial", "landuse": "residential"}) == "M"


def test_a_specific_tag_beats_a_wildcard_on_a_higher_key(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    # shop outranks landuse, but shop=* is only a wildcard match
    assert osm_mslu.map_tags({"shop": "yes", "landuse": "industrial"}) == "M"
    assert osm_mslu.map_tags({"shop": "yes", "landuse": "anything_else"}) == "B"


def test_ignored_tags_let_other_keys_decide(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    assert osm_mslu.map_tags({"building": "yes"}) is None
    assert osm_mslu.map_tags({"building": "yes", "landuse": "retail"}) == "B"
    assert osm_mslu.map_tags({"amenity": "bench", "leisure": "park"}) == "A"
    assert osm_mslu.map_tags({"name": "Main Street"}) is None
    assert osm_mslu.map_tags({}) is None


def test_semicolon_values_and_missing_tags(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    assert osm_mslu.map_tags({"amenity": "restaurant;bar"}) == "B"
    assert osm_mslu.map("amenity=bench;school") == "A"
    assert osm_mslu.map_tags({"amenity": None, "landuse": "farmland"}) == "E"
    assert osm_mslu.map_tags({"amenity": float("nan"), "natural": "water"}) == "E"


def test_map_many_counts_unknown_categories(osm_mslu) -> None:  # type: ignore[no-untyped-def]
    values = pd.Series(
        ["amenity=school", "colour=red", None, {"shop": "bakery"}, "colour=red", "building=yes"],
        index=[10, 11, 12, 13, 14, 15],
    )
    codes, unknown = osm_mslu.map_many(values)
    assert codes.tolist() == ["A", None, None, "B", None, None]
    assert codes.index.tolist() == [10, 11, 12, 13, 14, 15]
    assert unknown == {"colour=red": 2}


def test_map_tags_needs_an_osm_mapping() -> None:
    with pytest.raises(ValueError):
        load_mapping("gbt35648_rci").map_tags({"amenity": "school"})
