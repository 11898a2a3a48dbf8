"""Exports of a session's results for GIS software and for the record.

- ``vectors.geojson``: every result's polygons and points in one FeatureCollection (EPSG:4326,
  as RFC 7946 requires), each feature tagged with its result id and tool;
- ``vectors.gpkg``: the same, one layer per result, in the CRS of the image it came from
  (so a UTM scene stays in UTM);
- masks stay the Cloud-Optimised GeoTIFFs the tools wrote (native CRS and grid);
- ``map.html``: a standalone web map (the vendored Leaflet inlined, the images as data: URLs,
  each result's layer in its own colour, a legend and a layer switch) that opens without the
  app and without the internet (only the basemap tiles need it);
- ``transcript.md`` / ``transcript.json``: the conversation with every result's numbers and
  the files it produced, copied next to it (``r1_change_mask.tif``, ...) and linked
  relatively; numbers are rounded for reading in the Markdown, kept whole in the JSON.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shapely.geometry import mapping

from rschat.agent.workspace import Workspace
from rschat.geo.region import region_geometry
from rschat.geo.warp import mercator_png
from rschat.resources import vendor_dir
from rschat.tools import REGISTRY
from rschat.tools.base import result_color

REGION_COLOR = "#ff00ff"


def _georeferenced_layers(ws: Workspace) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(result id, tool, FeatureCollection in EPSG:4326, CRS of its image then) per result
    with vectors; a result whose features repeat an earlier one's (the same count asked
    again with other words) adds no second layer."""
    out, seen = [], set()
    for stored in ws.results:
        if stored.tool not in REGISTRY or REGISTRY[stored.tool].layer is None:
            continue  # a result that yields no export layer
        geo = _vector_artifact(stored.result.artifacts)
        if geo is None or not geo.path.exists():
            continue
        collection = json.loads(geo.path.read_text())
        if "coordinates" in collection or not collection.get("features"):
            continue  # pixel coordinates, or nothing found
        key = json.dumps(collection["features"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        out.append((stored.id, stored.tool, collection, stored.crs))
    return out


def _vector_artifact(artifacts: list[Any]) -> Any:
    """The GeoJSON a result exports: building footprints as polygons (with their area)
    where the count outlined them, else its first GeoJSON (points of trees, regions)."""
    geo = [a for a in artifacts if a.kind == "geojson"]
    return next((a for a in geo if "polygons: footprints" in a.label), geo[0] if geo else None)


def write_vectors(ws: Workspace, folder: Path) -> list[Path]:
    import geopandas as gpd

    layers = _georeferenced_layers(ws)
    if not layers and ws.region is None:
        return []
    features = []
    for rid, tool, collection, _ in layers:
        for f in collection["features"]:
            props = {k: v for k, v in (f.get("properties") or {}).items() if not isinstance(v, list | dict)}
            features.append({**f, "properties": {**props, "result": rid, "tool": tool}})
    if ws.region is not None:
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(region_geometry(ws.region)),
                "properties": {"result": "region", "tool": "drawn region"},
            }
        )
    geojson = folder / "vectors.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    gpkg = folder / "vectors.gpkg"
    gpkg.unlink(missing_ok=True)
    for rid, tool, collection, crs in layers:
        frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
        frame = frame[
            [
                c
                for c in frame.columns
                if c == "geometry" or frame[c].map(lambda v: not isinstance(v, list | dict)).all()
            ]
        ]
        if crs is not None:
            frame = frame.to_crs(crs.to_wkt())
        frame.to_file(gpkg, layer=f"{rid}_{tool}", driver="GPKG")
    if ws.region is not None:
        frame = gpd.GeoDataFrame.from_features([features[-1]], crs="EPSG:4326")
        frame.to_file(gpkg, layer="drawn_region", driver="GPKG")
    return [geojson, gpkg]


_MAP_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rschat map</title>
<style>
{leaflet_css}
</style>
<style>
html, body, #map {{ height: 100%; width: 100%; margin: 0; padding: 0; }}
.rschat-legend {{ background: rgba(255, 255, 255, 0.92); padding: 6px 10px; border-radius: 4px;
  font: 12px/1.5 sans-serif; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3); }}
.rschat-legend b {{ display: block; margin-bottom: 2px; }}
.rschat-legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: middle; border: 1px solid #333; }}
</style>
</head>
<body>
<div id="map"></div>
<div id="legend" class="rschat-legend" style="display: none">{legend}</div>
<script type="application/json" id="rschat-data">{data}</script>
<script>
{leaflet_js}
</script>
<script>
{map_js}
</script>
</body>
</html>
"""

# Drawn from the JSON above: basemap (needs the internet; the rest does not), the images as
# data: URLs, one GeoJSON layer per result in its own colour, the legend and a layer switch.
_MAP_JS = """
(function () {
  var data = JSON.parse(document.getElementById("rschat-data").textContent);
  var map = L.map("map");
  var base = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19, attribution: "&copy; OpenStreetMap contributors (needs the internet)"
  }).addTo(map);
  var overlays = {};
  data.images.forEach(function (im) {
    overlays["image: " + im.name] = L.imageOverlay(im.url, im.bounds, {opacity: 0.9}).addTo(map);
  });
  function popup(props) {
    var div = document.createElement("div");
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v !== null && typeof v === "object") { return; }
      var row = document.createElement("div");
      row.textContent = k + ": " + v;
      div.appendChild(row);
    });
    return div;
  }
  data.layers.forEach(function (ly) {
    function colorOf(f) {
      var c = ly.classColors && f.properties && ly.classColors[f.properties["class"]];
      return c || ly.color;
    }
    overlays[ly.name] = L.geoJSON(ly.geojson, {
      style: function (f) { return {color: colorOf(f), weight: 2, fillOpacity: ly.fillOpacity}; },
      pointToLayer: function (f, latlng) {
        var c = colorOf(f);
        return L.circleMarker(latlng, {radius: 4, color: c, fillColor: c, fillOpacity: 0.8, weight: 1});
      },
      onEachFeature: function (f, layer) { layer.bindPopup(popup(f.properties)); }
    }).addTo(map);
  });
  L.control.layers({"OpenStreetMap": base}, overlays, {collapsed: false}).addTo(map);
  L.control.scale().addTo(map);
  var legend = document.getElementById("legend");
  if (legend.children.length > 1) {
    var control = L.control({position: "bottomright"});
    control.onAdd = function () { legend.style.display = "block"; return legend; };
    control.addTo(map);
  }
  if (data.fit) { map.fitBounds(data.fit); } else { map.setView([0, 0], 2); }
})();
"""


def _leaflet_css(leaflet: Path) -> str:
    """leaflet.css with its images (layer switch, marker) inlined as data: URLs."""

    def inline(match: re.Match[str]) -> str:
        image = leaflet / "images" / match.group(1)
        if not image.is_file():
            return match.group(0)
        return f"url(data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()})"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, (leaflet / "leaflet.css").read_text())


def _warped_image(raster: Any, folder: Path) -> dict[str, Any]:
    """The raster's picture warped to Web Mercator (as the app's map shows it, so it lands
    on its footprint; at most 1024 px a side) as a data: URL, with its lat/lon bounds."""
    scratch = folder / f".map_{raster.name}.png"
    try:
        _, bounds = mercator_png(raster, scratch)
        url = "data:image/png;base64," + base64.b64encode(scratch.read_bytes()).decode()
    finally:
        scratch.unlink(missing_ok=True)
    return {"url": url, "bounds": bounds}


def map_data(ws: Workspace, folder: Path) -> dict[str, Any]:
    """What ``map.html`` draws: images (data: URLs and lon/lat bounds), result layers with
    their colours, the legend and the extent."""
    images: list[dict[str, Any]] = []
    fit: list[list[float]] | None = None
    for name, raster in [(n, r) for n, r in ws.rasters.items() if r.georeferenced][:4]:
        image = {"name": name, **_warped_image(raster, folder)}
        images.append(image)
        (south, west), (north, east) = image["bounds"]
        fit = (
            [[south, west], [north, east]]
            if fit is None
            else [
                [min(fit[0][0], south), min(fit[0][1], west)],
                [max(fit[1][0], north), max(fit[1][1], east)],
            ]
        )
    layers: list[dict[str, Any]] = []
    legend: dict[str, str] = {}
    for rid, tool, collection, _ in _georeferenced_layers(ws):
        layer = REGISTRY[tool].layer
        if layer is None:
            continue
        name, color = f"{layer.name} ({rid})", result_color(layer, rid)
        layers.append(
            {
                "name": name,
                "result": rid,
                "tool": tool,
                "color": color,
                "classColors": dict(layer.class_colors) if layer.class_colors else None,
                "points": layer.points,
                "fillOpacity": 0.3,
                "geojson": collection,
            }
        )
        legend[name] = color
    if ws.region is not None:
        layers.append(
            {
                "name": "drawn region",
                "result": "region",
                "tool": "drawn region",
                "color": REGION_COLOR,
                "classColors": None,
                "points": False,
                "fillOpacity": 0.05,
                "geojson": ws.region,
            }  # fmt: skip
        )
        legend["drawn region"] = REGION_COLOR
    return {"images": images, "layers": layers, "legend": legend, "fit": fit}


def write_map(ws: Workspace, folder: Path) -> Path | None:
    """A standalone HTML map of the session (None without georeferenced images): Leaflet,
    its CSS, the images and the layers are all inside the file, so it opens offline (only
    the basemap tiles need the internet)."""
    data = map_data(ws, folder)
    if not data["images"]:
        return None
    leaflet = vendor_dir() / "leaflet-1.9.4"
    legend = "<b>rschat results</b>" + "".join(
        f'<div><i style="background: {html.escape(color)}"></i>{html.escape(name)}</div>'
        for name, color in data["legend"].items()
    )
    page = _MAP_PAGE.format(
        leaflet_css=_leaflet_css(leaflet),
        legend=legend,
        data=json.dumps(data, default=str).replace("</", "<\\/"),  # no "</script>" inside the JSON
        leaflet_js=(leaflet / "leaflet.js").read_text(),
        map_js=_MAP_JS,
    )
    path = folder / "map.html"
    path.write_text(page, encoding="utf-8")
    return path


def display_number(value: Any) -> str:
    """A number as a person reads it: 381.2499999999999 -> '381.2', 0.0123456 -> '0.01235',
    12.0 -> '12' (about 4 significant digits, at least one decimal for values of 100 and
    more); anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value) or value.is_integer():
        return str(int(value)) if math.isfinite(value) else str(value)
    magnitude = abs(value)
    if magnitude < 1e-3:
        return f"{value:.3g}"
    decimals = max(1, 3 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _copy_into(path: Path, folder: Path) -> Path:
    """A result's file copied into the export folder under its own name (``r1_change_mask.tif``:
    the tools name files by result id, so nothing collides); always fresh."""
    target = folder / path.name
    if path.resolve() != target.resolve():
        shutil.copy2(path, target)
    return target


def write_transcript(ws: Workspace, folder: Path) -> list[Path]:
    """``transcript.md`` (for reading: rounded numbers, links to the files beside it) and
    ``transcript.json`` (full precision). Every file a result produced is copied into
    ``folder``; returns the two transcripts and the copied files."""
    copied: dict[str, list[Path]] = {}
    for stored in ws.results:
        copied[stored.id] = [_copy_into(a.path, folder) for a in stored.result.artifacts if a.path.is_file()]
    results = [
        {
            "id": s.id,
            "tool": s.tool,
            "args": s.args,
            "summary": s.result.summary,
            "data": s.result.data,
            "method": s.result.method,
            "limits": s.result.limits,
            "files": [p.name for p in copied[s.id]],
        }
        for s in ws.results
    ]
    rasters = {
        n: {
            "file": r.name,
            "size": [r.width, r.height],
            "bands": list(r.band_names),
            "georeference": r.describe_georef(),
            "date": r.date.isoformat() if r.date else None,
        }
        for n, r in ws.rasters.items()
    }
    doc = {"images": rasters, "region": ws.region, "messages": ws.history, "results": results}
    js = folder / "transcript.json"
    js.write_text(json.dumps(doc, indent=2, default=str))
    lines = ["# rschat session", "", "## Images", ""]
    lines += [f"- **{n}**: {r.name} ({r.width}x{r.height}, {r.describe_georef()})" for n, r in ws.rasters.items()]
    lines += ["", "## Conversation", ""]
    for m in ws.history:
        lines += [f"**{m['role']}**: {m['content']}", ""]
    lines += ["## Results", ""]
    for stored in ws.results:
        res = stored.result
        lines += [f"### {stored.id}: {stored.tool}", "", res.summary, ""]
        lines += [f"- {k}: {display_number(v)}" for k, v in res.data.items()]
        lines += [f"- method: {res.method}"] + [f"- limits: {lim}" for lim in res.limits]
        lines += [f"- file: [{p.name}]({quote(p.name)})" for p in copied[stored.id]] + [""]
    md = folder / "transcript.md"
    md.write_text("\n".join(lines))
    return [md, js] + [p for paths in copied.values() for p in paths]


def export_session(ws: Workspace, folder: Path | None = None) -> list[Path]:
    """Write every export into ``folder`` (default: the session's folder/export): vectors,
    the map, the transcripts and every file the transcript links (masks, GeoJSON, plots)."""
    folder = folder or ws.out_dir / "export"
    folder.mkdir(parents=True, exist_ok=True)
    files = write_vectors(ws, folder)
    html_map = write_map(ws, folder)
    files += ([html_map] if html_map else []) + write_transcript(ws, folder)
    return list(dict.fromkeys(files))
