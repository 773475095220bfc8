"""The MSLU-100K folder layout: export a labelled parcel set, read one back.

Layout (as MSLU-100K publishes it; ``<C>`` is a class folder, MSLU's five are Agr, Res,
Com, Pub, Ind)::

    Classification/<sample>.xml   category, file name, path, image size, geographic
                                  information, primary and secondary class (+ level)
    ImageSets/<C>/<sample>.png    the sample's patch image
    dataset.csv                   one row per sample: the same fields
    index.parquet                 GeoParquet: parcel outline, class, level (landforge)
    stats.json, stats.png         samples per class and level, per city/district, area
                                  distribution per class (MSLU Fig. 5 / Tables 3-4 style)

The reader takes images, XML and CSV only: MSLU's pickled samples are never read.
XML is parsed with ``defusedxml``; every path a file names must stay inside the
dataset folder (no absolute path, no ``..``, no symbolic link out).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pandas as pd

from landforge.errors import InputError, OptionError
from landforge.io.safe_paths import safe_member_path
from landforge.labelling.options import MsluOptions

__all__ = [
    "CSV_COLUMNS",
    "dataset_stats",
    "export_mslu",
    "export_mslu_dataset",
    "read_mslu",
    "sample_xml",
]

#: Columns of ``dataset.csv``.
CSV_COLUMNS = [
    "category", "filename", "path", "width", "height", "city", "district",
    "longitude", "latitude", "primary_class", "secondary_class", "level",
]  # fmt: skip
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sample_xml(row: dict[str, Any]) -> str:
    """The ``Classification/`` XML of one sample (fields of :data:`CSV_COLUMNS` + codes)."""

    def el(tag: str, value: Any, attrs: str = "") -> str:
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else value
        return f"<{tag}{attrs}>{escape(str(text))}</{tag}>"

    primary = f" code={quoteattr(str(row.get('primary_code', '')))}"
    secondary = f" code={quoteattr(str(row.get('secondary_code', '')))}"
    geo = "".join(
        el(tag, row.get(key, ""))
        for tag, key in (
            ("city", "city"),
            ("district", "district"),
            ("longitude", "longitude"),
            ("latitude", "latitude"),
            ("bbox", "bbox"),
            ("area_m2", "area_m2"),
        )
    )
    return (
        "<annotation>\n"
        f"  {el('category', row['category'])}\n"
        f"  {el('filename', row['filename'])}\n"
        f"  {el('path', row['path'])}\n"
        f"  <size>{el('width', row['width'])}{el('height', row['height'])}"
        f"{el('depth', 3)}</size>\n"
        f"  <geographic>{geo}</geographic>\n"
        f"  {el('primary_class', row['primary_class'], primary)}\n"
        f"  {el('secondary_class', row['secondary_class'], secondary)}\n"
        f"  {el('level', row['level'])}\n"
        "</annotation>\n"
    )


def _task_images(images: str | os.PathLike[str]) -> dict[str, Path]:
    """parcel_id -> patch PNG of a ``label export`` folder (paths checked to stay inside)."""
    from landforge.labelling.tasks import load_tasks

    root = Path(images)
    out = {}
    for t in load_tasks(root):
        rel = str(t["data"].get("image_path") or t["data"].get("image") or "")
        out[str(t["data"]["parcel_id"])] = safe_member_path(root, rel, root / "tasks.json")
    return out


def export_mslu(
    parcels: Any,
    out: str | os.PathLike[str],
    opts: MsluOptions | None = None,
    *,
    images: str | os.PathLike[str] | None = None,
    image: str | os.PathLike[str] | None = None,
    source: str = "parcels",
    **overrides: Any,
) -> dict[str, Any]:
    """Write labelled parcels in the MSLU-100K layout (folder written all at once).

    Args:
        parcels: GeoDataFrame with the class column ``label_col`` (taxonomy codes).
        out: the dataset folder.
        opts: :class:`MsluOptions`.
        images: a ``label export`` folder whose patches are copied (else rendered).
        image: an image raster the patches are cut from when rendering.
        source: name of the parcels file for messages.
        **overrides: option fields.

    Returns:
        The statistics (samples per class, level, city/district, area quantiles).
    """
    o = MsluOptions.build(opts, **overrides)
    from landforge.io.atomic import atomic_dir
    from landforge.io.vector import require_column, to_metric, write_vector
    from landforge.labelling.patches import parcel_window, render_patch
    from landforge.taxonomy import load_classes

    require_column(parcels, o.label_col, source, option="label_col")
    if o.secondary_col is not None:
        require_column(parcels, o.secondary_col, source, option="secondary_col")
    try:
        system = load_classes(o.taxonomy)
    except (KeyError, FileNotFoundError, InputError) as exc:
        raise OptionError("taxonomy", f"unknown taxonomy {o.taxonomy!r}: {exc}") from None
    gdf = parcels[parcels[o.label_col].notna()].reset_index(drop=True)
    codes = gdf[o.label_col].astype(str)
    folder = codes.map(lambda c: o.folders.get(c, c if o.other == "code" else None))
    gdf, codes, folder = gdf[folder.notna()], codes[folder.notna()], folder[folder.notna()]
    if len(gdf) == 0:
        raise InputError(source, f"no parcel has a class with a folder ({o.folders})")
    ids = (
        gdf[o.id_col].astype(str).tolist()
        if o.id_col in gdf.columns
        else [str(i) for i in gdf.index]
    )
    patches = _task_images(images) if images is not None else {}
    missing = [i for i in ids if images is not None and i not in patches]
    if missing:
        raise InputError(
            images, f"no patch image for parcel {missing[0]!r} ({len(missing)} missing)"
        )
    metric = to_metric(gdf)
    wgs = gdf.to_crs(4326)
    cent = wgs.geometry.representative_point()
    with contextlib.ExitStack() as stack:
        raster = None
        if image is not None and images is None:
            from landforge.io.raster import open_raster

            raster = stack.enter_context(open_raster(image))
        rows = []
        draw = metric.to_crs(raster.crs) if raster is not None else metric
        with atomic_dir(out) as tmp:
            (tmp / "Classification").mkdir()
            used: set[str] = set()
            for k, pid in enumerate(ids):
                code = codes.iloc[k]
                cdef = system.by_code(code) if code in system else None
                sec = None
                if o.secondary_col is not None and pd.notna(gdf[o.secondary_col].iloc[k]):
                    sec = str(gdf[o.secondary_col].iloc[k])
                stem = _SAFE.sub("_", pid) or "sample"
                while stem in used:
                    stem += "_"
                used.add(stem)
                rel = f"ImageSets/{folder.iloc[k]}/{stem}.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                if images is not None:
                    shutil.copyfile(patches[pid], tmp / rel)
                    from PIL import Image

                    with Image.open(tmp / rel) as im:
                        w, h = im.size
                else:
                    geom = draw.geometry.iloc[k]
                    w, h = render_patch(
                        geom, parcel_window(geom, o.margin, o.patch_px), tmp / rel, raster
                    )
                lvl = gdf[o.level_col].iloc[k] if o.level_col in gdf.columns else None
                row = {
                    "parcel_id": pid,
                    "category": folder.iloc[k],
                    "filename": f"{stem}.png",
                    "path": rel,
                    "width": w,
                    "height": h,
                    "city": str(gdf[o.city_col].iloc[k]) if o.city_col else o.city,
                    "district": str(gdf[o.district_col].iloc[k])
                    if o.district_col in gdf.columns
                    else "",
                    "longitude": round(float(cent.x.iloc[k]), 7),
                    "latitude": round(float(cent.y.iloc[k]), 7),
                    "bbox": ",".join(f"{v:.7f}" for v in wgs.geometry.iloc[k].bounds),
                    "area_m2": round(float(metric.geometry.iloc[k].area), 2),
                    "primary_code": code,
                    "primary_class": cdef.name if cdef is not None else code,
                    "secondary_code": sec or "",
                    "secondary_class": system.by_code(sec).name
                    if sec and sec in system
                    else (sec or ""),
                    "level": None if lvl is None or pd.isna(lvl) else int(lvl),
                }
                rows.append(row)
                (tmp / "Classification" / f"{stem}.xml").write_text(sample_xml(row))
            table = pd.DataFrame(rows)
            table[CSV_COLUMNS].to_csv(tmp / "dataset.csv", index=False)
            index = wgs[[]].copy()
            for c in (
                "parcel_id",
                "category",
                "path",
                "primary_code",
                "secondary_code",
                "level",
                "area_m2",
                "city",
                "district",
            ):
                index[c] = table[c].to_numpy()
            index = index.rename(columns={"primary_code": "label", "secondary_code": "secondary"})
            index["geometry"] = wgs.geometry.to_numpy()
            index = index.set_geometry("geometry", crs=4326)
            write_vector(index, tmp / "index.parquet")
            stats = dataset_stats(table)
            (tmp / "stats.json").write_text(json.dumps(stats, indent=1))
            _stats_plot(table, tmp / "stats.png")
    return stats


def export_mslu_dataset(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: Any = None,
    map_path: str | os.PathLike[str] | None = None,
) -> Path:
    """``dataset export --format mslu``: the exporter signature of ``datasets.export``.

    ``store`` is a labelled parcels file (e.g. ``label check --labelled``); MSLU's layout
    options are the defaults of :class:`MsluOptions` (``landforge label mslu`` reaches
    all of them). ``map_path``, an image raster, is what the patches are cut from.
    ``opts`` (the dataset export options) is not used.
    """
    from landforge.io.vector import read_vector

    export_mslu(read_vector(store), out, MsluOptions.build(), image=map_path, source=str(store))
    return Path(out)


def dataset_stats(table: pd.DataFrame) -> dict[str, Any]:
    """Samples per class and level, per city/district, area quantiles per class."""
    sizes: Any = table.groupby(["city", "district"]).size()
    lvl = _levels(table)
    return {
        "samples": len(table),
        "per_class": {str(k): int(v) for k, v in table["category"].value_counts().items()},
        "per_class_level": {
            str(c): {str(k): int(v) for k, v in grp.value_counts().items()}
            for c, grp in lvl.groupby(table["category"])
        },
        "per_city_district": {f"{c}/{d}" if d else str(c): int(n) for (c, d), n in sizes.items()},
        "area_m2_quantiles": {
            str(c): [round(float(q), 1) for q in np.quantile(g, [0, 0.25, 0.5, 0.75, 1])]
            for c, g in table.groupby("category")["area_m2"]
        },
    }


def _levels(table: pd.DataFrame) -> pd.Series:
    """The quality level of each sample as text ("none" where there is none)."""
    return table["level"].map(lambda v: "none" if v is None or pd.isna(v) else str(int(v)))


def _stats_plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    counts = pd.crosstab(table["category"], _levels(table))
    counts.plot.bar(stacked=True, ax=axes[0], rot=0)
    axes[0].set(title="samples per class and level", xlabel="", ylabel="samples")
    groups = [(c, g.to_numpy()) for c, g in table.groupby("category")["area_m2"]]
    axes[1].boxplot([g / 1e4 for _, g in groups], tick_labels=[c for c, _ in groups])
    axes[1].set(title="parcel area per class", ylabel="ha", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def read_mslu(root: str | os.PathLike[str], check_images: bool = True) -> pd.DataFrame:
    """Read an MSLU-layout dataset: one row per sample from its XML files (or the CSV).

    Args:
        root: the dataset folder (``Classification/``, ``ImageSets/``, ``dataset.csv``).
        check_images: require every named image to exist.

    Returns:
        :data:`CSV_COLUMNS` plus ``image`` (the image file's full path).

    Raises:
        InputError: an unreadable XML file, a path leaving the dataset, a missing image.
    """
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    base = Path(root)
    if not base.is_dir():
        raise InputError(base, "dataset folder does not exist")
    rows = []
    xmls = sorted((base / "Classification").glob("*.xml"))
    for f in xmls:
        if f.is_symlink():
            raise InputError(f, "symbolic link refused (samples must be files of the dataset)")
        try:
            node = DET.parse(str(f)).getroot()
        except (DefusedXmlException, SyntaxError) as exc:
            raise InputError(f, f"not a usable sample XML: {exc}") from None

        def text(path: str, node: Any = node) -> str:
            found = node.find(path)
            return "" if found is None or found.text is None else found.text.strip()

        rows.append({c: text(c) for c in ("category", "filename", "path")} | {
            "width": text("size/width"), "height": text("size/height"),
            "city": text("geographic/city"), "district": text("geographic/district"),
            "longitude": text("geographic/longitude"), "latitude": text("geographic/latitude"),
            "primary_class": text("primary_class"), "secondary_class": text("secondary_class"),
            "level": text("level"), "_source": str(f),
        })  # fmt: skip
    if not xmls:
        csv = base / "dataset.csv"
        if not csv.is_file():
            raise InputError(
                base, "no Classification/*.xml and no dataset.csv: not an MSLU dataset"
            )
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        if "path" not in table.columns:
            raise InputError(csv, "no path column")
        rows = [
            {str(k): v for k, v in r.items()} | {"_source": str(csv)}
            for r in table.to_dict("records")
        ]
    out = []
    for r in rows:
        target = safe_member_path(base, r["path"], r["_source"])
        if check_images and not target.is_file():
            raise InputError(r["_source"], f"image {r['path']!r} does not exist")
        out.append({c: r.get(c, "") for c in CSV_COLUMNS} | {"image": str(target)})
    table = pd.DataFrame(out, columns=[*CSV_COLUMNS, "image"])
    for c in ("width", "height", "level"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype("Int64")
    for c in ("longitude", "latitude"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return table
