"""Every shipped taxonomy loads, validates and says exactly what CONTRACTS.md says."""

from __future__ import annotations

import pytest

from landforge.taxonomy import (
    DATA_DIR,
    CategoryMapping,
    ClassSystem,
    available,
    load_classes,
    load_mapping,
    load_taxonomy,
)

SHIPPED = sorted(p.stem for p in DATA_DIR.glob("*.yaml"))

GAODE_23 = [
    "auto_service", "auto_dealers", "auto_repair", "motorcycle_service", "food_beverages",
    "shopping", "daily_life_service", "sports_recreation", "medical_service", "accommodation",
    "tourist_attraction", "commercial_house", "government_organization",
    "science_culture_education", "transportation_service", "finance_insurance", "enterprises",
    "road_furniture", "place_name_address", "public_facility", "incidents_events",
    "indoor_facilities", "pass_facilities",
]  # fmt: skip

GBT_RESIDENTIAL = ["residence_lodging", "resident_services"]
GBT_COMMERCIAL = [
    "catering", "wholesale_retail", "vehicle_sales_service", "finance_insurance",
    "education_culture", "healthcare_social", "sports_leisure", "government_public",
    "commercial_facilities", "research_institutes", "primary_sector_services",
    "place_names_addresses",
]  # fmt: skip
GBT_INDUSTRIAL = ["enterprises_companies", "transportation_warehousing"]
GBT_16 = GBT_RESIDENTIAL + GBT_COMMERCIAL + GBT_INDUSTRIAL


def test_the_required_taxonomies_ship() -> None:
    required = {"mslu", "rci", "fusu17", "ubgg", "gbt35648", "gaode",
                "gbt35648_rci", "gaode_mslu", "osm_mslu", "osm_rci", "mslu_rci"}  # fmt: skip
    assert required <= set(SHIPPED)
    assert set(available()) == set(SHIPPED)
    assert all(available().values()), "every taxonomy has a description"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_file_loads_and_validates(name: str) -> None:
    tax = load_taxonomy(name)
    assert tax.name == name
    assert isinstance(tax, ClassSystem | CategoryMapping)
    if isinstance(tax, CategoryMapping):
        assert tax.classes(), "a mapping produces at least one class"
        assert tax.target_system() is load_classes(tax.target)


def test_loaded_once() -> None:
    assert load_classes("mslu") is load_classes("mslu")
    assert load_mapping("gaode_mslu").target_system() is load_classes("mslu")


def test_mslu_primary_and_secondary_codes_are_the_contract() -> None:
    mslu = load_classes("mslu")
    assert mslu.levels == ["primary", "secondary"]
    assert [(c.code, c.name, c.value) for c in mslu.primary()] == [
        ("R", "Residential", 1), ("B", "Commercial", 2), ("A", "Public service", 3),
        ("M", "Industrial", 4), ("E", "Agricultural & natural", 5),
        ("S", "Transportation", 6), ("X", "Unknown", 7),
    ]  # fmt: skip
    secondary = {
        "R": ["R1", "R2", "R3"],
        "B": ["B1", "B2", "B3", "B4", "B9"],
        "A": ["A1", "A2", "A3", "A4", "A5", "A6", "A9", "G1", "G3"],
        "M": ["M1", "M2", "M3", "W1"],
        "E": ["E1", "E2", "E9"],
        "S": ["S1", "S3", "S4"],
        "X": ["X0"],
    }
    assert {p: [c.code for c in mslu.children(p)] for p in secondary} == secondary
    assert len(mslu.at_level("secondary")) == 28
    assert all(c.value is None for c in mslu.at_level(1))
    assert mslu.nodata_value == 0


def test_rci_values() -> None:
    rci = load_classes("rci")
    assert rci.label_values() == {1: "residential", 2: "commercial", 3: "industrial"}
    assert rci.label_codes() == {1: "R", 2: "C", 3: "I"}
    assert (rci.nodata_value, rci.nodata_name) == (0, "background")


def test_fusu17_values_exactly() -> None:
    fusu = load_classes("fusu17")
    assert fusu.label_values() == {
        1: "Traffic land", 2: "Inland water", 3: "Residential", 4: "Cropland",
        5: "Agriculture construction", 6: "Blank", 7: "Industrial", 8: "Orchard",
        9: "Park", 10: "Public management", 11: "Commercial", 12: "Public construction",
        13: "Special", 14: "Forest", 15: "Storage", 16: "Wetland", 17: "Grass",
    }  # fmt: skip
    assert (fusu.nodata_value, fusu.nodata_name) == (0, "background")


def test_ubgg_blue_green_gray() -> None:
    ubgg = load_classes("ubgg")
    assert [c.code for c in ubgg.primary()] == ["UBS", "UGS", "UIS"]
    assert ubgg.label_codes() == {1: "water", 2: "tree", 3: "grass", 4: "farmland", 5: "impervious"}
    assert [c.code for c in ubgg.children("UGS")] == ["tree", "grass", "farmland"]
    assert ubgg.ancestor("water", 0).code == "UBS"
    assert ubgg.ancestor("impervious", "primary").code == "UIS"


def test_poi_vocabularies_keep_chinese_and_english_names() -> None:
    gaode = load_classes("gaode")
    assert [c.code for c in gaode] == GAODE_23
    food = gaode.by_code("food_beverages")
    assert (food.name, food.name_zh, food.attrs["typecode"]) == (
        "Food & Beverages",
        "餐饮服务",
        "050000",
    )
    gbt = load_classes("gbt35648")
    assert sorted(c.code for c in gbt) == sorted(GBT_16)
    assert all(c.name and c.name_zh for c in [*gaode, *gbt])


def test_gbt35648_rci_is_table_1_exactly() -> None:
    m = load_mapping("gbt35648_rci")
    assert (m.source, m.target) == ("gbt35648", "rci")
    expected = {c: "R" for c in GBT_RESIDENTIAL}
    expected |= {c: "C" for c in GBT_COMMERCIAL}
    expected |= {c: "I" for c in GBT_INDUSTRIAL}
    assert {c: m.map(c) for c in GBT_16} == expected
    assert m.pairs == expected and m.ignored == []
    assert m.map("catering") == "C"
    assert [c.name for c in m.classes()] == ["residential", "commercial", "industrial"]


@pytest.mark.parametrize("name", ["gbt35648_rci", "gbt35648_mslu"])
def test_all_16_gbt_categories_are_mapped_or_ignored(name: str) -> None:
    m = load_mapping(name)
    for cat in GBT_16:
        code = m.map(cat)  # KeyError if neither mapped nor ignored
        assert code is None or code in m.target_system()


def test_all_23_gaode_categories_are_mapped_or_ignored() -> None:
    m = load_mapping("gaode_mslu")
    mslu = load_classes("mslu")
    results = {cat: m.map(cat) for cat in GAODE_23}
    assert set(m.pairs) | set(m.ignored) == set(GAODE_23)
    assert {c for c, code in results.items() if code is None} >= {
        "road_furniture", "incidents_events", "indoor_facilities", "pass_facilities",
    }  # fmt: skip
    assert all(code is None or mslu.by_code(code).level == 0 for code in results.values())
    assert results["food_beverages"] == "B"
    assert results["medical_service"] == "A"
    assert results["transportation_service"] == "S"


def test_gaode_categories_map_by_chinese_name_and_type_code() -> None:
    m = load_mapping("gaode_mslu")
    assert m.map("餐饮服务") == m.map("050000") == m.map("food_beverages") == "B"
    with pytest.raises(KeyError):
        m.map("not a gaode category")


def test_mslu_rci_follows_primary_classes() -> None:
    m = load_mapping("mslu_rci")
    assert [m.map(c) for c in "RBAMESX"] == ["R", "C", "C", "I", None, None, None]
    assert m.map("R2") == "R"  # secondary classes follow their primary
    assert m.map("G1") == "C"
    assert m.map("W1") == "I"
    assert m.map("E1") is None
