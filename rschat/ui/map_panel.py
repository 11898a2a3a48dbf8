"""The map panel: Leaflet + Leaflet.draw (vendored, served by the app) inside ``gr.HTML``.

Python sends the map its state (``ui.map_state.build``) as the component's JSON value;
the page redraws overlays and layers when it changes (``watch('value')``). Drawing a
rectangle or polygon sends ``trigger('draw', {geojson})`` back, where the session stores
it as the region that restricts the tools. Basemaps (OpenStreetMap, Esri World Imagery)
load when reachable; offline the overlays and layers still show. ``window.rschatMap``
is the map, for tests and for resizing when its tab opens.
"""

from __future__ import annotations

from pathlib import Path

from rschat.resources import vendor_dir

VENDOR = vendor_dir()
LEAFLET = VENDOR / "leaflet-1.9.4"
LEAFLET_DRAW = VENDOR / "leaflet-draw-1.0.4"


def head() -> str:
    def url(path: Path) -> str:
        return f"/gradio_api/file={path}"

    return (
        f'<link rel="stylesheet" href="{url(LEAFLET / "leaflet.css")}">'
        f'<link rel="stylesheet" href="{url(LEAFLET_DRAW / "leaflet.draw.css")}">'
        f'<script src="{url(LEAFLET / "leaflet.js")}"></script>'
        f'<script src="{url(LEAFLET_DRAW / "leaflet.draw.js")}"></script>'
    )


TEMPLATE = """
<div class="rsmap-wrap">
  <div class="rsmap"></div>
  <div class="rsmap-legend" aria-label="Map legend"></div>
  <div class="rsmap-dates" style="display: none">
    <label>date <input class="rsmap-slider" type="range" min="0" max="0" step="1" value="0"></label>
    <span class="rsmap-date-label"></span>
    <span class="rsmap-compare">compare <select class="rsmap-a"></select> with <select class="rsmap-b"></select>
    <button class="rsmap-compare-btn" type="button">what changed?</button></span>
  </div>
  <div class="rsmap-note"></div>
</div>
"""

CSS = """
.rsmap { height: clamp(360px, 68vh, 720px); width: 100%; border-radius: 6px; }
.rsmap-dates { padding: 6px 2px; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; font-size: 13px; }
.rsmap-note { font-size: 13px; opacity: 0.85; }
.rsmap-note:empty { display: none; }
.rsmap-legend { padding: 4px 2px; font-size: 13px; display: flex; flex-wrap: wrap; gap: 2px 14px; }
.rsmap-legend span { white-space: nowrap; }
.rsmap-legend i { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }
"""

JS_ON_LOAD = r"""
function state() { try { return JSON.parse(props.value || '{}'); } catch (e) { return {}; } }
function sendRegion(group) {
  const fc = group.toGeoJSON();
  trigger('draw', {geojson: fc.features.length ? JSON.stringify(fc) : ''});
}
function setup() {
  if (typeof L === 'undefined' || !L.Control || !L.Control.Draw) { setTimeout(setup, 100); return; }
  const map = L.map(element.querySelector('.rsmap'), {zoomControl: true, maxZoom: 22, zoomSnap: 0.25}).setView([20, 0], 2);
  const osm = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png',
    {maxZoom: 22, maxNativeZoom: 19, attribution: '&copy; OpenStreetMap contributors'});
  const esri = L.tileLayer('https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}',
    {maxZoom: 22, maxNativeZoom: 19, attribution: 'Esri World Imagery'});
  osm.addTo(map);
  const drawn = new L.FeatureGroup().addTo(map);
  map.addControl(new L.Control.Draw({
    draw: {polyline: false, circle: false, marker: false, circlemarker: false, rectangle: {}, polygon: {}},
    edit: {featureGroup: drawn},
  }));
  map.on('draw:created', (e) => { drawn.clearLayers(); drawn.addLayer(e.layer); sendRegion(drawn); });
  map.on('draw:edited', () => sendRegion(drawn));
  map.on('draw:deleted', () => sendRegion(drawn));
  const control = L.control.layers({'OpenStreetMap': osm, 'Esri World Imagery': esri}, {}, {collapsed: true}).addTo(map);
  const legend = element.querySelector('.rsmap-legend');
  element._rs = {map, drawn, control, legend, dynamic: [], dateLayer: null};
  window.rschatMap = map;
  window.rschatDrawn = drawn;
  window.rschatShown = () => {  // the Map tab opened: resize, then apply a fit that waited
    const rs = element._rs; if (!rs) return;
    rs.map.invalidateSize();
    if (rs.pendingFit) { rs.map.fitBounds(rs.pendingFit, {maxZoom: 21}); rs.pendingFit = null; }
  };
  render();
}
function render() {
  const rs = element._rs; if (!rs) return;
  if (!element.contains(rs.map.getContainer())) { rs.map.remove(); element._rs = null; setup(); return; }
  const s = state();
  rs.dynamic.forEach(l => { rs.map.removeLayer(l); rs.control.removeLayer(l); });
  rs.dynamic = [];
  // Names come from uploaded files: escaped wherever they become HTML (the legend, the layer switch).
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
  const add = (layer, name) => { layer.addTo(rs.map); rs.control.addOverlay(layer, esc(name)); rs.dynamic.push(layer); };
  const legendRows = [];
  const swatch = (c, dashed) => '<i style="background:' + c + (dashed ? ';opacity:0.35;outline:2px dashed ' + c : '') + '"></i>';
  (s.overlays || []).forEach(o => {
    add(L.imageOverlay(o.url, o.bounds, {opacity: 0.9}), o.name);
    legendRows.push('<i style="background:linear-gradient(135deg,#7a9a5a,#c9b48a)"></i>' + esc(o.name));
  });
  (s.dates || []).slice(-1).forEach(o => legendRows.push('<i style="background:linear-gradient(135deg,#3a6a9a,#8ab06a)"></i>images by date (slider below)'));
  (s.layers || []).forEach(l => {
    const styleOf = (f) => {
      const kind = f && f.properties && f.properties.kind;
      const c = (l.classColors && kind && l.classColors[kind]) || l.color;
      return {color: c, weight: 2, fillOpacity: l.region ? 0.05 : 0.35, dashArray: l.region ? '6 4' : null};
    };
    const layer = L.geoJSON(l.geojson, {
      style: styleOf,
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {radius: 5, color: l.color, fillOpacity: 0.8}),
      onEachFeature: (f, lyr) => { if (f.properties) lyr.bindPopup(Object.entries(f.properties)
        .filter(([k, v]) => typeof v !== 'object').map(([k, v]) => k + ': ' + v).join('<br>')); },
    });
    add(layer, l.name);
    legendRows.push(swatch(l.color, l.region) + esc(l.name));
    if (l.classColors) Object.entries(l.classColors).forEach(([k, c]) => legendRows.push('&nbsp;&nbsp;<i style="background:' + c + '"></i>' + k.replace('_', ' ')));
  });
  rs.legend.innerHTML = legendRows.map(r => '<span>' + r + '</span>').join('');
  rs.legend.style.display = legendRows.length ? '' : 'none';
  const dates = s.dates || [];
  const panel = element.querySelector('.rsmap-dates');
  panel.style.display = dates.length ? 'flex' : 'none';
  if (dates.length) {
    const slider = element.querySelector('.rsmap-slider');
    slider.max = dates.length - 1;
    const show = (i) => {
      if (rs.dateLayer) rs.map.removeLayer(rs.dateLayer);
      rs.dateLayer = L.imageOverlay(dates[i].url, dates[i].bounds, {opacity: 0.95}).addTo(rs.map);
      rs.dateLayer.bringToBack();
      element.querySelector('.rsmap-date-label').textContent = dates[i].name;
    };
    slider.oninput = () => show(Number(slider.value));
    slider.value = dates.length - 1; show(dates.length - 1);
    // Each date by its date (its name when it has none); built as nodes, not HTML, since
    // names come from the uploaded files.
    ['.rsmap-a', '.rsmap-b'].forEach((sel) => {
      const select = element.querySelector(sel);
      select.replaceChildren(...dates.map((d) => new Option(d.date || d.name, d.date || d.name)));
    });
    element.querySelector('.rsmap-b').selectedIndex = dates.length - 1;
    element.querySelector('.rsmap-compare-btn').onclick = () => {
      const a = element.querySelector('.rsmap-a').value, b = element.querySelector('.rsmap-b').value;
      if (a === b) { element.querySelector('.rsmap-note').textContent = 'Pick two different dates to compare.'; return; }
      trigger('compare', {a: a, b: b});
    };
  } else if (rs.dateLayer) { rs.map.removeLayer(rs.dateLayer); rs.dateLayer = null; }
  if (!s.layers || !s.layers.some(l => l.name.startsWith('drawn region'))) rs.drawn.clearLayers();
  element.querySelector('.rsmap-note').textContent = s.note || '';
  // A hidden map (its tab closed) has no size to fit to: the fit waits for the tab to open.
  if (s.fit && rs.map.getContainer().offsetWidth > 0) { rs.map.fitBounds(s.fit, {maxZoom: 21}); rs.pendingFit = null; }
  else if (s.fit) rs.pendingFit = s.fit;
}
watch('value', render);
setup();
"""
