"""Satellite time series read by geographic window: the series path of the change stages.

A series is one of

- a **FUSU folder**: ``DIR/s2/*.tif`` (Sentinel-2, bands found by description, B1-B8,
  B8A, B9, B11, B12 in that order, plus an optional ``cloud`` band, 0/1) and/or
  ``DIR/s1/*.tif`` (Sentinel-1 VV, VH). Frames are matched by month; the channels are
  the 12 Sentinel-2 bands, then VV and VH (FUSU's order), for the sensors present.
- a **plain folder** of ``*.tif``, one date per file; every band except ``cloud`` is a
  channel (e.g. an NDVI series: one channel).
- a **stack**: one GeoTIFF whose band descriptions are ``DATE`` or ``DATE BAND``
  (``2023-05-14 ndvi``, ``2023-05-14 cloud``).

A file's date comes from its ``date`` tag or else its name (``2023-05-14``,
``20230514``, ``2023-05``); a file with neither is an error naming it.
:meth:`Series.read` cuts every frame over a footprint given by bounds at ``res``
(nearest neighbour), with pixels outside the series set to 0.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from landforge.errors import InputError

__all__ = ["S1_CHANNELS", "S2_CHANNELS", "Series", "SeriesCut", "open_series", "parse_date"]

#: FUSU's Sentinel-2 channel order (B10, cirrus, is not used).
S2_CHANNELS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
S1_CHANNELS = ("VV", "VH")
_DATE = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})(?:-?(\d{2}))?(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?(?!\d)"
)


def parse_date(text: str) -> dt.date | None:
    """The first ``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY-MM`` (day 1) in ``text``."""
    for m in _DATE.finditer(text):
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
        except ValueError:
            continue
    return None


def _norm_band(name: str) -> str:
    """``B1`` -> ``B01``, ``b8a`` -> ``B8A``; other names upper-cased."""
    n = name.strip().upper()
    m = re.fullmatch(r"B(\d)", n)
    return f"B0{m.group(1)}" if m else n


@dataclass
class _Source:
    """One file's part of a frame: which bands fill which channels."""

    path: Path
    bands: list[int]  # 1-based band indexes, in channel order
    slots: list[int]  # channel index of each band
    cloud: int | None  # 1-based cloud band
    cloud_path: Path | None = None  # the file holding it, if not ``path``


@dataclass
class _Frame:
    date: dt.date
    sources: list[_Source] = field(default_factory=list)


@dataclass
class SeriesCut:
    """A series cut over one footprint.

    Attributes:
        data: (T, C, h, w) float32; 0 where a frame is missing, dropped or uncovered.
        days: (T,) int32 days since the series' first date.
        mask: (T,) bool, True where the frame holds data.
        dropped: frames dropped for cloud in this footprint.
        coverage: share of the footprint inside the series.
    """

    data: np.ndarray
    days: np.ndarray
    mask: np.ndarray
    dropped: int
    coverage: float


class Series:
    """An opened series: channels, dates and the files behind each frame."""

    def __init__(self, path: Path, channels: list[str], frames: list[_Frame]) -> None:
        self.path = path
        self.channels = channels
        self.frames = sorted(frames, key=lambda f: f.date)
        self.dates = [f.date for f in self.frames]
        self._stack = contextlib.ExitStack()
        self._open: dict[Path, Any] = {}
        self.crs, self.bounds = self._extent()

    def __enter__(self) -> Series:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the open files."""
        self._stack.close()
        self._open.clear()

    def _ds(self, path: Path) -> Any:
        ds = self._open.get(path)
        if ds is None:
            try:
                ds = self._stack.enter_context(rasterio.open(path))
            except rasterio.errors.RasterioError as exc:
                raise InputError(path, f"cannot read the series file ({exc})") from None
            self._open[path] = ds
        return ds

    def _extent(self) -> tuple[CRS, tuple[float, float, float, float]]:
        """CRS of the first file and the union of the files' bounds in it."""
        crs: CRS | None = None
        box = [math.inf, math.inf, -math.inf, -math.inf]
        for fr in self.frames:
            for s in fr.sources:
                ds = self._ds(s.path)
                if ds.crs is None:
                    raise InputError(s.path, "series file has no CRS")
                crs = crs or ds.crs
                b = ds.bounds if ds.crs == crs else transform_bounds(ds.crs, crs, *ds.bounds)
                box = [min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3])]
        assert crs is not None
        return crs, (box[0], box[1], box[2], box[3])

    def days(self) -> np.ndarray:
        """Days of every frame since the first."""
        first = self.dates[0]
        return np.array([(d - first).days for d in self.dates], np.int32)

    def coverage(self, bounds: tuple[float, float, float, float], crs: Any) -> float:
        """Share of ``bounds`` (in ``crs``) inside the series' extent."""
        left, bottom, right, top = self.bounds
        if CRS.from_user_input(crs) != self.crs:
            left, bottom, right, top = transform_bounds(self.crs, crs, *self.bounds)
        w = max(0.0, min(right, bounds[2]) - max(left, bounds[0]))
        h = max(0.0, min(top, bounds[3]) - max(bottom, bounds[1]))
        area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
        return float(w * h / area) if area > 0 else 0.0

    def _read(self, path: Path, bands: list[int], bounds: Any, crs: Any, shape: Any) -> np.ndarray:
        ds = self._ds(path)
        h, w = shape
        tf = ds.transform
        if ds.crs == CRS.from_user_input(crs) and tf.b == 0 and tf.d == 0:
            # nearest neighbour by pixel centres: one small window read, no VRT
            res_x, res_y = (bounds[2] - bounds[0]) / w, (bounds[3] - bounds[1]) / h
            xs = bounds[0] + (np.arange(w) + 0.5) * res_x
            ys = bounds[3] - (np.arange(h) + 0.5) * res_y
            cols = np.floor((xs - tf.c) / tf.a).astype(np.int64)
            rows = np.floor((ys - tf.f) / tf.e).astype(np.int64)
            vc = (cols >= 0) & (cols < ds.width)
            vr = (rows >= 0) & (rows < ds.height)
            out = np.zeros((len(bands), h, w), np.float32)
            if not vc.any() or not vr.any():
                return out
            c0, c1 = int(cols[vc].min()), int(cols[vc].max()) + 1
            r0, r1 = int(rows[vr].min()), int(rows[vr].max()) + 1
            arr = ds.read(bands, window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0))
            sub = arr[:, rows[vr] - r0][:, :, cols[vc] - c0]
            out[:, np.flatnonzero(vr)[:, None], np.flatnonzero(vc)[None, :]] = sub
            return out
        from rasterio.transform import from_bounds
        from rasterio.vrt import WarpedVRT

        tf = from_bounds(*bounds, w, h)
        with WarpedVRT(
            ds, crs=crs, transform=tf, width=w, height=h, resampling=Resampling.nearest, nodata=0
        ) as vrt:
            return vrt.read(bands).astype(np.float32)

    def read(
        self,
        bounds: tuple[float, float, float, float],
        crs: Any,
        res: float,
        max_cloud: float = 1.0,
    ) -> SeriesCut:
        """Cut every frame over ``bounds`` (in ``crs``) at pixel size ``res`` (nearest)."""
        h = max(1, int(round((bounds[3] - bounds[1]) / res)))
        w = max(1, int(round((bounds[2] - bounds[0]) / res)))
        t, c = len(self.frames), len(self.channels)
        data = np.zeros((t, c, h, w), np.float32)
        mask = np.zeros(t, bool)
        dropped = 0
        for i, fr in enumerate(self.frames):
            for s in fr.sources:
                if s.cloud is not None:
                    cloud = self._read(s.cloud_path or s.path, [s.cloud], bounds, crs, (h, w))[0]
                    if float((cloud > 0).mean()) >= max_cloud:
                        dropped += 1
                        continue
                arr = self._read(s.path, s.bands, bounds, crs, (h, w))
                data[i, s.slots] = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
                mask[i] = True
        return SeriesCut(data, self.days(), mask, dropped, self.coverage(bounds, crs))


def _file_date(path: Path, ds: Any) -> dt.date:
    tag = ds.tags().get("date")
    d = parse_date(tag) if tag else None
    d = d or parse_date(path.stem)
    if d is None:
        raise InputError(path, "no date: name it YYYY-MM-DD.tif or give it a 'date' tag")
    return d


def _descriptions(ds: Any) -> list[str]:
    return [(d or "").strip() for d in ds.descriptions]


def _sentinel_folder(root: Path) -> Series:
    """The FUSU layout: ``s2/`` and/or ``s1/`` monthly files."""
    sensors = [
        (n, ch) for n, ch in (("s2", S2_CHANNELS), ("s1", S1_CHANNELS)) if (root / n).is_dir()
    ]
    channels = [c for _, ch in sensors for c in ch]
    frames: dict[tuple[int, int], _Frame] = {}
    offset = 0
    for name, names in sensors:
        files = sorted((root / name).glob("*.tif"))
        if not files:
            raise InputError(root / name, "holds no .tif files")
        for p in files:
            with rasterio.open(p) as ds:
                date = _file_date(p, ds)
                desc = [_norm_band(d) for d in _descriptions(ds)]
                count = ds.count
            cloud = desc.index("CLOUD") + 1 if "CLOUD" in desc else None
            if all(n in desc for n in names):
                bands = [desc.index(n) + 1 for n in names]
            elif count - (cloud is not None) >= len(names):
                bands = [b for b in range(1, count + 1) if b != cloud][: len(names)]
            else:
                raise InputError(p, f"{count} band(s); a {name} frame needs {', '.join(names)}")
            slots = list(range(offset, offset + len(names)))
            key = (date.year, date.month)
            frame = frames.setdefault(key, _Frame(dt.date(date.year, date.month, 15)))
            if any(s.slots == slots for s in frame.sources):
                raise InputError(p, f"a second {name} frame for {date:%Y-%m}")
            frame.sources.append(_Source(p, bands, slots, cloud))
        offset += len(names)
    return Series(root, channels, list(frames.values()))


def _plain_folder(root: Path) -> Series:
    files = sorted(root.glob("*.tif"))
    if not files:
        raise InputError(root, "no .tif files and no s2/ or s1/ folder: not a time series")
    frames: dict[dt.date, _Frame] = {}
    channels: list[str] | None = None
    for p in files:
        with rasterio.open(p) as ds:
            date = _file_date(p, ds)
            desc = [d.lower() for d in _descriptions(ds)]
            count = ds.count
        cloud = desc.index("cloud") + 1 if "cloud" in desc else None
        bands = [b for b in range(1, count + 1) if b != cloud]
        names = [desc[b - 1] or f"band{b}" for b in bands]
        if channels is None:
            channels = names
        elif len(names) != len(channels):
            raise InputError(p, f"{len(names)} channel(s), the first file has {len(channels)}")
        if date in frames:
            raise InputError(p, f"a second file for {date.isoformat()}")
        frames[date] = _Frame(date, [_Source(p, bands, list(range(len(bands))), cloud)])
    assert channels is not None
    return Series(root, channels, list(frames.values()))


def _dated_bands(path: Path) -> dict[str, tuple[dt.date, dict[str, int]]]:
    """Bands of a stack by acquisition (the date-time text: two scenes of a day stay two)."""
    with rasterio.open(path) as ds:
        desc = _descriptions(ds)
    by_time: dict[str, tuple[dt.date, dict[str, int]]] = {}
    for b, text in enumerate(desc, start=1):
        m = _DATE.search(text)
        date = parse_date(m.group(0)) if m else None
        if m is None or date is None:
            raise InputError(path, f"band {b} description {text!r} holds no date (YYYY-MM-DD)")
        rest = (text[: m.start()] + text[m.end() :]).strip(" :_/-").lower() or "value"
        by_time.setdefault(m.group(0), (date, {}))[1][rest] = b
    return by_time


def _stack(path: Path, cloud: Path | None = None) -> Series:
    by_time = _dated_bands(path)
    clouds = _dated_bands(cloud) if cloud is not None else {}
    channels = [n for n in next(iter(by_time.values()))[1] if n != "cloud"]
    frames = []
    for key, (date, bands) in by_time.items():
        missing = [c for c in channels if c not in bands]
        if missing:
            raise InputError(path, f"{key} lacks band(s) {', '.join(missing)}")
        cb, cpath = bands.get("cloud"), None
        if cloud is not None:
            if key not in clouds:
                raise InputError(cloud, f"no cloud band for {key}")
            cb, cpath = next(iter(clouds[key][1].values())), cloud
        src = _Source(path, [bands[c] for c in channels], list(range(len(channels))), cb, cpath)
        frames.append(_Frame(date, [src]))
    return Series(path, channels, frames)


def open_series(
    path: str | os.PathLike[str],
    min_dates: int = 1,
    cloud: str | os.PathLike[str] | None = None,
) -> Series:
    """Open a series (FUSU folder, plain folder or stack; see the module doc).

    ``cloud``: for a stack, a second stack of cloud masks (0/1, band descriptions with
    the same dates) instead of ``DATE cloud`` bands.
    """
    p = Path(path)
    if cloud is not None and (p.is_dir() or not Path(cloud).is_file()):
        raise InputError(cloud, "a cloud-mask stack goes with a series stack (a file)")
    if not p.exists():
        raise InputError(p, "series does not exist")
    try:
        if p.is_dir():
            s = (
                _sentinel_folder(p)
                if (p / "s2").is_dir() or (p / "s1").is_dir()
                else _plain_folder(p)
            )
        else:
            s = _stack(p, Path(cloud) if cloud is not None else None)
    except rasterio.errors.RasterioError as exc:
        raise InputError(p, f"cannot read the series ({exc})") from None
    if len(s.dates) < max(min_dates, 1):
        s.close()
        raise InputError(p, f"{len(s.dates)} date(s), fewer than the {max(min_dates, 1)} needed")
    return s


@contextlib.contextmanager
def opened_series(
    path: str | os.PathLike[str],
    min_dates: int = 1,
    cloud: str | os.PathLike[str] | None = None,
) -> Iterator[Series]:
    """:func:`open_series` as a context manager."""
    s = open_series(path, min_dates, cloud)
    try:
        yield s
    finally:
        s.close()
