"""Class systems and category mappings as validated YAML data.

Classes are data, not code: every land-use legend (MSLU 7/28, residential-commercial-
industrial, FUSU 17, blue-green-gray) and every vocabulary mapping (GB/T 35648 POI
categories -> R/C/I, Gaode POI types -> MSLU, OSM tags -> MSLU or R/C/I) is a YAML file
under ``taxonomy/data/``, validated on load and cached. A user's own file with the same
schema works wherever a shipped name does. See docs/taxonomies.md.

Example:
    >>> from landforge.taxonomy import load_classes, load_mapping
    >>> mslu = load_classes("mslu")
    >>> [c.code for c in mslu.primary()]
    ['R', 'B', 'A', 'M', 'E', 'S', 'X']
    >>> mslu.ancestor("G1", 0).name
    'Public service'
    >>> load_mapping("gbt35648_rci").map("catering")
    'C'
"""

from landforge.taxonomy.classes import RGB, ClassDef, ClassSystem
from landforge.taxonomy.loader import (
    DATA_DIR,
    Taxonomy,
    available,
    clear_cache,
    load_classes,
    load_mapping,
    load_taxonomy,
)
from landforge.taxonomy.mapping import CategoryMapping

__all__ = [
    "DATA_DIR",
    "RGB",
    "CategoryMapping",
    "ClassDef",
    "ClassSystem",
    "Taxonomy",
    "available",
    "clear_cache",
    "load_classes",
    "load_mapping",
    "load_taxonomy",
]
