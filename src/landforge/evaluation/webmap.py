"""The report's interactive map: Leaflet, embedded inline, working from ``file://``.

One section of ``report.html`` shows a run's layers on a pannable, zoomable map: the
image quicklook, the predicted class map and the truth, where they differ, parcels with
their predicted and true class (and probabilities, quality level or fractions when the
table has them) in popups, and the test-split blocks. Everything is in the file: the
Leaflet script and style sheet (vendored from the npm registry by
``tools/vendor_leaflet.py``, version in ``assets/leaflet.version``), the rasters as PNG
``data:`` URIs and the vectors as GeoJSON, so the report opens offline and the page's
Content-Security-Policy forbids any request anyway.

The map has no basemap and uses the rasters' own projected CRS (Leaflet's
``CRS.Simple`` with metres as units, relative to the frame's lower-left corner): no
tile server is needed and nothing is reprojected to Web Mercator. Rasters are
downsampled to a pixel budget and vectors simplified to about one output pixel and
capped in number; the section says when either happened.

Layers come from small provider functions (``@layer_provider``): each looks at the run
(its metrics files, class maps and manifest) and returns overlays. A new kind of output
(change maps, quality levels) adds its layers by adding one provider.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from landforge.config import jsonable
from landforge.errors import InputError

__all__ = [
    "MapContext",
    "RasterOverlay",
    "VectorOverlay",
    "layer_provider",
    "map_section",
]

#: Pixels a raster layer is downsampled to (at most), unless the report says otherwise.
DEFAULT_PIXELS = 1_000_000
#: Features a vector layer keeps (at most).
DEFAULT_FEATURES = 5_000

_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
]  # fmt: skip
_SPLIT_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#d62728"}
#: Classes drawn transparent on class-map layers, so the image below shows through.
CLEAR_CLASSES = {"background", "nodata", "no data", "unlabelled", "unlabeled", "others"}


@dataclass
class Frame:
    """The map's coordinate frame: a projected CRS and the extent shown."""

    crs: Any
    left: float
    bottom: float
    right: float
    top: float

    def bounds(self, left: float, bottom: float, right: float, top: float) -> list[list[float]]:
        """Leaflet ``[[south, west], [north, east]]`` of a box, relative to the frame."""
        return [
            [round(bottom - self.bottom, 3), round(left - self.left, 3)],
            [round(top - self.bottom, 3), round(right - self.left, 3)],
        ]


@dataclass
class RasterOverlay:
    """A raster layer: one PNG over a box of the frame's CRS."""

    name: str
    png: bytes
    box: tuple[float, float, float, float]  # left, bottom, right, top (frame CRS)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, #rrggbb)
    show: bool = True


@dataclass
class VectorOverlay:
    """A vector layer: GeoJSON features (frame CRS) with a style and popups."""

    name: str
    features: list[dict[str, Any]]
    colour: str = "#333333"
    fill_by: str | None = None  # a property holding #rrggbb per feature
    fill_opacity: float = 0.35
    popup: list[str] = field(default_factory=list)  # properties shown on click
    show: bool = True


Overlay = RasterOverlay | VectorOverlay


@dataclass
class MapContext:
    """What a provider sees of the run, and where it reports."""

    root: Path
    metrics: list[tuple[Path, dict[str, Any]]]
    manifest: Mapping[str, Any] | None
    class_names: Callable[[Path], dict[int, str] | None]
    pixels: int = DEFAULT_PIXELS
    features: int = DEFAULT_FEATURES
    frame: Frame | None = None
    notes: list[str] = field(default_factory=list)
    colours: dict[str, str] = field(default_factory=dict)  # class name -> #rrggbb


_PROVIDERS: list[Callable[[MapContext], list[Overlay]]] = []


def layer_provider(
    fn: Callable[[MapContext], list[Overlay]],
) -> Callable[[MapContext], list[Overlay]]:
    """Register a function that adds layers to the map (run in registration order)."""
    _PROVIDERS.append(fn)
    return fn


# ---------------------------------------------------------------------- rasters
def _png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb[:3]))


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _read_small(
    path: Path, ctx: MapContext, bands: Sequence[int], categorical: bool
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float], Any]:
    """Bands of ``path`` downsampled to the pixel budget, on the frame's CRS.

    Returns (data (bands, h, w), valid mask (h, w), box, colormap of band 1 or None).
    The first raster read sets the frame.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from landforge.io.raster import open_raster

    with open_raster(path) as src:
        frame = _frame_of(src, path, ctx)
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = None
        nodata = src.nodata
        with (
            WarpedVRT(src, crs=frame.crs, resampling=Resampling.nearest)
            if src.crs != frame.crs
            else contextlib.nullcontext(src) as ds
        ):
            scale = max(1.0, math.sqrt(ds.width * ds.height / max(ctx.pixels, 1)))
            h, w = max(1, round(ds.height / scale)), max(1, round(ds.width / scale))
            resampling = Resampling.nearest if categorical else Resampling.average
            data = ds.read(list(bands), out_shape=(len(bands), h, w), resampling=resampling)
            masks = ds.read_masks(1, out_shape=(h, w), resampling=Resampling.nearest)
            b = ds.bounds
            box = (b.left, b.bottom, b.right, b.top)
            full = (ds.width, ds.height)
    if scale > 1.0:
        ctx.notes.append(
            f"{html.escape(path.name)}: {full[0]:,} x {full[1]:,} pixels shown at "
            f"{w:,} x {h:,} (budget {ctx.pixels:,} pixels per layer)."
        )
    valid = masks > 0
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= data[0] != nodata
    return data, valid, box, cmap


def ensure_frame(path: Path, ctx: MapContext) -> Frame:
    """The map's frame; the first raster placed on the map sets it (its CRS and bounds).

    Raises:
        InputError: ``path`` has no CRS.
    """
    from landforge.io.raster import open_raster

    with open_raster(path) as src:
        return _frame_of(src, path, ctx)


def _frame_of(src: Any, path: Path, ctx: MapContext) -> Frame:
    """The frame, set from the open raster ``src`` when it is the first one."""
    if src.crs is None:
        raise InputError(path, "has no CRS; the map cannot place it")
    if ctx.frame is None:
        b = src.bounds
        ctx.frame = Frame(src.crs, b.left, b.bottom, b.right, b.top)
    return ctx.frame


def _class_colours(values: np.ndarray, cmap: Mapping[int, Sequence[int]] | None) -> dict[int, str]:
    """A colour per class value: the raster's colour table, else a palette."""
    out: dict[int, str] = {}
    for i, v in enumerate(int(x) for x in values):
        if cmap and v in cmap and tuple(cmap[v][:3]) != (0, 0, 0):
            out[v] = _hex(cmap[v])
        else:
            out[v] = _PALETTE[i % len(_PALETTE)]
    return out


def class_overlay(path: Path, ctx: MapContext, name: str, show: bool = True) -> RasterOverlay:
    """A single-band class raster as a coloured overlay with a legend (shared colours)."""
    data, valid, box, cmap = _read_small(path, ctx, [1], categorical=True)
    arr = data[0].astype(np.int64)
    names = ctx.class_names(path) or {}
    values = np.unique(arr[valid])
    colours = _class_colours(values, cmap)
    for v in values:  # one colour per class name across layers
        label = names.get(int(v), str(int(v)))
        colours[int(v)] = ctx.colours.setdefault(label, colours[int(v)])
    rgba = np.zeros((*arr.shape, 4), np.uint8)
    for v, colour in colours.items():
        if names.get(v, "").lower() in CLEAR_CLASSES:
            continue  # left transparent: the image shows through (ours)
        sel = (arr == v) & valid
        rgba[sel, :3] = _rgb(colour)
        rgba[sel, 3] = 255
    legend = [
        (names.get(v, str(v)), c)
        for v, c in sorted(colours.items())
        if names.get(v, "").lower() not in CLEAR_CLASSES
    ]
    return RasterOverlay(name, _png(rgba), box, legend, show)


def difference_overlay(pred: Path, truth: Path, ctx: MapContext) -> RasterOverlay:
    """Where the prediction equals the truth (green) or not (red); nodata transparent."""
    p, pv, box, _ = _read_small(pred, ctx, [1], categorical=True)
    t, tv, _, _ = _read_small(truth, ctx, [1], categorical=True)
    if p.shape != t.shape:  # another grid: resample the truth onto the prediction's
        from PIL import Image

        t = np.asarray(Image.fromarray(t[0].astype(np.int32)).resize(p.shape[:0:-1], 0))[None]
        tv = np.asarray(Image.fromarray(tv.astype(np.uint8)).resize(p.shape[:0:-1], 0)) > 0
    valid = pv & tv
    rgba = np.zeros((*p.shape[1:], 4), np.uint8)
    same = (p[0] == t[0]) & valid
    rgba[same] = (26, 152, 80, 200)
    rgba[valid & ~same] = (215, 48, 39, 220)
    legend = [("correct", "#1a9850"), ("wrong", "#d73027")]
    return RasterOverlay("prediction vs truth", _png(rgba), box, legend, show=False)


def image_overlay(path: Path, ctx: MapContext) -> RasterOverlay:
    """The first three bands, stretched 2-98 % per band, as a true-colour quicklook."""
    from landforge.io.raster import open_raster

    with open_raster(path) as src:
        bands = [1, 2, 3] if src.count >= 3 else [1]
    data, valid, box, _ = _read_small(path, ctx, bands, categorical=False)
    out = np.zeros((*data.shape[1:], 4), np.uint8)
    for i in range(3):
        band = data[min(i, len(bands) - 1)].astype(np.float64)
        vals = band[valid]
        lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
        out[..., i] = np.clip((band - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    out[..., 3] = np.where(valid, 255, 0)
    return RasterOverlay(f"image ({path.name})", _png(out), box)


# ---------------------------------------------------------------------- vectors
def _features(
    gdf: Any, ctx: MapContext, path: Path, props: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """GeoJSON features of ``gdf`` in the frame, simplified and capped; shown properties."""
    import shapely

    if gdf.crs is None:
        raise InputError(path, "has no CRS; the map cannot place it")
    assert ctx.frame is not None
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].to_crs(ctx.frame.crs)
    if len(gdf) > ctx.features:
        ctx.notes.append(
            f"{html.escape(path.name)}: {ctx.features:,} of {len(gdf):,} features shown."
        )
        gdf = gdf.iloc[: ctx.features]
    f = ctx.frame
    tol = math.sqrt((f.right - f.left) * (f.top - f.bottom) / max(ctx.pixels, 1))
    geoms = shapely.simplify(np.asarray(gdf.geometry.values), tol, preserve_topology=True)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy - [f.left, f.bottom], 2))
    shown = [c for c in props if c in gdf.columns]
    records = gdf[shown].to_dict("records") if shown else [{} for _ in range(len(gdf))]
    out = []
    for geom, rec in zip(geoms, records, strict=True):
        if geom is None or geom.is_empty:
            continue
        clean = {k: _short(v) for k, v in jsonable(rec).items()}
        out.append(
            {"type": "Feature", "geometry": shapely.geometry.mapping(geom), "properties": clean}
        )
    return out, shown


def _short(v: Any) -> Any:
    """Popup values: floats to 4 decimals (the report's size), the rest as jsonable gave."""
    return round(v, 4) if isinstance(v, float) else v


# ---------------------------------------------------------------------- providers
def _is_raster(p: str | None) -> bool:
    return bool(p) and Path(str(p)).suffix.lower() in (".tif", ".tiff")


def _resolve(ctx: MapContext, p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else ctx.root / path


def _manifest_inputs(ctx: MapContext, stage_type: str, key: str) -> list[Path]:
    """Paths ``key`` of the manifest's stages of ``stage_type`` (existing files only)."""
    out: list[Path] = []
    stages = (ctx.manifest or {}).get("stages", {})
    for st in stages.values() if isinstance(stages, Mapping) else []:
        if not isinstance(st, Mapping) or st.get("type") != stage_type:
            continue
        cfg = st.get("config") or st.get("with") or {}
        value = cfg.get(key) if isinstance(cfg, Mapping) else None
        if isinstance(value, str) and _resolve(ctx, value).is_file():
            out.append(_resolve(ctx, value))
    return out


@layer_provider
def _pixel_layers(ctx: MapContext) -> list[Overlay]:
    """Image quicklook, prediction, truth and their difference from pixel metrics."""
    out: list[Overlay] = []
    pairs = []
    for _path, m in ctx.metrics:
        pred, truth = m.get("prediction"), m.get("truth")
        if _is_raster(pred) and _is_raster(truth):
            pair = (_resolve(ctx, str(pred)), _resolve(ctx, str(truth)))
            if pair not in pairs and all(p.is_file() for p in pair):
                pairs.append(pair)
    images = _manifest_inputs(ctx, "predict", "image")
    if pairs:  # the frame follows the prediction; the image is drawn first
        ensure_frame(pairs[0][0], ctx)
    for img in images[:1]:
        out.append(image_overlay(img, ctx))
    for pred, truth in pairs[:2]:
        out.append(class_overlay(pred, ctx, f"prediction ({pred.name})"))
        out.append(class_overlay(truth, ctx, f"truth ({truth.name})", show=False))
        out.append(difference_overlay(pred, truth, ctx))
    return out


_POPUP_HINTS = ("prob_", "frac_", "p_", "level", "confidence", "score", "area", "n_poi", "poi_")


@layer_provider
def _parcel_layers(ctx: MapContext) -> list[Overlay]:
    """Parcels of table metrics: fill by predicted class, red edge where wrong."""
    from landforge.io.vector import read_vector

    out: list[Overlay] = []
    for _path, m in ctx.metrics:
        pred, truth = m.get("prediction"), m.get("truth")
        if not pred or _is_raster(pred) or ctx.frame is None:
            continue
        ppath = _resolve(ctx, str(pred))
        if not ppath.is_file():
            continue
        gdf = read_vector(ppath)
        pcol, tcol, key = m.get("pred_col"), m.get("truth_col"), m.get("key") or "parcel_id"
        if pcol not in gdf.columns:
            continue
        gdf = gdf.rename(columns={pcol: "predicted"})
        tpath = _resolve(ctx, str(truth)) if truth else None
        if tpath is not None and tpath.is_file() and tpath.resolve() != ppath.resolve():
            tdf = read_vector(tpath)
            if key in gdf.columns and key in tdf.columns and tcol in tdf.columns:
                gdf = gdf.merge(
                    tdf[[key, tcol]].rename(columns={tcol: "truth"}), on=key, how="left"
                )
        elif tcol in gdf.columns and tcol != pcol:
            gdf = gdf.rename(columns={tcol: "truth"})
        if "truth" in gdf.columns:
            gdf["correct"] = (gdf["predicted"].astype(str) == gdf["truth"].astype(str)) & gdf[
                "truth"
            ].notna()
        gdf["_fill"] = [
            ctx.colours.setdefault(str(c), _PALETTE[len(ctx.colours) % len(_PALETTE)])
            if c is not None and str(c) != "nan"
            else "#999999"
            for c in gdf["predicted"]
        ]
        extra = [c for c in gdf.columns if str(c).startswith(_POPUP_HINTS)]
        props = [key, "predicted", "truth", "correct", *extra[:12], "_fill"]
        feats, shown = _features(gdf, ctx, ppath, props)
        popup = [c for c in shown if c != "_fill"]
        out.append(VectorOverlay(f"parcels ({ppath.name})", feats, "#222222", "_fill", 0.45, popup))
    return out


@layer_provider
def _split_block_layers(ctx: MapContext) -> list[Overlay]:
    """The train / val / test blocks an evaluation was restricted to."""
    from landforge.io.vector import read_vector

    seen: set[Path] = set()
    out: list[Overlay] = []
    for _path, m in ctx.metrics:
        blocks = (m.get("evaluated_on") or {}).get("split_blocks")
        if not blocks or ctx.frame is None:
            continue
        path = _resolve(ctx, blocks)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        gdf = read_vector(path)
        if "split" not in gdf.columns:
            continue
        gdf["_fill"] = [_SPLIT_COLOURS.get(str(s), "#777777") for s in gdf["split"]]
        feats, _ = _features(gdf, ctx, path, ["split", "_fill"])
        out.append(VectorOverlay("split blocks", feats, "#000000", "_fill", 0.08, ["split"], False))
    return out


# ---------------------------------------------------------------------- HTML
def _asset(name: str) -> str:
    return resources.files("landforge.evaluation").joinpath("assets", name).read_text("utf-8")


_JS = """
(function(){
const data = JSON.parse(document.getElementById('lf-map-data').textContent);
const map = L.map('lf-map', {crs: L.CRS.Simple, minZoom: data.minZoom, maxZoom: data.maxZoom,
  zoomSnap: 0.25, attributionControl: false});
const ll = c => L.latLng(c[1], c[0]);
const overlays = {}; const layers = {};
function esc(s){const d=document.createElement('div');d.textContent=String(s);return d.innerHTML;}
for (const o of data.layers) {
  let layer;
  if (o.kind === 'raster') {
    layer = L.imageOverlay(o.src, o.bounds, {opacity: o.opacity, interactive: false});
  } else {
    layer = L.geoJSON(o.geojson, {coordsToLatLng: ll,
      style: f => ({color: (o.outline && f.properties.correct === false) ? '#d73027' : o.colour,
        weight: (f.properties.correct === false) ? 2.5 : 1,
        fillColor: o.fill_by ? f.properties[o.fill_by] : o.colour,
        fillOpacity: o.fill_opacity}),
      onEachFeature: (f, l) => { if (o.popup.length) {
        l.bindPopup('<table class="lf-pop">' + o.popup.filter(k => k in f.properties).map(
          k => '<tr><th>' + esc(k) + '</th><td>' + esc(f.properties[k]) + '</td></tr>').join('')
          + '</table>'); } }});
  }
  overlays[esc(o.name)] = layer; layers[o.name] = layer;
  if (o.show) layer.addTo(map);
}
L.control.layers(null, overlays, {collapsed: false}).addTo(map);
L.control.scale({metric: true, imperial: false}).addTo(map);
const legend = L.control({position: 'bottomright'});
legend.onAdd = function(){ const d = L.DomUtil.create('div', 'lf-legend');
  d.innerHTML = data.legend.map(e => '<i style="background:' + e[1] + '"></i>' + esc(e[0])).join('<br>');
  return d; };
if (data.legend.length) legend.addTo(map);
map.fitBounds(data.bounds);
window.landforgeMap = map; window.landforgeLayers = layers;
})();
"""

_MAP_CSS = """
#lf-map{height:560px;border:1px solid #dde1e6;background:#fbfbfb}
.lf-legend{background:#fff;padding:6px 8px;font-size:12px;line-height:18px;border-radius:4px;
box-shadow:0 0 4px rgba(0,0,0,.2)}
.lf-legend i{width:14px;height:14px;float:left;margin:2px 6px 0 0;opacity:.9}
table.lf-pop{font-size:12px;border-collapse:collapse}
table.lf-pop th,table.lf-pop td{border:1px solid #ddd;padding:2px 6px;text-align:left}
"""


def _layer_json(o: Overlay, frame: Frame) -> dict[str, Any]:
    if isinstance(o, RasterOverlay):
        src = "data:image/png;base64," + base64.b64encode(o.png).decode("ascii")
        return {
            "kind": "raster",
            "name": o.name,
            "src": src,
            "bounds": frame.bounds(*o.box),
            "opacity": 1.0 if not o.legend else 0.75,  # images opaque, class maps not
            "show": o.show,
        }
    return {
        "kind": "vector",
        "name": o.name,
        "geojson": {"type": "FeatureCollection", "features": o.features},
        "colour": o.colour,
        "fill_by": o.fill_by,
        "fill_opacity": o.fill_opacity,
        "popup": o.popup,
        "outline": "correct" in o.popup,
        "show": o.show,
    }


def map_section(ctx: MapContext) -> str:
    """The map section's HTML (script and data inline), or a note when nothing maps.

    Raises:
        InputError: a layer's file without a CRS (naming it).
    """
    layers: list[Overlay] = []
    for provider in _PROVIDERS:
        layers += provider(ctx)
    if not layers or ctx.frame is None:
        return (
            '<section><h2>Map</h2><p class="muted">No georeferenced prediction or truth '
            "raster in this run, so there is no map.</p></section>"
        )
    f = ctx.frame
    extent = max(f.right - f.left, f.top - f.bottom, 1e-6)
    min_zoom = math.floor(math.log2(800 / extent)) - 2
    legend: dict[str, str] = {}
    for o in layers:
        if isinstance(o, RasterOverlay):
            legend.update({label: colour for label, colour in o.legend if label not in legend})
    payload = {
        "layers": [_layer_json(o, f) for o in layers],
        "bounds": f.bounds(f.left, f.bottom, f.right, f.top),
        "minZoom": min_zoom,
        "maxZoom": min_zoom + 12,
        "legend": sorted(legend.items(), key=lambda kv: kv[0]),
    }
    data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    notes = "".join(f'<p class="muted">{n}</p>' for n in dict.fromkeys(ctx.notes))
    crs = html.escape(str(f.crs.to_string() if hasattr(f.crs, "to_string") else f.crs))
    return (
        f"<style>{_asset('leaflet.css')}{_MAP_CSS}</style>"
        '<section><h2>Map</h2><p class="muted">Pan, zoom, toggle layers (top right) and '
        f"click a parcel. Coordinates: {crs}, metres from the lower-left corner; no basemap "
        "(the report works offline).</p>"
        f'<div id="lf-map"></div>{notes}'
        f'<script id="lf-map-data" type="application/json">{data}</script>'
        f"<script>{_asset('leaflet.js')}</script><script>{_JS}</script></section>"
    )
