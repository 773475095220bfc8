"""The frame of a synthetic city: extent, centre, boundary, districts and a smooth warp.

Every other synth module places things relative to this frame, so a city is one
:class:`CityFrame` plus seeded random streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

__all__ = ["CityFrame", "make_frame", "component_rng", "smooth_noise"]

# One independent random stream per component, so adding draws to one component never
# changes another component's output for the same seed.
_STREAMS = {
    "boundary": 1,
    "roads": 2,
    "parcels": 3,
    "buildings": 4,
    "pois": 5,
    "image": 6,
    "image_sensor": 7,
    "change": 8,
    "sentinel2": 9,
    "sentinel1": 10,
    "population": 11,
    "roof_colours": 12,
    "image_t2": 13,
    "use_ambiguity": 14,
    "change_month": 15,
}


def component_rng(seed: int, component: str, *extra: int) -> np.random.Generator:
    """The random stream of one component of the city for ``seed``."""
    return np.random.default_rng([seed, _STREAMS[component], *extra])


@dataclass(frozen=True)
class CityFrame:
    """Extent and shape of the city in a metric CRS.

    Attributes:
        x0, y0: lower-left corner of the square extent.
        size_m: side of the square extent in metres.
        boundary: irregular administrative boundary inside the square.
        districts: district polygons (partition of ``boundary``), ids 1..n.
        warp: coefficients of the smooth displacement field that bends the road grid.
    """

    x0: float
    y0: float
    size_m: float
    boundary: Polygon
    districts: list[Polygon]
    warp: np.ndarray

    @property
    def centre(self) -> tuple[float, float]:
        """Centre (x, y) of the extent."""
        return (self.x0 + self.size_m / 2, self.y0 + self.size_m / 2)

    @property
    def radius(self) -> float:
        """Nominal city radius: half the extent."""
        return self.size_m / 2

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the extent."""
        return (self.x0, self.y0, self.x0 + self.size_m, self.y0 + self.size_m)

    def rel_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance from the centre divided by the nominal radius (0 centre, ~1 edge)."""
        cx, cy = self.centre
        return np.hypot(np.asarray(x) - cx, np.asarray(y) - cy) / self.radius

    def warp_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displace points by a smooth field so straight grid lines become gently curved.

        A sum of a few low-frequency sinusoids: amplitude a few percent of the city size,
        enough that the grid looks grown rather than drawn with a ruler.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        u = (x - self.x0) / self.size_m
        v = (y - self.y0) / self.size_m
        dx = np.zeros_like(x)
        dy = np.zeros_like(y)
        for amp, kx, ky, phase_x, phase_y in self.warp:
            dx += amp * np.sin(2 * np.pi * (kx * u + ky * v) + phase_x)
            dy += amp * np.sin(2 * np.pi * (ky * u - kx * v) + phase_y)
        # Fade the warp out towards the extent edge so lines stay inside the square.
        fade = np.clip(np.minimum.reduce([u, 1 - u, v, 1 - v]) * 8, 0, 1)
        return x + dx * fade * self.size_m, y + dy * fade * self.size_m


def make_frame(seed: int, size_m: float, x0: float, y0: float, n_districts: int = 4) -> CityFrame:
    """Draw the boundary, districts and warp field of a city.

    The boundary is a star-shaped polygon: radius = R (1 + low-frequency harmonics), so it
    has lobes and bays like a real municipality rather than being the square extent.
    """
    rng = component_rng(seed, "boundary")
    cx, cy = x0 + size_m / 2, y0 + size_m / 2
    theta = np.linspace(0, 2 * np.pi, 181)[:-1]
    r = np.ones_like(theta)
    for k in (2, 3, 5, 7):
        r += (
            rng.uniform(0.02, 0.07) / (k / 2) ** 0.5 * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
        )
    r += rng.normal(0, 0.006, theta.size)  # small surveyed-line roughness
    r = r / r.max() * 0.49 * size_m  # stays inside the square extent
    boundary = Polygon(np.c_[cx + r * np.cos(theta), cy + r * np.sin(theta)])
    boundary = shapely.make_valid(boundary)
    if boundary.geom_type != "Polygon":  # pragma: no cover - harmonics are too small for this
        boundary = max(boundary.geoms, key=lambda g: g.area)

    # Districts: angular sectors from the centre with jittered dividing angles.
    start = rng.uniform(0, 2 * np.pi)
    cuts = start + np.sort(
        np.arange(n_districts) * 2 * np.pi / n_districts + rng.uniform(-0.25, 0.25, n_districts)
    )
    districts = []
    far = size_m * 2
    for i in range(n_districts):
        a0, a1 = cuts[i], cuts[(i + 1) % n_districts] + (2 * np.pi if i == n_districts - 1 else 0)
        arc = np.linspace(a0, a1, 32)
        wedge = Polygon(
            [(cx, cy), *zip(cx + far * np.cos(arc), cy + far * np.sin(arc), strict=True)]
        )
        districts.append(boundary.intersection(wedge))

    warp = np.array(
        [
            (
                rng.uniform(0.004, 0.012),
                rng.integers(1, 3),
                rng.integers(0, 3),
                rng.uniform(0, 2 * np.pi),
                rng.uniform(0, 2 * np.pi),
            )
            for _ in range(3)
        ],
        dtype=float,
    )
    return CityFrame(x0, y0, float(size_m), boundary, districts, warp)


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cell: float, dtype: type = np.float32
) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise of ``shape`` with features about ``cell`` pixels wide.

    Drawn on a coarse lattice and bilinearly upsampled: far cheaper than filtering a
    full-resolution white-noise field, and smooth enough for texture and cloud blobs.
    """
    from scipy.ndimage import zoom

    h, w = shape
    cell = max(float(cell), 1.0)
    ch, cw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    coarse = rng.standard_normal((ch, cw)).astype(dtype)
    fine = zoom(coarse, (h / (ch - 1), w / (cw - 1)), order=1, prefilter=False, grid_mode=False)
    return np.ascontiguousarray(fine[:h, :w])
