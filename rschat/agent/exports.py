"""Exports of a session's results for GIS software and for the record.

- ``vectors.geojson``: every result's polygons and points in one FeatureCollection (EPSG:4326,
  as RFC 7946 requires), each feature tagged with its result id and tool;
- ``vectors.gpkg``: the same, one layer per result, in the CRS of the image it came from
  (so a UTM scene stays in UTM);
- masks stay the Cloud-Optimised GeoTIFFs the tools wrote (native CRS and grid);
- ``map.html``: a standalone web map (leafmap/folium: basemaps, the image, the result layers,
  a legend and a layer switch) that opens without the app;
- ``transcript.md`` / ``transcript.json``: the conversation with every result's numbers and
  the files it produced.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from shapely.geometry import mapping

from rschat.agent.workspace import Workspace
from rschat.geo.preview import rgb_preview
from rschat.geo.region import footprint_wgs84, region_geometry
from rschat.tools import REGISTRY

REGION_COLOR = "#ff00ff"


def _georeferenced_layers(ws: Workspace) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(result id, tool, FeatureCollection in EPSG:4326, source raster) per result with vectors."""
    out = []
    for stored in ws.results:
        geo = stored.result.artifact("geojson")
        if stored.tool not in REGISTRY or REGISTRY[stored.tool].layer is None:
            continue  # a result that yields no export layer
        if geo is None or not geo.path.exists():
            continue
        collection = json.loads(geo.path.read_text())
        if "coordinates" in collection or not collection.get("features"):
            continue  # pixel coordinates, or nothing found
        name = stored.args.get("image") or stored.args.get("before") or "image"
        out.append((stored.id, stored.tool, collection, ws.rasters.get(name)))
    return out


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
    for rid, tool, collection, raster in layers:
        frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
        frame = frame[
            [
                c
                for c in frame.columns
                if c == "geometry" or frame[c].map(lambda v: not isinstance(v, list | dict)).all()
            ]
        ]
        if raster is not None and raster.crs is not None:
            frame = frame.to_crs(raster.crs.to_wkt())
        frame.to_file(gpkg, layer=f"{rid}_{tool}", driver="GPKG")
    if ws.region is not None:
        frame = gpd.GeoDataFrame.from_features([features[-1]], crs="EPSG:4326")
        frame.to_file(gpkg, layer="drawn_region", driver="GPKG")
    return [geojson, gpkg]


def write_map(ws: Workspace, folder: Path) -> Path | None:
    """A standalone HTML map of the session (None without georeferenced images)."""
    rasters = [(n, r) for n, r in ws.rasters.items() if r.georeferenced]
    if not rasters:
        return None
    import folium
    from leafmap import foliumap

    m = foliumap.Map(center=[0, 0], zoom=2, draw_control=False, measure_control=False)
    bounds = None
    for name, raster in rasters[:4]:
        fp = region_geometry(footprint_wgs84(raster))
        west, south, east, north = fp.bounds
        buffer = io.BytesIO()
        Image.fromarray(rgb_preview(raster)).save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        folium.raster_layers.ImageOverlay(
            url, bounds=[[south, west], [north, east]], name=f"image: {name}", opacity=0.9
        ).add_to(m)
        bounds = (
            [[south, west], [north, east]]
            if bounds is None
            else [
                [min(bounds[0][0], south), min(bounds[0][1], west)],
                [max(bounds[1][0], north), max(bounds[1][1], east)],
            ]
        )
    legend = {}
    for rid, tool, collection, _ in _georeferenced_layers(ws):
        layer = REGISTRY[tool].layer
        if layer is None:
            continue
        folium.GeoJson(
            collection,
            name=f"{layer.name} ({rid})",
            style_function=lambda f, c=layer.color: {"color": c, "weight": 2, "fillOpacity": 0.3},
            marker=folium.CircleMarker(radius=4, color=layer.color, fill=True) if layer.points else None,
        ).add_to(m)
        legend[f"{layer.name} ({rid})"] = layer.color
    if ws.region is not None:
        folium.GeoJson(
            ws.region,
            name="drawn region",
            style_function=lambda f: {"color": REGION_COLOR, "weight": 2, "fillOpacity": 0.05},
        ).add_to(m)
        legend["drawn region"] = REGION_COLOR
    if legend:
        m.add_legend(title="rschat results", legend_dict=legend)
    folium.LayerControl().add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    path = folder / "map.html"
    path.write_text(m.to_html())
    return path


def write_transcript(ws: Workspace, folder: Path) -> list[Path]:
    results = [
        {
            "id": s.id,
            "tool": s.tool,
            "args": s.args,
            "summary": s.result.summary,
            "data": s.result.data,
            "method": s.result.method,
            "limits": s.result.limits,
            "files": [str(a.path) for a in s.result.artifacts],
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
        lines += [f"- {k}: {v}" for k, v in res.data.items()]
        lines += [f"- method: {res.method}"] + [f"- limits: {lim}" for lim in res.limits]
        lines += [f"- file: [{a.path.name}]({a.path.name})" for a in res.artifacts] + [""]
    md = folder / "transcript.md"
    md.write_text("\n".join(lines))
    return [md, js]


def export_session(ws: Workspace, folder: Path | None = None) -> list[Path]:
    """Write every export into ``folder`` (default: the session's folder/export)."""
    folder = folder or ws.out_dir / "export"
    folder.mkdir(parents=True, exist_ok=True)
    files = write_vectors(ws, folder)
    html = write_map(ws, folder)
    files += ([html] if html else []) + write_transcript(ws, folder)
    for stored in ws.results:  # the masks, next to the vectors
        tif = stored.result.artifact("geotiff")
        if tif is not None and tif.path.exists():
            target = folder / tif.path.name
            if not target.exists():
                target.write_bytes(tif.path.read_bytes())
            files.append(target)
    return files
