"""Issue 9, item 2: the map follows the uploads (handlers driven directly, no server).

A pair in North Dakota with a region drawn over it, then a Florida tile: the region that
no longer overlaps is let go (so "how many trees?" is answered), the map fits the new
tile, names it after its file, drops the pair's layers, and "New session" empties it.
"""

import json
from pathlib import Path

import gradio as gr
import pytest

from conftest import ASSETS, ROOT
from rschat.agent import Workspace
from rschat.config import Settings
from rschat.geo.io import read_raster
from rschat.geo.region import footprint_wgs84
from rschat.tools import REGISTRY
from rschat.tools.base import result_color
from rschat.ui import map_state
from rschat.ui.app import Handlers, layout
from rschat.ui.session import SessionStore

FLORIDA = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"


class Req:
    session_hash = "tab-1"


@pytest.fixture
def on(tmp_path: Path) -> Handlers:
    settings = Settings(work_dir=tmp_path / "work")
    with gr.Blocks():
        ui = layout(settings)
    return Handlers(ui, SessionStore(settings))


def ask(on: Handlers, text: str, files: list[Path] | None = None, history: list | None = None) -> dict:
    """Run one chat turn through the handler; returns each component's last value."""
    merged: dict = {}
    for out in on.respond({"text": text, "files": [str(f) for f in files or []]}, history or [], Req()):
        merged.update(out)
    return merged


def answer_of(history: list[dict]) -> str:
    return str(history[-1]["content"])


def region_over(path: Path) -> dict:
    """A GeoJSON FeatureCollection covering a raster's footprint (what the map sends)."""
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": footprint_wgs84(read_raster(path))}],
    }


def test_a_new_upload_elsewhere_moves_the_map_and_lets_the_old_region_go(on: Handlers):
    ui = on.ui
    on.load_example(Req())
    session = on.store.get(Req())
    session.ws.set_region(region_over(ASSETS / "naip_2009-08-18.tif"))
    out = ask(on, "what changed inside the region?")
    assert "changes (r1)" in [layer["name"] for layer in json.loads(out[ui.map_view])["layers"]]

    out = ask(on, "how many trees?", [FLORIDA], out[ui.chatbot])
    history = out[ui.chatbot]
    assert "does not overlap" not in answer_of(history)
    assert any((m.get("metadata") or {}).get("title") == "Region cleared" for m in history)
    assert session.ws.region is None and "map region cleared" in out[ui.slot_status]
    state = json.loads(out[ui.map_view])
    assert [o["name"] for o in state["overlays"]] == ["OSBS_029.tif"]  # named after the file, alone
    (south, west), (north, east) = state["fit"]
    assert 29 < south < north < 30.5 and -82.5 < west < east < -81.5  # fitted to the Florida tile
    names = [layer["name"] for layer in state["layers"]]
    assert "changes (r1)" not in names and not any(n.startswith("drawn region") for n in names)
    # The user's message shows a PNG preview of the TIFF, captioned with its name.
    previews = [m for m in history if m["role"] == "user" and isinstance(m["content"], dict)]
    assert previews and previews[-1]["content"]["path"].endswith(".png")
    assert previews[-1]["content"]["alt_text"] == "OSBS_029.tif"

    cleared = on.new_session(Req())
    empty = json.loads(cleared[ui.map_view])
    assert empty["overlays"] == [] and empty["layers"] == [] and empty["fit"] is None


def test_a_region_off_the_images_is_flagged_and_one_click_clears_it(on: Handlers):
    ui = on.ui
    on.load_example_trees(Req())
    session = on.store.get(Req())
    session.ws.set_region(region_over(ASSETS / "naip_2009-08-18.tif"))  # North Dakota, off the Florida tile
    state = map_state.build(session.ws, files=session.files)
    assert [layer["name"] for layer in state["layers"]][-1] == "drawn region (outside the images)"
    assert "does not overlap" in state["note"]
    out = on.clear_region(Req())
    assert session.ws.region is None and out[ui.slot_status] == "map region cleared"
    assert not any(layer["name"].startswith("drawn region") for layer in json.loads(out[ui.map_view])["layers"])


def test_examples_load_with_file_names_and_a_question(on: Handlers):
    ui = on.ui
    out = on.load_example_series(Req())
    state = json.loads(out[ui.map_view])
    assert [d["name"].split()[0] for d in state["dates"]] == [f"pucallpa_{y}.tif" for y in (1985, 2000, 2020)]
    # the map's compare menus show and send the dates (they read 'puca', 'puca', 'puca')
    assert [d["date"] for d in state["dates"]] == ["1985", "2000", "2020"]
    assert "over time" in out[ui.box].value["text"]
    out = on.load_example_trees(Req())
    state = json.loads(out[ui.map_view])
    assert state["dates"] == [] and [o["name"] for o in state["overlays"]] == ["OSBS_029.tif"]
    assert "trees" in out[ui.box].value["text"]


def test_stale_results_leave_the_map_and_each_result_has_its_own_colour(tmp_path: Path):
    from rschat.agent import turn

    ws = Workspace(Settings(work_dir=tmp_path))
    pair = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
    list(turn(ws, "what changed?", uploads=pair))
    ws.set_region(region_over(pair[0]))
    list(turn(ws, "what changed inside the region?"))  # a second change result (r2)
    assert [s.tool for s in ws.results] == ["detect_changes", "detect_changes"]
    layers = [layer for layer in map_state.build(ws)["layers"] if not layer.get("region")]
    colors = [layer["color"] for layer in layers]
    assert colors[0] == result_color(REGISTRY["detect_changes"].layer, "r1")  # type: ignore[arg-type]
    assert len(set(colors)) == len(colors)
    ws.load("after", pair[0])  # a new after image: every change result is stale now
    assert not any(ws.is_current(s) for s in ws.results)
    assert [layer["name"] for layer in map_state.build(ws)["layers"]] == ["image footprint", "drawn region"]


def test_a_class_lost_and_gained_is_red_and_blue_on_the_map(tmp_path: Path):
    """Forest lost and gained on the Pucallpa series was drawn in one green, on a green
    false-colour image, lost and gained alike (a new-user trial in the browser)."""
    from rschat.agent import turn

    ws = Workspace(Settings(work_dir=tmp_path))
    pair = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
    list(turn(ws, "what changed?", uploads=pair))
    list(turn(ws, "how much vegetation was lost?"))
    (layer,) = [x for x in map_state.build(ws)["layers"] if x["name"].endswith("(r2)")]
    kinds = {f["properties"]["kind"] for f in layer["geojson"]["features"]}
    assert layer["classColors"] == {k: "#ff0000" if k.endswith(" lost") else "#2878ff" for k in kinds}
    assert any(k.endswith(" lost") for k in kinds)
