"""Broken taxonomy files fail on load with one line naming the file; user files work."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from landforge.errors import InputError
from landforge.taxonomy import (
    ClassSystem,
    clear_cache,
    load_classes,
    load_mapping,
    load_taxonomy,
)

CLASSES = """\
taxonomy: classes
name: city
description: a user's own three-level legend
levels: [primary, secondary, tertiary]
nodata_value: 0
classes:
  - {code: U, name: Urban, value: 1, color: "#ff0000"}
  - {code: N, name: Natural, value: 2, color: [0, 128, 0]}
  - {code: U1, parent: U, name: Housing}
  - {code: U2, parent: U, name: Shops}
  - {code: U11, parent: U1, name: Towers, value: 11}
  - {code: N1, parent: N, name: Forest}
"""

MAPPING = """\
taxonomy: mapping
name: city_rci
source: ./city.yaml
target: rci
map:
  R: [U1]
  C: [U2]
ignore: [U, N]  # U itself (a mixed urban parcel) says nothing; U1 and U2 override it
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def broken(tmp_path: Path, text: str, name: str = "broken.yaml") -> InputError:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as info:
        load_taxonomy(path)
    assert info.value.source is not None and str(path) in info.value.source
    return info.value


def test_user_yaml_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, "city.yaml", CLASSES)
    for ref in (path, str(path)):
        cs = load_classes(ref)
        assert isinstance(cs, ClassSystem) and cs.name == "city"
    assert cs.levels == ["primary", "secondary", "tertiary"]
    assert cs.by_code("U11").level == 2
    assert cs.ancestor("U11", 0).code == "U"
    assert cs.ancestor("U11", "secondary").code == "U1"
    assert cs.colormap() == {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 128, 0), 11: (255, 0, 0)}


def test_user_mapping_with_a_relative_source(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    m = load_mapping(write(tmp_path, "city_rci.yaml", MAPPING))
    assert m.target_system() is load_classes("rci")
    assert (m.map("U11"), m.map("U2"), m.map("N1"), m.map("U")) == ("R", "C", None, None)
    assert m.map("Housing") == "R"  # by name
    codes, unknown = m.map_many(["U1", "U11", "N1", "Q"])
    assert codes.tolist() == ["R", "R", None, None] and unknown == {"Q": 1}


def test_edited_user_file_is_reloaded(tmp_path: Path) -> None:
    path = write(tmp_path, "city.yaml", CLASSES)
    assert load_classes(path) is load_classes(path)
    path.write_text(CLASSES.replace("name: Forest", "name: Woodland"), encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert load_classes(path).by_code("N1").name == "Woodland"
    clear_cache()
    assert load_classes(path).by_code("N1").name == "Woodland"


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(InputError) as info:
        load_classes("nope")
    assert info.value.source == "taxonomy"
    assert info.value.problem.startswith("unknown taxonomy 'nope'; available: ")
    assert "mslu" in info.value.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_classes(tmp_path / "absent.yaml")


def test_wrong_kind() -> None:
    with pytest.raises(InputError, match="is a mapping, not a class system"):
        load_classes("mslu_rci")
    with pytest.raises(InputError, match="is a class system, not a mapping"):
        load_mapping("mslu")


def test_duplicate_code(tmp_path: Path) -> None:
    err = broken(tmp_path, CLASSES.replace("code: U2,", "code: U1,"))
    assert "duplicate code 'U1'" in err.problem


def test_duplicate_label_value(tmp_path: Path) -> None:
    err = broken(tmp_path, CLASSES.replace("value: 11", "value: 2"))
    assert "duplicate label value 2" in err.problem


def test_value_equal_to_nodata(tmp_path: Path) -> None:
    err = broken(tmp_path, CLASSES.replace("value: 11", "value: 0"))
    assert "nodata" in err.problem


def test_missing_parent(tmp_path: Path) -> None:
    err = broken(tmp_path, CLASSES.replace("parent: U1,", "parent: U9,"))
    assert "parent 'U9', which does not exist" in err.problem


def test_parent_cycle(tmp_path: Path) -> None:
    text = CLASSES.replace("{code: U, name: Urban,", "{code: U, parent: U11, name: Urban,")
    assert "cycle" in broken(tmp_path, text).problem


def test_too_deep(tmp_path: Path) -> None:
    err = broken(
        tmp_path, CLASSES.replace("[primary, secondary, tertiary]", "[primary, secondary]")
    )
    assert "depth 3" in err.problem


def test_field_errors_name_the_class(tmp_path: Path) -> None:
    err = broken(tmp_path, CLASSES.replace("value: 11", "value: eleven"))
    assert "class 'U11'" in err.problem and "value" in err.problem
    err = broken(tmp_path, CLASSES.replace("{code: N1,", "{code: N1, colour: red,"))
    assert "colour" in err.problem  # typo in a field name is not silently ignored
    err = broken(tmp_path, CLASSES.replace("code: N1", "code: no"))
    assert "quote it" in err.problem  # YAML read `no` as False


def test_bad_colour(tmp_path: Path) -> None:
    assert "colour" in broken(tmp_path, CLASSES.replace('"#ff0000"', '"red"')).problem


def test_invalid_yaml_and_wrong_kind_field(tmp_path: Path) -> None:
    assert "invalid YAML" in broken(tmp_path, "taxonomy: classes\nclasses: [\n").problem
    assert "'taxonomy:'" in broken(tmp_path, "taxonomy: legend\n").problem
    assert "YAML mapping" in broken(tmp_path, "- just\n- a list\n").problem


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING + "map:\n  I: [U2]\n")
    assert "duplicate key 'map'" in err.problem


def test_unmapped_category(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING.replace("ignore: [U, N]", "ignore: [U]"))
    assert "category 'N' of 'city' is neither mapped nor ignored" in err.problem


def test_mapping_to_a_missing_target_code(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING.replace("C: [U2]", "Q: [U2]"))
    assert "target code 'Q' does not exist in class system 'rci'" in err.problem


def test_mapping_from_a_missing_source_category(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING.replace("C: [U2]", "C: [U2, U7]"))
    assert "source category 'U7' does not exist in 'city'" in err.problem


def test_category_mapped_twice_or_mapped_and_ignored(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING.replace("C: [U2]", "C: [U2, U1]"))
    assert "'U1' is mapped to both 'R' and 'C'" in err.problem
    err = broken(tmp_path, MAPPING.replace("ignore: [U, N]", "ignore: [U, N, U2]"))
    assert "both mapped to 'C' and ignored" in err.problem


def test_missing_target_system(tmp_path: Path) -> None:
    write(tmp_path, "city.yaml", CLASSES)
    err = broken(tmp_path, MAPPING.replace("target: rci", "target: nope"))
    assert "target 'nope'" in err.problem and "unknown taxonomy" in err.problem


def test_osm_mapping_checks(tmp_path: Path) -> None:
    osm = """\
        taxonomy: mapping
        source: osm
        target: rci
        key_priority: [amenity, building]
        map:
          C: [amenity=*]
          R: [building=house]
        ignore: [building=yes]
    """
    m = load_mapping(write(tmp_path, "ok.yaml", osm))
    assert m.name == "ok"  # name defaults to the file name
    assert m.map_tags({"building": "yes", "amenity": "cafe"}) == "C"
    # a specific tag beats a wildcard even on a lower-priority key
    assert m.map_tags({"building": "house", "amenity": "cafe"}) == "R"
    assert (
        "missing from key_priority"
        in broken(tmp_path, osm.replace("[amenity, building]", "[amenity]")).problem
    )
    assert "not 'key=value'" in broken(tmp_path, osm.replace("building=house", "building")).problem
