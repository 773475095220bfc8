"""Navigating a class system: levels, children, ancestors, values and colours."""

from __future__ import annotations

import pytest

from landforge.taxonomy import load_classes


@pytest.fixture(scope="module")
def mslu():  # type: ignore[no-untyped-def]
    return load_classes("mslu")


def test_levels_by_index_or_name(mslu) -> None:  # type: ignore[no-untyped-def]
    assert mslu.at_level(0) == mslu.primary() == mslu.at_level("primary")
    assert len(mslu.at_level(1)) == 28
    with pytest.raises(KeyError):
        mslu.at_level(2)
    with pytest.raises(KeyError):
        mslu.at_level("tertiary")


def test_codes_parents_and_children(mslu) -> None:  # type: ignore[no-untyped-def]
    r2 = mslu.by_code("R2")
    assert (r2.level, r2.parent, r2.value) == (1, "R", None)
    assert [c.code for c in mslu.children("R")] == ["R1", "R2", "R3"]
    assert mslu.children("R2") == []
    assert [c.code for c in mslu.descendants("M")] == ["M1", "M2", "M3", "W1"]
    assert "R2" in mslu and "Q9" not in mslu
    assert len(mslu.leaves()) == 28
    with pytest.raises(KeyError, match="Q9"):
        mslu.by_code("Q9")


def test_ancestors(mslu) -> None:  # type: ignore[no-untyped-def]
    assert mslu.ancestor("R2", 0).code == "R"
    assert mslu.ancestor("G1", 0).name == "Public service"
    assert mslu.ancestor("W1", "primary").code == "M"
    assert mslu.ancestor("R", 0).code == "R"
    assert mslu.ancestor("R2", 1).code == "R2"
    assert [c.code for c in mslu.lineage("S4")] == ["S", "S4"]
    with pytest.raises(KeyError):
        mslu.ancestor("R", 1)  # a primary class has no secondary ancestor


def test_values_names_and_colours(mslu) -> None:  # type: ignore[no-untyped-def]
    assert mslu.by_value(1).code == "R"
    assert mslu.by_value(7).code == "X"
    with pytest.raises(KeyError):
        mslu.by_value(0)  # nodata is not a class
    assert mslu.label_values()[3] == "Public service"
    cmap = mslu.colormap()
    assert cmap[0] == (0, 0, 0)
    assert sorted(cmap) == list(range(8))
    assert all(len(rgb) == 3 and all(0 <= x <= 255 for x in rgb) for rgb in cmap.values())
    assert mslu.color_of("R2") == mslu.by_code("R").color  # inherited


def test_resolve_by_name_or_chinese_name(mslu) -> None:  # type: ignore[no-untyped-def]
    assert mslu.resolve("r2").code == "R2"
    assert mslu.resolve("Industrial").code == "M"
    assert mslu.resolve("居住用地").code == "R"


def test_classes_are_immutable(mslu) -> None:  # type: ignore[no-untyped-def]
    r = mslu.by_code("R")
    with pytest.raises(AttributeError):
        r.value = 9  # type: ignore[misc]
    mslu.classes.clear()  # a copy: the system is unchanged
    assert len(mslu) == 35
