"""Second epoch of a synthetic city: realistic land-use change on ~5-10 % of parcels.

Three kinds of change, in the proportions seen in fast-growing Chinese cities:
construction on farmland or blank land (new residential, industrial, commercial or
school buildings), demolition (buildings removed, the parcel left as bare land) and
change of use (factories redeveloped as housing or offices, with new buildings).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from landforge.synth.buildings import place_buildings, pooled_looks
from landforge.synth.layout import CityFrame, component_rng
from landforge.synth.parcels import PRIMARY_OF, PRIMARY_VALUE

__all__ = ["Epoch2", "make_epoch2"]

_BUILD_ON = ("E2", "E9")
_NEW_USES = (("R2", 0.5), ("M1", 0.2), ("B1", 0.15), ("A3", 0.15))
_DEMOLISH = ("R3", "M1", "M2", "X0")
_REDEVELOP = ("M1", "M2", "W1")
_REDEVELOP_TO = ("R2", "B2")


@dataclass
class Epoch2:
    """Parcels and buildings at the second date, with what changed.

    Attributes:
        parcels, buildings: the city at the second date (same columns as epoch 1).
        changes: one row per changed parcel: parcel_id, kind (construction |
            demolition | change_of_use), use_before, use_after.
        bare_parcel_ids: parcels that are bare (demolished) ground at the second date.
    """

    parcels: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    changes: pd.DataFrame
    bare_parcel_ids: set[int]


def make_epoch2(
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    seed: int,
    rate: float = 0.07,
    frame: CityFrame | None = None,
    ambiguity: float = 0.0,
) -> Epoch2:
    """Apply construction, demolition and change of use to ``rate`` of the parcels.

    ``frame`` (the city frame) lets new buildings near the centre build densely, as in
    epoch 1 (see :func:`landforge.synth.buildings.place_buildings`); ``ambiguity`` gives
    that share of rebuilt urban parcels a use-independent look (as in epoch 1, by
    :func:`landforge.synth.buildings.pooled_looks`).
    """
    rng = component_rng(seed, "change")
    n_total = max(1, int(round(rate * len(parcels))))
    codes = parcels["use_secondary"].to_numpy()
    ids = parcels["parcel_id"].to_numpy()
    quotas = {"construction": 0.45, "demolition": 0.25, "change_of_use": 0.30}
    pools = {
        "construction": np.flatnonzero(np.isin(codes, _BUILD_ON)),
        "demolition": np.flatnonzero(np.isin(codes, _DEMOLISH)),
        "change_of_use": np.flatnonzero(np.isin(codes, _REDEVELOP)),
    }
    taken: set[int] = set()
    rows = []
    left = n_total
    for kind, share in quotas.items():
        want = min(left, int(round(share * n_total)) if kind != "change_of_use" else left)
        pool = np.array([i for i in pools[kind] if i not in taken], dtype=int)
        if not len(pool) or want <= 0:
            continue
        pick = np.sort(rng.choice(pool, size=min(want, len(pool)), replace=False))
        for i in pick:
            if kind == "construction":
                u = rng.random()
                cum = np.cumsum([w for _, w in _NEW_USES])
                after = _NEW_USES[int(np.searchsorted(cum, u * cum[-1]))][0]
            elif kind == "demolition":
                after = "E9"
            else:
                after = _REDEVELOP_TO[int(rng.integers(len(_REDEVELOP_TO)))]
            rows.append((int(ids[i]), kind, str(codes[i]), after))
            taken.add(int(i))
        left = n_total - len(rows)

    changes = pd.DataFrame(rows, columns=["parcel_id", "kind", "use_before", "use_after"])
    p2 = parcels.copy()
    changed = p2["parcel_id"].isin(changes["parcel_id"])
    after = dict(zip(changes["parcel_id"], changes["use_after"], strict=True))
    p2.loc[changed, "use_secondary"] = p2.loc[changed, "parcel_id"].map(after)
    p2.loc[changed, "use_primary"] = p2.loc[changed, "use_secondary"].map(PRIMARY_OF)
    p2.loc[changed, "value"] = p2.loc[changed, "use_primary"].map(PRIMARY_VALUE).astype(np.uint8)
    p2.loc[changed, "mixed"] = False
    p2.loc[changed, "use_secondary_2"] = None
    p2["value"] = p2["value"].astype(np.uint8)

    kept = buildings[~buildings["parcel_id"].isin(changes["parcel_id"])]
    rebuilt_ids = changes.loc[changes["kind"] != "demolition", "parcel_id"]
    first_id = int(buildings["building_id"].max()) + 1 if len(buildings) else 1
    new = place_buildings(
        p2[p2["parcel_id"].isin(rebuilt_ids)],
        rng,
        first_id=first_id,
        frame=frame,
        looks=pooled_looks(p2, seed, ambiguity),
    )
    new = new.set_crs(buildings.crs) if buildings.crs is not None else new
    b2 = pd.concat([kept, new], ignore_index=True) if len(new) else kept.reset_index(drop=True)
    b2 = gpd.GeoDataFrame(b2, geometry="geometry", crs=buildings.crs)
    bare = set(changes.loc[changes["kind"] == "demolition", "parcel_id"].astype(int))
    return Epoch2(p2, b2, changes, bare)
