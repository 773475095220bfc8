"""Small broken inputs for the bad-input matrix (tests/test_bad_input.py).

One synthetic city (400 m at 2 m) and, beside it, the mistakes users make: missing,
empty (0 bytes) and truncated files, text named ``.tif``, layers without CRS or far
away, grids shifted by half a pixel, broken POI tables, invalid polygons, configs and
pipelines with unknown fields or wrong types, reclassification rules naming an unknown
class or no taxonomy, a tiny model checkpoint (and a copy with a change-model card),
parcel samples that hold no image, POI or population data.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

from landforge.io.raster import RasterGrid, write_cog
from landforge.models.checkpoint import ModelCard, save_checkpoint
from landforge.models.registry import build
from landforge.synth import make_city

FAR_M = 100_000.0  # "does not overlap": moved 100 km east and north


def make_bad_inputs(root: Path) -> dict[str, Path]:
    """Write the city and the broken inputs under ``root``; returns the folders."""
    city, bad = root / "city", root / "bad"
    make_city(city, size_m=400, gsd=2, t2=False, s1=False, s2=False, population=False, quiet=True)
    bad.mkdir()
    _rasters(city, bad)
    _vectors(city, bad)
    _tables(city, bad)
    _configs(city, bad)
    _model(bad)
    _change_model(bad)
    _parcel_samples(city, bad)
    (bad / "afile").write_text("a file where a directory is expected\n")
    return {"city": city, "bad": bad, "model": bad / "model.safetensors"}


def truncate(src: Path, dst: Path) -> Path:
    """A real COG cut in half: the header opens, the pixel data ends early."""
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _rasters(city: Path, bad: Path) -> None:
    (bad / "empty.tif").write_bytes(b"")
    (bad / "text.tif").write_text("this is not a raster\n")
    truncate(city / "image.tif", bad / "trunc.tif")
    with rasterio.open(city / "labels" / "building_use.tif") as src:
        arr, profile = src.read(), src.profile
    # a class map that compresses badly, so half the file still holds the whole header
    noise = np.random.default_rng(0).integers(0, 4, size=arr.shape, dtype=np.uint8)
    grid = RasterGrid(profile["crs"], profile["transform"], profile["width"], profile["height"])
    truncate(write_cog(bad / "noise_map.tif", noise, grid), bad / "trunc_map.tif")
    (bad / "noise_map.tif").unlink()
    t = profile["transform"]
    plain = {
        k: v
        for k, v in profile.items()
        if k not in ("blockxsize", "blockysize", "tiled", "interleave", "compress")
    }
    variants = {
        "nocrs.tif": {"crs": None},
        "shifted.tif": {"transform": t @ Affine.translation(0.5, 0)},  # half a pixel
        "far.tif": {"transform": Affine(t.a, 0, t.c + FAR_M, 0, t.e, t.f + FAR_M)},
    }
    for name, change in variants.items():
        with rasterio.open(bad / name, "w", **{**plain, "driver": "GTiff", **change}) as dst:
            dst.write(arr)


def _vectors(city: Path, bad: Path) -> None:
    (bad / "empty.gpkg").write_bytes(b"")
    (bad / "text.gpkg").write_text("not a GeoPackage\n")
    parcels = gpd.read_file(city / "parcels.gpkg")
    parcels.iloc[:0].to_file(bad / "emptylayer.gpkg")
    far = parcels.copy()
    far["geometry"] = far.translate(FAR_M, FAR_M)
    far.to_file(bad / "far.gpkg")
    with warnings.catch_warnings():  # pyogrio warns that the layer has no CRS: the point
        warnings.simplefilter("ignore", UserWarning)
        parcels.set_crs(None, allow_override=True).to_file(bad / "nocrs.gpkg")
    # one parcel turned into a self-intersecting "bow tie" over its bounding box
    invalid = parcels.iloc[:3].copy()
    x0, y0, x1, y1 = invalid.geometry.iloc[0].bounds
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    assert not bowtie.is_valid
    invalid.loc[invalid.index[0], "geometry"] = bowtie
    invalid.to_file(bad / "invalid.gpkg")


def _tables(city: Path, bad: Path) -> None:
    pois = gpd.read_parquet(city / "pois.parquet")
    lon, lat = float(pois["lon"].iloc[0]), float(pois["lat"].iloc[0])
    head = "lon,lat,category\n"
    tables = {
        "empty.csv": "",
        "header.csv": head,
        "nan.csv": f"{head}{lon},{lat},catering\nnan,{lat},catering\n",
        "range.csv": f"{head}{lon},{lat + 200},catering\n",
        "swapped.csv": f"{head}{lat},{lon},catering\n",
        "nonnumeric.csv": f"{head}east,north,catering\n",
    }
    for name, text in tables.items():
        (bad / name).write_text(text)
    pois.drop(columns="geometry").to_csv(bad / "good.csv", index=False)


def _configs(city: Path, bad: Path) -> None:
    files = {
        "unknown.yaml": "bogus_field: 3\n",
        "wrongtype.yaml": "window: lots\n",
        "train_unknown.yaml": f"chips: {bad / 'nochips'}\nbogus: 1\n",
        "train_type.yaml": f"chips: {bad / 'nochips'}\nbatch_size: many\n",
        "train_nochips.yaml": f"chips: {bad / 'nochips'}\n",
        "sequence.yaml": f"regions: {{a: {bad / 'nochips'}}}\nbase: {{model: unet}}\n",
        "cross.yaml": f"regions: {{a: {bad / 'nochips'}, b: {bad / 'nochips'}}}\n"
        "base: {bogus: 1}\n",
        "pipe_unknown.yaml": _pipeline(f"roads: {city / 'roads.gpkg'}, bogus: 1"),
        "pipe_type.yaml": "name: bad\nstages:\n  - {name: x, type: nope, with: {}}\n",
        "pipe_syntax.yaml": "name: [unclosed\n",
        "pipe_nocrs.yaml": _pipeline(f"roads: {bad / 'nocrs.gpkg'}"),
        "pipe_ok.yaml": _pipeline(f"roads: {city / 'roads.gpkg'}"),
        "rules_badclass.yaml": "taxonomy: ubgg\nrules:\n  - {from: lawn, to: farmland}\n",
        "rules_notax.yaml": "rules:\n  - {from: grass, to: farmland}\n",
    }
    for name, text in files.items():
        (bad / name).write_text(text)


def _pipeline(with_: str) -> str:
    return (
        "name: bad\nstages:\n  - name: parcels\n    type: parcels\n"
        f"    with: {{{with_}, out: parcels.parquet}}\n"
    )


def _model(bad: Path) -> None:
    kwargs = {
        "in_channels": 3,
        "classes": 3,
        "encoder": "resnet18",
        "encoder_depth": 3,
        "decoder_channels": [16, 8, 8],
    }
    card = ModelCard(
        model="multitask_unet",
        model_kwargs=kwargs,
        bands=["red", "green", "blue"],
        mean=[100.0] * 3,
        std=[50.0] * 3,
        heads={"footprint": ["building"], "use": ["residential", "commercial", "industrial"]},
        taxonomy="rci",
        gsd_m=2.0,
    )
    save_checkpoint(build(card.model, **kwargs), card, bad / "model")


def _change_model(bad: Path) -> None:
    """``bad/change/model``: the tiny model with a change card beside it (no series).

    Only the checks before any forward pass see it: ``change predict`` reads the change
    card, the checkpoint, then the T1/T2 grids and band counts.
    """
    (bad / "change").mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(bad / f"model{suffix}", bad / "change" / f"model{suffix}")
    card = {
        "format": "landforge-change-model/1",
        "size": 32,
        "gsd": 2.0,
        "classes": ["background", "residential", "commercial", "industrial"],
        "time_steps": 0,
        "series_channels": [],
    }
    (bad / "change" / "model.change.json").write_text(json.dumps(card))


def _parcel_samples(city: Path, bad: Path) -> None:
    """``bad/samples``: labelled parcel samples from the parcels alone (no image, POI, people)."""
    from landforge.io.vector import read_vector
    from landforge.parcels.samples import build_parcel_samples, write_parcel_samples

    parcels = read_vector(city / "parcels.gpkg")
    write_parcel_samples(build_parcel_samples(parcels, label_col="use_primary"), bad / "samples")


def tree(path: Path) -> set[str]:
    """Every file and directory under ``path`` (hidden ones too), relative to it."""
    if not path.exists():
        return set()
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def assert_one_error(err: str, out: str, names: str) -> str:
    """Exactly one ``error:`` line on stderr naming ``names``; no traceback anywhere."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err + out, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    assert names in lines[0], f"{names!r} not named in: {lines[0]}"
    return lines[0]


def touch_tree(path: Path, files: dict[str, str]) -> None:
    """Create ``files`` (relative name -> text) under ``path``."""
    for name, text in files.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)


def as_array(path: Path) -> np.ndarray:
    """The pixels of a raster (to compare an output before and after a re-run)."""
    with rasterio.open(path) as src:
        return src.read()
