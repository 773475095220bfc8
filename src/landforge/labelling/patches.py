"""Patch images of parcels: a square window around each parcel, its outline drawn on it.

The window is the parcel's bounding box grown by ``margin`` and made square (in the
parcels' metric CRS). With an image raster the window is read from it (resampled to
``px`` pixels, first three bands as RGB, or one band as grey); without one the patch
is a light background, so annotators still see the shape and the POIs drawn as dots.
The outline's vertices in percent of the patch are what Label Studio's
``polygonlabels`` want (x to the right, y downwards, 0-100).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from PIL import Image, ImageDraw

__all__ = ["Patch", "outline_percent", "parcel_window", "render_patch"]


@dataclass(frozen=True)
class Patch:
    """A square window in the parcels' CRS and its size in pixels."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    px: int

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Map coordinates to pixel positions (column, row) of the patch."""
        sx = self.px / (self.maxx - self.minx)
        sy = self.px / (self.maxy - self.miny)
        return np.column_stack([(xy[:, 0] - self.minx) * sx, (self.maxy - xy[:, 1]) * sy])


def parcel_window(geom: shapely.Geometry, margin: float, px: int) -> Patch:
    """The square window around ``geom`` grown by ``margin`` (a share of its size)."""
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, maxy - miny, 1e-6) * (1 + 2 * margin) / 2
    return Patch(cx - half, cy - half, cx + half, cy + half, px)


def _exterior(geom: shapely.Geometry) -> np.ndarray:
    """The exterior ring of ``geom``'s largest polygon part."""
    parts = list(getattr(geom, "geoms", [geom]))
    largest = max(parts, key=lambda g: g.area)
    return np.asarray(largest.exterior.coords)[:-1, :2]


def outline_percent(geom: shapely.Geometry, patch: Patch) -> list[list[float]]:
    """The outline of ``geom``'s largest part in percent of the patch (Label Studio)."""
    pix = patch.to_pixels(_exterior(geom)) / patch.px * 100.0
    pix = np.clip(pix, 0.0, 100.0)
    return [[round(float(x), 3), round(float(y), 3)] for x, y in pix]


def _background(patch: Patch, raster: Any) -> Image.Image:
    """The patch's pixels: read from ``raster`` (an open rasterio dataset) or plain."""
    if raster is None:
        return Image.new("RGB", (patch.px, patch.px), (236, 236, 230))
    from rasterio.enums import Resampling
    from rasterio.windows import from_bounds

    window = from_bounds(patch.minx, patch.miny, patch.maxx, patch.maxy, raster.transform)
    bands = [1, 2, 3] if raster.count >= 3 else [1]
    data = raster.read(
        bands,
        window=window,
        out_shape=(len(bands), patch.px, patch.px),
        boundless=True,
        fill_value=0,
        resampling=Resampling.bilinear,
    ).astype(np.float64)
    if raster.dtypes[0] != "uint8":  # stretch to 2-98 % for display
        lo, hi = np.percentile(data, [2, 98]) if data.size else (0.0, 1.0)
        data = (data - lo) / max(hi - lo, 1e-9) * 255.0
    rgb = np.clip(data, 0, 255).astype(np.uint8)
    if rgb.shape[0] == 1:
        rgb = np.repeat(rgb, 3, axis=0)
    return Image.fromarray(np.moveaxis(rgb, 0, -1), "RGB")


def render_patch(
    geom: shapely.Geometry,
    patch: Patch,
    path: str | os.PathLike[str],
    raster: Any = None,
    points: np.ndarray | None = None,
) -> tuple[int, int]:
    """Write the patch PNG with the parcel outline (and POI dots) drawn; returns its size.

    Args:
        geom: the parcel polygon, in the CRS of ``patch`` (and of ``raster``).
        patch: the window (:func:`parcel_window`).
        path: the PNG to write.
        raster: an open rasterio dataset in the same CRS, or None for a plain background.
        points: POI coordinates (n, 2) in the same CRS, drawn as small dots.
    """
    img = _background(patch, raster)
    draw = ImageDraw.Draw(img)
    width = max(2, patch.px // 128)
    for part in getattr(geom, "geoms", [geom]):
        ring = patch.to_pixels(np.asarray(part.exterior.coords)[:, :2])
        draw.line([tuple(p) for p in ring], fill=(255, 40, 40), width=width)
    if points is not None and len(points):
        r = max(2, patch.px // 96)
        for x, y in patch.to_pixels(np.asarray(points, dtype=float)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(30, 90, 220))
    img.save(path, format="PNG")
    return img.size
