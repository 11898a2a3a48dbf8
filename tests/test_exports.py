"""Every export format, read back and compared; CRS kept; the map state for the page."""

import json
import re
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pyogrio
import pytest
import rasterio

from conftest import ASSETS, ROOT, rschat
from rschat.agent import Workspace, exports, turn
from rschat.geo import read_raster
from rschat.resources import vendor_dir
from rschat.tools import REGISTRY
from rschat.tools.base import result_color
from rschat.ui import map_state

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]


@pytest.fixture
def session(settings):
    ws = Workspace(settings)
    list(turn(ws, "what changed?", uploads=PAIR))
    list(turn(ws, "how much of it is water?"))
    ws.set_region(
        {
            "type": "Polygon",
            "coordinates": [[[-99.18, 47.02], [-99.17, 47.02], [-99.17, 47.03], [-99.18, 47.03], [-99.18, 47.02]]],
        }
    )
    yield ws
    ws.close()


def test_export_files_read_back_with_their_crs(session, tmp_path):
    files = {f.name: f for f in exports.export_session(session, tmp_path)}
    assert {"vectors.geojson", "vectors.gpkg", "map.html", "transcript.md", "transcript.json"} <= set(files)

    layers = dict(pyogrio.list_layers(files["vectors.gpkg"]))
    assert {"r1_detect_changes", "r2_segment", "drawn_region"} <= set(layers)
    info = pyogrio.read_info(files["vectors.gpkg"], layer="r1_detect_changes")
    assert info["crs"] == "EPSG:26914"  # the image's own CRS (UTM 14N), not lon/lat
    changes = pyogrio.read_dataframe(files["vectors.gpkg"], layer="r1_detect_changes")
    mask_area = session.results[0].result.data["changed_area_m2"]
    assert changes.geometry.area.sum() == pytest.approx(mask_area, rel=0.01)  # polygons = mask pixels

    merged = json.loads(files["vectors.geojson"].read_text())
    assert {f["properties"]["result"] for f in merged["features"]} >= {"r1", "r2", "region"}
    lon, lat = np.array(merged["features"][0]["geometry"]["coordinates"][0]).mean(axis=0)
    assert -100 < lon < -98 and 46 < lat < 48  # EPSG:4326

    cog = next(f for n, f in files.items() if n.endswith("_mask.tif"))
    with rasterio.open(cog) as ds:
        assert ds.crs.to_epsg() == 26914 and ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert (ds.read(1) == 1).sum() == session.results[0].result.data["changed_pixels"]

    html = files["map.html"].read_text()
    assert "leaflet" in html.lower() and "rschat results" in html and "drawn region" in html

    doc = json.loads(files["transcript.json"].read_text())
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant"]
    assert doc["results"][0]["data"]["changed_area_m2"] == mask_area
    md = files["transcript.md"].read_text()
    assert f"changed_area_m2: {exports.display_number(mask_area)}" in md and "EPSG:26914" in md


def test_tree_points_in_the_geopackage_keep_their_crown_size(settings, tmp_path):
    """A GIS table of tree crowns needs each crown's size: the GeoPackage keeps plain
    numbers only (the boxes' lists were dropped), so the diameter is one."""
    ws = Workspace(settings)
    try:
        list(turn(ws, "how many trees are there?", uploads=[ASSETS / "OSBS_029.tif"]))
        files = {f.name: f for f in exports.export_session(ws, tmp_path)}
    finally:
        ws.close()
    layer = next(n for n, _ in pyogrio.list_layers(files["vectors.gpkg"]) if n.endswith("count_objects"))
    trees = pyogrio.read_dataframe(files["vectors.gpkg"], layer=layer)
    assert len(trees) > 20 and trees.crs.to_epsg() == 32617
    assert 1.0 < trees["crown_diameter_m"].median() < 15.0 and (trees["score"] > 0).all()


def test_the_largest_area_asked_for_as_geojson_is_that_one_polygon(settings, tmp_path):
    """'Give me the largest water area as GeoJSON' answered with all 90 water areas was
    not what was asked: measure writes the one polygon, with the area it reports."""
    ws = Workspace(settings)
    try:
        list(turn(ws, "how much of it is water?", uploads=[PAIR[1]]))
        steps = list(turn(ws, "give me the largest water area as GeoJSON"))
        files = {f.name: f for f in exports.export_session(ws, tmp_path)}
        measured = ws.results[-1]
        one = json.loads(measured.result.artifact("geojson").path.read_text())["features"]
    finally:
        ws.close()
    assert measured.tool == "measure" and "measured shape (GeoJSON" in steps[-1].text
    assert len(one) == 1
    layer = next(n for n, _ in pyogrio.list_layers(files["vectors.gpkg"]) if n.endswith("_measure"))
    shape = pyogrio.read_dataframe(files["vectors.gpkg"], layer=layer)
    assert shape.crs.to_epsg() == 26914
    assert shape.geometry.area.sum() == pytest.approx(measured.result.data["area_m2"], rel=0.01)


class _Tags(HTMLParser):
    """Every tag with its attributes, and the text of the <script> elements by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = (dict(attrs).get("id") or "") if tag == "script" else None

    def handle_data(self, data):
        if self._open is not None:
            self.scripts[self._open] = self.scripts.get(self._open, "") + data

    def handle_endtag(self, tag):
        self._open = None


def test_map_html_opens_without_the_internet(session, tmp_path):
    """Issue 9.6: map.html loaded Leaflet, jQuery, Bootstrap, ... from CDNs and was blank offline."""
    path = exports.write_map(session, tmp_path)
    page = _Tags()
    page.feed(path.read_text())
    external = [
        (tag, attrs)
        for tag, attrs in page.tags
        if (tag == "script" and attrs.get("src")) or (tag == "link" and attrs.get("href"))
    ]
    assert external == []  # no <script src=...> / <link href=...> at all: everything is inline
    assert "Leaflet 1.9.4" in page.scripts[""]  # the vendored library, inlined
    assert (vendor_dir() / "leaflet-1.9.4" / "leaflet.js").read_text()[:2000] in path.read_text()
    assert "url(images/" not in path.read_text()  # the CSS's images are data: URLs too

    data = json.loads(page.scripts["rschat-data"])
    assert [im["name"] for im in data["images"]] == ["before", "after"]
    assert all(im["url"].startswith("data:image/png;base64,") for im in data["images"])
    (south, west), (north, east) = data["fit"]
    assert 46.9 < south < north < 47.1 and -99.3 < west < east < -99.0
    layers = {ly["result"]: ly for ly in data["layers"]}
    assert set(layers) == {"r1", "r2", "region"}
    assert layers["r1"]["geojson"]["features"] and layers["r2"]["geojson"]["features"]
    for rid in ("r1", "r2"):
        assert layers[rid]["color"] == result_color(REGISTRY[layers[rid]["tool"]].layer, rid)
    legend = re.search(r'<div id="legend"[^>]*>(.*?)</div>\s*<script', path.read_text(), re.S).group(1)
    assert "rschat results" in legend
    for ly in data["layers"]:
        assert ly["name"] in legend and ly["color"] in legend


def test_two_change_results_get_their_own_colours(settings):
    layer = REGISTRY["detect_changes"].layer
    assert result_color(layer, "r1") != result_color(layer, "r2")


def test_transcript_links_files_in_the_export_and_rounds_numbers(session, tmp_path):
    """Issue 9.6: transcript.md linked files that were not in the export and printed 381.2499999999999."""
    files = exports.export_session(session, tmp_path)
    md = (tmp_path / "transcript.md").read_text()
    links = [unquote(target) for target in re.findall(r"\]\(([^)]+)\)", md)]
    assert links and "r1_change_mask.tif" in links
    for target in links:
        assert "/" not in target and (tmp_path / target).is_file(), target  # relative, beside it
        assert tmp_path / target in files
    for stored in session.results:  # every file a result produced is in the export
        for art in stored.result.artifacts:
            assert (tmp_path / art.path.name).read_bytes() == art.path.read_bytes()
    noise = re.findall(r"\d\.\d{7,}|\.\d*(?:9{5,}|0{5,}[1-9])", md)  # 381.2499999999999, 0.30000000000000004
    assert not noise, noise
    doc = json.loads((tmp_path / "transcript.json").read_text())
    assert doc["results"][0]["data"] == session.results[0].result.data  # full precision kept
    assert "r1_change_mask.tif" in doc["results"][0]["files"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(381.2499999999999, "381.2"), (0.012345678, "0.01235"), (12.0, "12"), (7, "7"), (None, "None"),
     (1234567.891, "1234567.9"), (3.14159, "3.142"), (-42.42424, "-42.42"), (0.00012345, "0.000123")],
)  # fmt: skip
def test_display_number(value, shown):
    assert exports.display_number(value) == shown


def test_two_change_runs_export_two_masks_layers_and_numbers(settings, tmp_path):
    """Issue 9.1 from the export side: the whole pair, then a drawn region, in one session."""
    from test_region import lonlat_box

    ws = Workspace(settings)
    try:
        list(turn(ws, "what changed?", uploads=PAIR))
        ws.set_region(lonlat_box(ws.rasters["before"], 0, 0, 256, 300))
        list(turn(ws, "what changed inside the region I drew?"))
        changes = [s for s in ws.results if s.tool == "detect_changes"]
        assert [s.id for s in changes] == ["r1", "r2"]
        files = {f.name: f for f in exports.export_session(ws, tmp_path)}

        with rasterio.open(files["r1_change_mask.tif"]) as a, rasterio.open(files["r2_change_mask.tif"]) as b:
            m1, m2 = a.read(1), b.read(1)
            assert a.nodata == 255 and (m1 == 255).any()  # the 2015 image's missing row was not judged
        assert (m1 == 1).sum() == changes[0].result.data["changed_pixels"]
        assert (m2 == 1).sum() == changes[1].result.data["changed_pixels"]
        assert 0 < (m2 == 1).sum() < (m1 == 1).sum()  # the region's mask is a part of the whole pair's
        assert (m2 == 255).sum() > (m1 == 255).sum()  # outside the region: not analysed, not "unchanged"

        md = (tmp_path / "transcript.md").read_text()
        for stored in changes:
            layer = pyogrio.read_dataframe(files["vectors.gpkg"], layer=f"{stored.id}_detect_changes")
            area = stored.result.data["changed_area_m2"]
            assert layer.geometry.area.sum() == pytest.approx(area, rel=0.01), stored.id
            section = md.split(f"### {stored.id}: detect_changes")[1].split("###")[0]
            shown = float(re.search(r"- changed_area_m2: ([\d.]+)", section).group(1))
            assert shown == pytest.approx(layer.geometry.area.sum(), rel=0.01), stored.id
        r1 = pyogrio.read_dataframe(files["vectors.gpkg"], layer="r1_detect_changes")
        r2 = pyogrio.read_dataframe(files["vectors.gpkg"], layer="r2_detect_changes")
        assert len(r2) < len(r1) and r2.geometry.area.sum() < r1.geometry.area.sum()
    finally:
        ws.close()


def test_map_state_has_overlays_layers_and_region(session):
    state = map_state.build(session)
    # layers are named after the files (issue 9), not the session's slot names
    assert [o["name"].split()[0] for o in state["overlays"]] == ["naip_2009-08-18", "naip_2015-09-26"]
    (south, west), (north, east) = state["fit"]
    assert 46.9 < south < north < 47.1 and -99.3 < west < east < -99.0
    names = [layer["name"] for layer in state["layers"]]
    assert names[0] == "image footprint" and names[-1] == "drawn region"
    assert names[1].startswith("changes") and names[2].startswith("land cover")
    assert (session.out_dir / state["overlays"][0]["url"].split("/")[-1]).exists()


def test_map_state_for_a_dated_stack_and_for_plain_images(settings):
    ws = Workspace(settings)
    ws.load_uploads([ROOT / "tests" / "data" / "pucallpa" / f"{y}.tif" for y in (2000, 1985, 2020)])
    state = map_state.build(ws)
    assert [d["name"] for d in state["dates"]] == ["1985", "2000", "2020"]  # the years of the names, no invented day
    plain = Workspace(settings)
    plain.add_raster("image", read_raster(ROOT / "tests" / "data" / "neon" / "SOAP_061.png"))
    assert "no georeference" in map_state.build(plain)["note"]


def test_vectors_of_an_image_without_georeference_are_not_read_as_lon_lat(settings):
    """GeoJSON without a "crs" member is lon/lat to GDAL and QGIS: the trees of a plain PNG
    landed at latitude 247. Their files name a local pixel CRS, which GDAL reads as such."""
    ws = Workspace(settings)
    steps = list(turn(ws, "how many trees are there?", uploads=[ROOT / "tests" / "data" / "neon" / "SOAP_061.png"]))
    result = [s.result for s in steps if s.kind == "done"][-1]
    for artifact in (a for a in result.artifacts if a.kind == "geojson"):
        crs = pyogrio.read_info(artifact.path)["crs"]
        assert crs.startswith("LOCAL_CS") and "pixel" in crs, (artifact.path.name, crs)


def test_cli_export_flag(tmp_path):
    proc = rschat(
        "ask",
        "--before",
        str(PAIR[0]),
        "--after",
        str(PAIR[1]),
        "--out",
        str(tmp_path),
        "--export",
        "what changed?",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert {"vectors.gpkg", "map.html", "transcript.md"} <= {p.name for p in tmp_path.iterdir()}


# -- export requests in the chat (found by a new-user trial, session 2026-12-07) ------------

SPACENET = ROOT / "tests" / "data" / "spacenet" / "sample_geotiff.tif"


def test_building_footprints_are_polygons_that_open_in_a_gis(settings):
    import geopandas as gpd

    ws = Workspace(settings)
    steps = list(turn(ws, "Export the building footprints as GeoJSON.", uploads=[SPACENET]))  # counts them first
    done = next(s for s in steps if s.kind == "done")
    assert done.tool == "count_objects" and done.args["target"] == "building"
    outlines = next(a.path for a in done.result.artifacts if a.path.name.endswith("_outlines.geojson"))
    shapes = gpd.read_file(outlines)
    assert len(shapes) == done.result.data["count"] and set(shapes.geom_type) == {"Polygon"} and shapes.is_valid.all()
    # the footprints' own areas, not their boxes': within a pixel or so of the mask's
    areas = shapes.to_crs(32616).area
    assert (areas - shapes["area_m2"]).abs().max() < 10 and areas.sum() < 0.8 * shapes.to_crs(32616).envelope.area.sum()


def test_an_export_request_offers_the_named_results_files_and_says_what_it_does_not_write(settings):
    ws = Workspace(settings)
    list(turn(ws, "what changed?", uploads=PAIR))  # r1
    list(turn(ws, "what is the mean NDVI of the after image?"))  # r2
    steps = list(turn(ws, "Give me the change polygons as a shapefile."))
    done = next(s for s in steps if s.kind == "done")
    assert done.reused and done.result_id == "r1" and ws.answered_from == ["r1"]
    assert steps[-1].text.startswith("rschat does not write shapefile files") and "ogr2ogr" in steps[-1].text
    plain = list(turn(ws, "export"))[-1].text
    assert "Export" in plain and "GeoPackage" in plain  # the button that writes the whole session
    # "save ... as a GeoPackage" is an export (it ran land cover on a panchromatic tile and
    # failed), and the GeoPackage is the Export button's
    saved = list(turn(ws, "save the change polygons as a GeoPackage"))
    assert next(s for s in saved if s.kind == "done").result_id == "r1"
    assert saved[-1].text.startswith("The GeoPackage is written by the **Export the session** button")


def test_session_export_has_footprints_once_each_in_their_images_crs(settings, tmp_path):
    """Found by a new-user trial: building counts went into vectors.gpkg as points with no
    area, every re-count added the same layer again, and after an image of another CRS was
    uploaded the earlier layers were written in the new image's CRS."""
    ws = Workspace(settings)
    try:
        list(turn(ws, "how many buildings are there?", uploads=[SPACENET]))  # r1, EPSG:32616
        list(turn(ws, "how many buildings larger than 1 m2 are there?"))  # r2: the same buildings, no second layer
        list(turn(ws, "how many trees are there?", uploads=[ASSETS / "OSBS_029.tif"]))  # 'image' is now EPSG:32617
        files = {f.name: f for f in exports.export_session(ws, tmp_path)}
        layers = [name for name, _ in pyogrio.list_layers(files["vectors.gpkg"])]
        buildings = [n for n in layers if n.endswith("count_objects") and n.startswith("r1")]
        assert buildings == ["r1_count_objects"] and "r2_count_objects" not in layers
        frame = pyogrio.read_dataframe(files["vectors.gpkg"], layer="r1_count_objects")
        assert frame.crs.to_epsg() == 32616 and set(frame.geom_type) == {"Polygon"} and "area_m2" in frame
        trees = [n for n in layers if n != "r1_count_objects"]
        assert trees and pyogrio.read_dataframe(files["vectors.gpkg"], layer=trees[0]).crs.to_epsg() == 32617
    finally:
        ws.close()
