"""Parcel labels: the majority land-use class by area, its purity and a mixed flag."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from parcel_helpers import CRS, X0, Y0

from landforge.errors import InputError
from landforge.parcels import label_parcels


def sq(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    geoms = [sq(0, 0, 100, 100), sq(200, 0, 300, 100), sq(400, 0, 500, 100), sq(600, 0, 700, 100)]
    return gpd.GeoDataFrame({"parcel_id": [1, 2, 3, 4]}, geometry=geoms, crs=CRS)


@pytest.fixture
def landuse() -> gpd.GeoDataFrame:
    rows = [
        ("residential", sq(-10, -10, 110, 110)),  # parcel 1: all residential
        ("residential", sq(200, 0, 250, 100)),  # parcel 2: 50 % residential ...
        ("residential", sq(220, 0, 250, 100)),  # (overlaps the one above: not counted twice)
        ("commercial", sq(250, 0, 300, 100)),  # ... 50 % commercial -> mixed
        ("industrial", sq(400, 0, 420, 100)),  # parcel 3: 20 % covered -> unlabelled
        ("commercial", sq(600, 0, 700, 70)),  # parcel 4: 70 % commercial,
        ("industrial", sq(600, 70, 700, 100)),  # 30 % industrial -> commercial, pure enough
    ]
    return gpd.GeoDataFrame(
        {"landuse": [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs=CRS
    )


def test_majority_class_by_area_with_purity_and_mixed_flag(parcels, landuse) -> None:
    out = label_parcels(parcels, landuse, "landuse")
    assert out["label"].iloc[0] == "residential" and out["label"].iloc[3] == "commercial"
    assert out["label"].iloc[1] in {"residential", "commercial"}  # a 50/50 tie
    np.testing.assert_allclose(out["coverage"], [1.0, 1.0, 0.2, 1.0])
    np.testing.assert_allclose(out["purity"].to_numpy()[[0, 1, 3]], [1.0, 0.5, 0.7])
    assert np.isnan(out["purity"].iloc[2])
    assert list(out["mixed"]) == [False, True, False, False]
    assert out["label"].iloc[2] is None
    assert out.crs == parcels.crs and list(out["parcel_id"]) == [1, 2, 3, 4]


def test_thresholds_are_parameters(parcels, landuse) -> None:
    out = label_parcels(parcels, landuse, "landuse", min_coverage=0.1, mixed_threshold=0.8)
    assert out["label"].iloc[2] == "industrial"
    assert list(out["mixed"]) == [False, True, False, True]


def test_labels_in_another_crs_are_reprojected(parcels, landuse) -> None:
    out = label_parcels(parcels.to_crs(4326), landuse.to_crs(3857), "landuse")
    assert out.crs.to_epsg() == 4326
    np.testing.assert_allclose(out["coverage"], [1.0, 1.0, 0.2, 1.0], atol=1e-3)


class FakeMapping:
    """The two methods of a taxonomy mapping label_parcels uses."""

    is_osm = False

    def map_many(self, values):
        table = {"residential": "R", "commercial": "B", "industrial": "M"}
        s = pd.Series(list(values), dtype=object)
        unknown = {v: int((s == v).sum()) for v in set(s) if v not in table}
        return pd.Series([table.get(v) for v in s], dtype=object), unknown


def test_mapping_is_applied_to_the_label_column(parcels, landuse) -> None:
    out = label_parcels(parcels, landuse, "landuse", mapping=FakeMapping())
    assert out["label"].iloc[0] == "R" and out["label"].iloc[3] == "B"


def test_osm_landuse_values_go_through_an_osm_mapping(parcels, landuse) -> None:
    taxonomy = pytest.importorskip("landforge.taxonomy")
    try:
        mapping = taxonomy.load_mapping("osm_mslu")
    except Exception as exc:  # the mapping file may not be shipped yet
        pytest.skip(f"osm_mslu not available: {exc}")
    out = label_parcels(parcels, landuse, "landuse", mapping=mapping)
    assert out["label"].iloc[0] == mapping.map("landuse=residential")


def test_missing_label_column_names_the_columns(parcels, landuse) -> None:
    with pytest.raises(InputError, match=r"no column 'CLASS' \(it has: landuse\)"):
        label_parcels(parcels, landuse, "CLASS")
