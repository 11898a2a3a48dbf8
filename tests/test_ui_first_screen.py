"""Issue 9, item 4: the first screen explains itself (no server; the browser checks of the
same screen are in test_browser.py)."""

from pathlib import Path

import gradio as gr
import pytest

from conftest import ASSETS, ROOT
from rschat.agent import Workspace
from rschat.config import Settings
from rschat.geo.io import read_raster
from rschat.tools.segment import CLASS_COLORS
from rschat.ui import app, panels
from rschat.ui.render import step_message
from rschat.ui.session import UiSession


def test_upload_and_noted_steps_are_not_titled_plan(tmp_path: Path):
    from rschat.agent import turn

    tile = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"
    steps = turn(Workspace(Settings(work_dir=tmp_path)), "the pixel size is 2 m. how many trees?", uploads=[tile])
    titles = [step_message(s)["metadata"]["title"] for s in steps if s.kind == "plan"]
    assert titles == ["Upload", "Noted", "Plan"]


def test_the_input_has_a_label_and_the_chat_an_empty_state(tmp_path: Path):
    with gr.Blocks():
        ui = app.layout(Settings(work_dir=tmp_path))
    assert ui.box.label == "Message"
    assert "What you can ask" in ui.chatbot.placeholder and "How many trees" in ui.chatbot.placeholder
    assert [b.value for b in (ui.example_btn, ui.trees_btn, ui.series_btn)] == [
        "Load the example pair (NAIP 2009 / 2015)",
        "Load a tree tile (NEON, Florida)",
        "Load a time series (Landsat 1985-2020)",
    ]


def test_the_lite_banner_is_one_short_line_with_the_details_folded(tmp_path: Path):
    text = app.banner_text(Workspace(Settings(work_dir=tmp_path)))
    head, _, folded = text.partition("<details>")
    assert "Lite mode is on" in head and len(head) < 120
    assert "Backends:" in folded and "Backends" not in head


@pytest.mark.parametrize("path", [app.EXAMPLE_TREES, *app.EXAMPLE_SERIES])
def test_the_examples_are_assets_with_attribution(path: Path):
    assert path.parent == ASSETS and path.is_file() and path.stat().st_size < 1_000_000
    assert read_raster(path).georeferenced
    attribution = (ASSETS / "ATTRIBUTION.md").read_text()
    assert path.name in attribution
    assert "NEON/Battelle" in attribution and "public domain" in attribution
    assert (ASSETS / "LICENSE.deepforest").is_file() and (ASSETS / "LICENSE.opengeos").is_file()
    assert (
        '"rschat.assets.examples" = ["*.tif", "ATTRIBUTION.md", "LICENSE.*"]' in (ROOT / "pyproject.toml").read_text()
    )  # packaged flat, like the pair
    dated = [read_raster(p).date for p in app.EXAMPLE_SERIES]
    assert [d.year for d in dated if d] == [1985, 2000, 2020]


def test_the_overlay_legend_names_its_colours(tmp_path: Path):
    from rschat.agent import turn

    session = UiSession(Workspace(Settings(work_dir=tmp_path)))
    assert panels.overlay_legend(session) == ""
    pair = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
    list(turn(session.ws, "what changed?", uploads=pair))
    panels.refresh(session)
    assert "changed" in panels.overlay_legend(session) and "#ff0000" in panels.overlay_legend(session)
    list(turn(session.ws, "how much vegetation was lost?"))  # a class's loss and gain: two colours
    panels.refresh(session)
    legend = panels.overlay_legend(session)
    assert "vegetation lost" in legend and "vegetation gained" in legend and "#2878ff" in legend
    list(turn(session.ws, "what is the land cover?", uploads=[app.EXAMPLE_TREES]))
    panels.refresh(session)
    legend = panels.overlay_legend(session)
    assert session.ws.last_result().tool == "segment"  # type: ignore[union-attr]
    assert all(color in legend for color in CLASS_COLORS.values()) and "low vegetation" in legend
    list(turn(session.ws, "how many trees are there?"))  # the boxes' own colours: red, yellow for dead crowns
    panels.refresh(session)
    legend = panels.overlay_legend(session)
    assert "#ff2828" in legend and "#ffc800" in legend and "leafless or dead" in legend


def test_the_downloads_are_the_files_of_the_results_the_answer_used(tmp_path: Path):
    """A reused result's files, not the newest result's; both parts' files for a two-part
    answer (a new-user trial found the r5 GeoJSON offered beside an answer from r4)."""
    from rschat.agent import turn

    session = UiSession(Workspace(Settings(work_dir=tmp_path)))
    pair = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
    list(turn(session.ws, "what changed?", uploads=pair))  # r1
    list(turn(session.ws, "how much vegetation was lost?"))  # r2
    list(turn(session.ws, "what changed?"))  # r1 again, reused
    files = panels.refresh(session)["files"]
    assert files and all(Path(f).name.startswith("r1_") for f in files)
    list(turn(session.ws, "what is the mean NDVI of the after image? what share of the area changed?"))
    names = {Path(f).name.split("_")[0] for f in panels.refresh(session)["files"]}
    assert names == {"r1", "r3"}  # the NDVI's files and the change's


def test_a_result_on_the_pairs_other_image_is_shown_but_not_clicked(tmp_path: Path):
    """The water asked of a NAIP pair was computed on the 2015 image (512 x 511): the panel
    kept the plain 2009 image, hiding the result (a new-user trial in the browser)."""
    from rschat.agent import turn

    session = UiSession(Workspace(Settings(work_dir=tmp_path)))
    pair = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
    list(turn(session.ws, "what changed?", uploads=pair))
    list(turn(session.ws, "how much water is in the after image?"))
    panels.refresh(session)
    last = session.ws.last_result()
    assert last is not None and last.args.get("image") == "after"
    assert session.base_image == str(last.result.artifact("overlay").path) and not session.base_is_raster
