"""A chip store as a STAC catalog (label + ML-AOI extensions), and back.

Written (self-contained, relative links, with pystac)::

    OUT/catalog.json
    OUT/sources/collection.json, sources/image/image.json
        the source image the chips are cut from (its asset points at the original
        file, an absolute path outside the catalog; the reader never opens it)
    OUT/chips/collection.json
        ``ml-aoi:split`` summary; ``landforge:store``: the store's meta.json and
        stats.json; asset ``split_blocks`` (the store's split_blocks.gpkg)
    OUT/chips/<chip_id>/<chip_id>.json, image.tif, <label>.tif[, valid.tif]
        one label item per chip: COG assets (``image`` role data, one per label with
        role labels, ``valid`` where the chip has nodata), ``label:type`` raster,
        ``label:tasks`` [segmentation], ``label:classes`` and ``label:overviews`` (class
        pixel counts) per label, ``ml-aoi:split`` (train / validate / test; landforge's
        ``val`` is ML-AOI's ``validate``) and ``landforge:split`` (the store's own name),
        a ``source`` link to the source image item
    OUT/predictions/prediction/prediction.json, map.tif (optional)
        a predicted map as a label item (``label:methods`` [automated]) with class counts

:func:`import_stac` reads such a catalog back into a chip store. It follows only
``child`` and ``item`` links and asset hrefs, each through
:func:`landforge.io.safe_paths.safe_member_path`: an absolute href or one with ``..``
is refused, so a catalog cannot make landforge read files outside its folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from landforge.datasets.chip_store import load_chip, read_index, read_meta, read_stats, store_path
from landforge.datasets.export_options import ExportOptions, ImportOptions
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_dir
from landforge.io.raster import RasterGrid, iter_blocks, open_raster, write_cog
from landforge.io.safe_paths import safe_member_path

__all__ = ["LABEL_EXTENSION", "ML_AOI_EXTENSION", "export_stac", "import_stac"]

LABEL_EXTENSION = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
ML_AOI_EXTENSION = "https://stac-extensions.github.io/ml-aoi/v0.2.0/schema.json"
_TO_ML_AOI = {"train": "train", "val": "validate", "test": "test"}
_FROM_ML_AOI = {v: k for k, v in _TO_ML_AOI.items()}
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_MAX_DEPTH = 8


# ---------------------------------------------------------------- export
def export_stac(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ExportOptions | Mapping[str, Any] | None = None,
    *,
    map_path: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path:
    """Write the chip store ``store`` (and a predicted map) as a STAC catalog at ``out``.

    Args:
        store: a chip store (``landforge chips``).
        out: the catalog directory (written atomically; see the module doc).
        opts: :class:`ExportOptions`; ``overrides`` replace its fields.
        **overrides: option fields replacing those of ``opts``.
        map_path: a predicted class map to add as a label item.

    Returns:
        ``out`` as a Path.

    Raises:
        OptionError: a bad datetime, a taxonomy for a label the store lacks.
        InputError: not a chip store; an unreadable map.
    """
    import geopandas as gpd
    import pystac
    from shapely.geometry import box

    o = ExportOptions.build(opts, **overrides)
    store = store_path(store)
    meta, stats, index = read_meta(store), read_stats(store), read_index(store)
    labels: list[str] = list(meta["label_names"])
    unknown = sorted(set(o.taxonomies) - set(labels))
    if unknown:
        raise OptionError("taxonomies", f"the store has no label {unknown[0]!r}; labels: {labels}")
    names = {label: _class_names(o.taxonomies.get(label)) for label in labels}
    when = _when(o.datetime)
    crs = CRS.from_wkt(meta["crs"]) if meta.get("crs") else None
    transform = Affine(*meta["transform"])
    wgs = index.to_crs(4326) if crs is not None else index
    full = RasterGrid(crs, transform, int(meta["width"]), int(meta["height"]))  # type: ignore[arg-type]
    full_wgs = gpd.GeoSeries([box(*full.bounds)], crs=crs).to_crs(4326) if crs else None

    with atomic_dir(out) as tmp:
        catalog = pystac.Catalog(id="landforge-dataset", description=o.description, title=o.title)
        source_item = _source_collection(catalog, meta, full_wgs, when)
        chips = pystac.Collection(
            id="chips",
            description=f"Chips of {Path(meta['image']).name} with labels {', '.join(labels)}",
            extent=_extent(wgs.total_bounds, when),
            license=o.license,
            extra_fields={"landforge:store": {"meta": meta, "stats": stats}},
        )
        chips.stac_extensions = [LABEL_EXTENSION, ML_AOI_EXTENSION]
        splits = sorted({_TO_ML_AOI[s] for s in index["split"] if s in _TO_ML_AOI})
        if splits:
            chips.summaries.add("ml-aoi:split", splits)
        catalog.add_child(chips)
        items = []
        for i, rec in enumerate(index.itertuples(index=False)):
            item = _chip_item(rec._asdict(), wgs.geometry.iloc[i], labels, names, index, when)
            item.add_link(
                pystac.Link("source", source_item, pystac.MediaType.JSON,
                            extra_fields={"label:assets": labels})
            )  # fmt: skip
            chips.add_item(item)
            items.append((item, rec._asdict()))
        prediction = None
        if map_path is not None:
            prediction = _prediction_item(catalog, Path(map_path), source_item, when, o)
        # a trailing separator: pystac takes a name with a suffix (".tmp") for a file
        catalog.normalize_hrefs(f"{Path(tmp).resolve()}{os.sep}")
        for item, rec in items:
            if _write_chip_assets(Path(item.get_self_href() or "").parent, store, rec, full, meta):
                item.add_asset(
                    "valid",
                    pystac.Asset("./valid.tif", "valid pixels (1) and nodata (0)",
                                 media_type=_COG, roles=["metadata"]),
                )  # fmt: skip
        blocks = store / "split_blocks.gpkg"
        if blocks.is_file():
            target = Path(chips.get_self_href() or "").parent / blocks.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blocks, target)
            chips.add_asset(
                "split_blocks",
                pystac.Asset(f"./{blocks.name}", "split blocks",
                             media_type=pystac.MediaType.GEOPACKAGE, roles=["metadata"]),
            )  # fmt: skip
        if prediction is not None:
            folder = Path(prediction.get_self_href() or "").parent
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(map_path, folder / "map.tif")  # type: ignore[arg-type]
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return Path(out)


def _when(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OptionError("datetime", f"{text!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _extent(bounds: Any, when: dt.datetime) -> Any:
    import pystac

    return pystac.Extent(
        pystac.SpatialExtent([[float(b) for b in bounds]]), pystac.TemporalExtent([[when, when]])
    )


def _class_names(taxonomy: str | None) -> dict[int, str]:
    if taxonomy is None:
        return {}
    from landforge.taxonomy import load_classes

    return {int(c.value): c.code for c in load_classes(taxonomy).valued() if c.value is not None}


def _source_collection(catalog: Any, meta: Mapping[str, Any], footprint: Any, when: Any) -> Any:
    import pystac
    from shapely.geometry import mapping

    bounds = footprint.total_bounds if footprint is not None else [0, 0, 0, 0]
    sources = pystac.Collection(
        id="sources",
        description="Imagery the chips are cut from (assets point at the original files)",
        extent=_extent(bounds, when),
    )
    item = pystac.Item(
        id="image",
        geometry=mapping(footprint.iloc[0]) if footprint is not None else None,
        bbox=[float(b) for b in bounds] if footprint is not None else None,
        datetime=when,
        properties={"landforge:bands": meta.get("bands", [])},
    )
    item.add_asset(
        "image", pystac.Asset(str(meta["image"]), Path(meta["image"]).name, roles=["data"])
    )
    for i, extra in enumerate(meta.get("extras", [])):
        item.add_asset(f"extra_{i + 1}", pystac.Asset(str(extra), Path(extra).name, roles=["data"]))
    sources.add_item(item)
    catalog.add_child(sources)
    return item


def _chip_item(
    rec: Mapping[str, Any],
    footprint: Any,
    labels: list[str],
    names: Mapping[str, Mapping[int, str]],
    index: Any,
    when: dt.datetime,
) -> Any:
    import pystac
    from shapely.geometry import mapping

    classes, overviews = [], []
    for label in labels:
        cols = sorted(
            (
                c
                for c in index.columns
                if c.rpartition("_")[0] == label and c.rpartition("_")[2].isdigit()
            ),
            key=lambda c: int(c.rpartition("_")[2]),
        )
        values = [int(c.rpartition("_")[2]) for c in cols]
        classes.append({"name": None, "classes": values})
        overviews.append(
            {
                "property_key": label,
                "counts": [
                    {"name": names[label].get(v, str(v)), "count": int(rec.get(c, 0) or 0)}
                    for v, c in zip(values, cols, strict=True)
                ],
            }
        )
    split = str(rec["split"])
    props: dict[str, Any] = {
        "label:properties": None,
        "label:description": f"pixel labels {', '.join(labels)} of chip {rec['chip_id']}",
        "label:type": "raster",
        "label:tasks": ["segmentation"],
        "label:classes": classes,
        "label:overviews": overviews,
        "landforge:labels": labels,
        "landforge:split": split,
        "landforge:window": [
            int(rec["row"]),
            int(rec["col"]),
            int(rec["height"]),
            int(rec["width"]),
        ],
        "landforge:block": [int(rec["block_row"]), int(rec["block_col"])],
    }
    if split in _TO_ML_AOI:
        props["ml-aoi:split"] = _TO_ML_AOI[split]
    item = pystac.Item(
        id=str(rec["chip_id"]),
        geometry=mapping(footprint),
        bbox=[float(b) for b in footprint.bounds],
        datetime=when,
        properties=props,
        stac_extensions=[LABEL_EXTENSION, ML_AOI_EXTENSION],
    )
    item.add_asset(
        "image",
        pystac.Asset("./image.tif", "image", media_type=_COG, roles=["data"],
                     extra_fields={"ml-aoi:role": "feature"}),
    )  # fmt: skip
    for label in labels:
        item.add_asset(
            label,
            pystac.Asset(f"./{label}.tif", label, media_type=_COG, roles=["labels"],
                         extra_fields={"ml-aoi:role": "label"}),
        )  # fmt: skip
    return item


def _write_chip_assets(
    folder: Path, store: Path, rec: Mapping[str, Any], full: RasterGrid, meta: Mapping[str, Any]
) -> bool:
    """The chip's arrays as COGs on the chip's own grid; True if it has a valid mask."""
    arrays = load_chip(store, str(rec["chip_id"]))
    folder.mkdir(parents=True, exist_ok=True)
    h, w = arrays["image"].shape[1:]
    grid = RasterGrid(
        full.crs, full.transform @ Affine.translation(int(rec["col"]), int(rec["row"])), w, h
    )
    write_cog(folder / "image.tif", arrays["image"], grid, band_descriptions=meta.get("bands"))
    for label in meta["label_names"]:
        write_cog(folder / f"{label}.tif", arrays[label], grid)
    if arrays["valid"].all():
        return False
    write_cog(folder / "valid.tif", arrays["valid"].astype(np.uint8), grid)
    return True


def _prediction_item(catalog: Any, path: Path, source: Any, when: Any, o: ExportOptions) -> Any:
    """A label item for a predicted map (class counts read block by block)."""
    import geopandas as gpd
    import pystac
    from shapely.geometry import box, mapping

    counts: dict[int, int] = {}
    with open_raster(path) as src:
        if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InputError(path, "a predicted map must be one band of integer classes")
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        for window in iter_blocks(grid):
            data = src.read(1, window=window, masked=True).compressed()
            values, n = np.unique(data, return_counts=True)
            for v, c in zip(values.tolist(), n.tolist(), strict=True):
                counts[int(v)] = counts.get(int(v), 0) + int(c)
    foot = gpd.GeoSeries([box(*grid.bounds)], crs=grid.crs).to_crs(4326).iloc[0]
    classes = sorted(counts)
    item = pystac.Item(
        id="prediction",
        geometry=mapping(foot),
        bbox=[float(b) for b in foot.bounds],
        datetime=when,
        properties={
            "label:properties": None,
            "label:description": f"predicted classes of {path.name}",
            "label:type": "raster",
            "label:tasks": ["segmentation"],
            "label:methods": ["automated"],
            "label:classes": [{"name": None, "classes": classes}],
            "label:overviews": [
                {
                    "property_key": "class",
                    "counts": [{"name": str(v), "count": counts[v]} for v in classes],
                }
            ],
        },
        stac_extensions=[LABEL_EXTENSION],
    )
    item.add_asset("map", pystac.Asset("./map.tif", path.name, media_type=_COG, roles=["labels"]))
    item.add_link(
        pystac.Link("source", source, pystac.MediaType.JSON, extra_fields={"label:assets": ["map"]})
    )
    predictions = pystac.Collection(
        id="predictions", description="Predicted maps", extent=_extent(foot.bounds, when),
        license=o.license,
    )  # fmt: skip
    predictions.stac_extensions = [LABEL_EXTENSION]
    predictions.add_item(item)
    catalog.add_child(predictions)
    return item


# ---------------------------------------------------------------- import
def import_stac(
    catalog: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ImportOptions | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Read a STAC catalog written by :func:`export_stac` back into a chip store.

    Raises:
        InputError: a missing or malformed catalog, no chip collection, an href that is
            absolute or contains ``..``, an unreadable chip asset.
    """
    import geopandas as gpd
    from shapely.geometry import box

    ImportOptions.build(opts, **overrides)
    root = Path(catalog)
    if root.is_dir():
        root = root / "catalog.json"
    collections = [c for c in _walk(root, _read_json(root), 0) if "landforge:store" in c[1]]
    if not collections:
        raise InputError(root, "no chip collection (landforge:store) in this catalog")
    coll_path, coll = collections[0]
    store_meta = dict(coll["landforge:store"].get("meta", {}))
    stats = coll["landforge:store"].get("stats")
    labels = list(store_meta.get("label_names", []))
    crs = CRS.from_wkt(store_meta["crs"]) if store_meta.get("crs") else None
    with atomic_dir(out) as tmp:
        (tmp / "chips").mkdir()
        records = []
        for link in coll.get("links", []):
            if link.get("rel") != "item":
                continue
            item_path = _follow(coll_path, link.get("href", ""), root)
            records.append(_import_item(item_path, _read_json(item_path), labels, root, tmp))
        if not records:
            raise InputError(coll_path, "the chip collection has no items")
        index = gpd.GeoDataFrame(
            records, geometry=[box(*r.pop("bounds")) for r in records], crs=crs
        )
        count_cols = sorted(
            (
                c
                for c in index.columns
                if c.rpartition("_")[0] in labels and c.rpartition("_")[2].isdigit()
            ),
            key=lambda c: (c.rpartition("_")[0], int(c.rpartition("_")[2])),
        )
        index[count_cols] = index[count_cols].fillna(0).astype("int64")
        fixed = [c for c in index.columns if c not in count_cols and c != "geometry"]
        index = index[[*fixed, *count_cols, "geometry"]]
        index.to_parquet(tmp / "index.parquet")
        blocks = coll.get("assets", {}).get("split_blocks")
        if blocks is not None:
            shutil.copyfile(
                _follow(coll_path, blocks.get("href", ""), root), tmp / "split_blocks.gpkg"
            )
        store_meta.update(
            n_chips=len(index),
            splits={k: int(v) for k, v in index["split"].value_counts().items()},
            imported_from=str(root.resolve()),
        )
        (tmp / "meta.json").write_text(json.dumps(store_meta, indent=2))
        (tmp / "stats.json").write_text(json.dumps(stats or {}, indent=2))
    return Path(out)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, "STAC file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable STAC JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a STAC object (expected a JSON object)")
    return data


def _follow(from_file: Path, href: str, root: Path) -> Path:
    """The file an href names, relative to ``from_file``; refuses hrefs leaving the catalog."""
    if not isinstance(href, str) or "://" in href:
        raise InputError(from_file, f"href {href!r}: only relative file paths are read")
    target = safe_member_path(from_file.parent, href, source=from_file)
    inside = root.parent.resolve()
    if inside not in target.resolve().parents:
        raise InputError(from_file, f"href {href!r}: path leaves the catalog folder")
    return target


def _walk(path: Path, data: dict[str, Any], depth: int) -> list[tuple[Path, dict[str, Any]]]:
    """Collections reachable through ``child`` links (the catalog itself first)."""
    if depth > _MAX_DEPTH:
        raise InputError(path, "catalog nests too deep (a child link loop?)")
    found = [(path, data)] if data.get("type") == "Collection" else []
    for link in data.get("links", []):
        if link.get("rel") == "child":
            child = _follow(path, link.get("href", ""), path)
            found += _walk(child, _read_json(child), depth + 1)
    return found


def _import_item(
    path: Path, item: dict[str, Any], labels: list[str], root: Path, tmp: Path
) -> dict[str, Any]:
    """Read one chip item's COG assets into ``tmp/chips/<id>.npz``; its index record."""
    props = item.get("properties", {})
    assets = item.get("assets", {})
    chip_id = str(item.get("id", ""))
    safe_member_path(tmp / "chips", f"{chip_id}.npz", source=path)
    missing = [k for k in ("image", *labels) if k not in assets]
    if missing:
        raise InputError(path, f"item has no asset {missing[0]!r}")
    arrays: dict[str, Any] = {}
    bounds = None
    for key in ("image", *labels, "valid"):
        if key not in assets:
            continue
        asset_path = _follow(path, assets[key].get("href", ""), root)
        with open_raster(asset_path) as src:
            data = src.read()
            bounds = bounds or tuple(src.bounds)
        arrays[key] = data if key == "image" else data[0]
    valid = arrays.get("valid", np.ones(arrays["image"].shape[1:], np.uint8)).astype(bool)
    np.savez_compressed(tmp / "chips" / f"{chip_id}.npz", **arrays)
    split = props.get("landforge:split") or _FROM_ML_AOI.get(props.get("ml-aoi:split", ""), "train")
    row, col, h, w = props.get("landforge:window", [0, 0, *arrays["image"].shape[1:]])
    block_row, block_col = props.get("landforge:block", [0, 0])
    rec: dict[str, Any] = {
        "chip_id": chip_id, "file": f"chips/{chip_id}.npz", "row": int(row), "col": int(col),
        "height": int(h), "width": int(w), "block_row": int(block_row),
        "block_col": int(block_col), "split": str(split), "valid_fraction": float(valid.mean()),
    }  # fmt: skip
    for label in labels:
        values, n = np.unique(arrays[label][valid], return_counts=True)
        rec.update({f"{label}_{int(v)}": int(c) for v, c in zip(values, n, strict=True)})
    rec["bounds"] = bounds
    return rec
