"""Every export format, read back and compared; CRS kept; the map state for the page."""

import json

import numpy as np
import pyogrio
import pytest
import rasterio

from conftest import ASSETS, ROOT, rschat
from rschat.agent import Workspace, exports, turn
from rschat.geo import read_raster
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
        assert ds.read(1).sum() == session.results[0].result.data["changed_pixels"]

    html = files["map.html"].read_text()
    assert "leaflet" in html.lower() and "rschat results" in html and "drawn region" in html

    doc = json.loads(files["transcript.json"].read_text())
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant"]
    assert doc["results"][0]["data"]["changed_area_m2"] == mask_area
    md = files["transcript.md"].read_text()
    assert f"changed_area_m2: {mask_area}" in md and "EPSG:26914" in md


def test_map_state_has_overlays_layers_and_region(session):
    state = map_state.build(session)
    assert [o["name"].split()[0] for o in state["overlays"]] == ["before", "after"]
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
    assert [d["name"][:7] for d in state["dates"]] == ["t1 1985", "t2 2000", "t3 2020"]
    plain = Workspace(settings)
    plain.add_raster("image", read_raster(ROOT / "tests" / "data" / "neon" / "SOAP_061.png"))
    assert "no georeference" in map_state.build(plain)["note"]


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
