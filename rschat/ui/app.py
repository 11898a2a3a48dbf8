"""The Gradio app: chat with streamed tool steps, image panel with visual prompts,
before/after slider, pair upload and downloads.

Layout and event wiring only: per-session state lives in ``ui.session``, what the panels
show in ``ui.panels``, how steps become chat messages in ``ui.render``. The UI reaches the
tools only through ``rschat.agent.turn``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gradio as gr

from rschat.agent import Workspace, backends, exports, gpu_task, turn
from rschat.config import Settings, load_settings
from rschat.geo.errors import InputError
from rschat.ui import map_panel, map_state, panels
from rschat.ui.render import apply_step, artifact_messages
from rschat.ui.session import SessionStore

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLE_BEFORE = ASSETS / "examples" / "naip_2009-08-18.tif"
EXAMPLE_AFTER = ASSETS / "examples" / "naip_2015-09-26.tif"
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
CLICK_MODES = ["point +", "point -", "box (two clicks)"]

CSS = """
#lite-banner {border-left: 4px solid #d97706; padding: 6px 12px; background: rgba(217,119,6,0.08);}
"""


def banner_text(ws: Workspace) -> str:
    st = ws.settings
    rows = ", ".join(f"{k}: {v}" for k, v in backends(ws).items())
    configured = [
        name
        for name, value in (("VLM", st.vlm), ("SAM", st.sam), ("CLIP", st.clip), ("generator", st.generator))
        if value
    ]
    if configured:
        head = (
            f"**Full mode: {', '.join(configured)} configured** (models load on first use; any that fails "
            "to load leaves that capability in lite mode, and the chat says why). Numbers still come from "
            "the tools, never from the model."
        )
    else:
        head = (
            "**Lite mode is on.** Everything runs on the CPU with training-free algorithms and a rule "
            "planner; every number is computed from your pixels. Free-form visual questions and image "
            "generation need full mode (set `RSCHAT_VLM`, `RSCHAT_GENERATOR`; see the README)."
        )
    return f"{head}  \n<small>Backends: {rows}</small>"


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    store = SessionStore(settings)
    gr.set_static_paths(paths=[map_panel.VENDOR])  # Leaflet, served by the app itself (no CDN)

    with gr.Blocks(title="rschat: remote-sensing assistant") as demo:
        demo.store = store  # type: ignore[attr-defined]  # for tests and cleanup
        gr.Markdown("# rschat\nAsk about satellite and aerial images: changes, land cover, counts, areas, trends.")
        gr.Markdown(banner_text(Workspace(settings)), elem_id="lite-banner")
        with gr.Row():
            with gr.Column(scale=3):
                # No LaTeX: answers carry units and numbers, and a model's stray "$" must not stall the page.
                chatbot = gr.Chatbot(label="Chat", height=560, elem_id="chat", latex_delimiters=[])
                box = gr.MultimodalTextbox(
                    placeholder="Ask a question; attach one image, two (before, after) or a dated series",
                    file_count="multiple",
                    file_types=IMAGE_TYPES,
                    elem_id="ask",
                )
                with gr.Row():
                    example_btn = gr.Button("Load the example pair (NAIP 2009 / 2015)", size="sm")
                    clear_btn = gr.Button("New session", size="sm")
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab("Image"):
                        image = gr.Image(
                            label="Image (click to add points or boxes)",
                            type="filepath",
                            interactive=False,
                            elem_id="image-panel",
                        )
                        with gr.Row():
                            click_mode = gr.Radio(CLICK_MODES, value=CLICK_MODES[0], label="A click adds", scale=3)
                            clear_prompts_btn = gr.Button("Clear points and boxes", size="sm", scale=1)
                    with gr.Tab("Map") as map_tab:
                        map_view = gr.HTML(
                            value=json.dumps(map_state.build(Workspace(settings))),
                            html_template=map_panel.TEMPLATE,
                            css_template=map_panel.CSS,
                            js_on_load=map_panel.JS_ON_LOAD,
                            head=map_panel.head(),
                            elem_id="map",
                        )
                        gr.Markdown(
                            "Draw a rectangle or polygon (toolbar, top left) to restrict the next questions "
                            "to it; *Clear points and boxes* removes it."
                        )
                    with gr.Tab("Before / after"):
                        slider = gr.ImageSlider(label="Before | after", type="filepath")
                    with gr.Tab("Pair upload"):
                        before_file = gr.File(label="Before (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
                        after_file = gr.File(label="After (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
                slot_status = gr.Markdown(elem_id="slot-status")
                downloads = gr.File(label="Downloads (GeoTIFF, GeoJSON, CSV, PNG)", file_count="multiple")
                export_btn = gr.Button("Export the session (GeoPackage, GeoJSON, HTML map, transcript)", size="sm")

        def respond(message: dict, history: list[dict], request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            text = (message or {}).get("text", "").strip()
            files = [Path(f) for f in (message or {}).get("files", [])]
            shown = text + (("\n\n📎 " + ", ".join(f.name for f in files)) if files else "")
            history = [*history, {"role": "user", "content": shown or "(no text)"}]
            yield {chatbot: history, box: gr.MultimodalTextbox(value=None, interactive=False)}
            last_yield = 0.0
            for step in turn(session.ws, text, uploads=files or None):
                history = apply_step(history, step)
                if step.kind == "done" and not step.reused:
                    history += artifact_messages(step)
                # Streamed text arrives token by token; sending the whole history for each
                # would flood the browser, so deltas are sent at most ~12 times a second.
                if step.kind != "delta" or time.monotonic() - last_yield > 0.08:
                    last_yield = time.monotonic()
                    yield {chatbot: history}
            shown_panels = panels.refresh(session)
            yield {
                chatbot: history,
                box: gr.MultimodalTextbox(value=None, interactive=True),
                image: shown_panels["image"],
                slider: shown_panels["slider"],
                downloads: shown_panels["files"],
                map_view: json.dumps(map_state.build(session.ws)),
            }

        def load_slot(name: str):  # type: ignore[no-untyped-def]
            def handler(file: str | None, request: gr.Request):  # type: ignore[no-untyped-def]
                if not file:
                    return {slot_status: ""}
                session = store.get(request)
                try:
                    raster = session.ws.load(name, file)
                except InputError as err:
                    return {slot_status: f"**{name} not loaded:** {err}"}
                shown_panels = panels.refresh(session)
                return {
                    slot_status: f"{name} = {raster.name} ({raster.width}x{raster.height}, {raster.count} band(s), "
                    f"{raster.describe_georef()})",
                    image: shown_panels["image"],
                    slider: shown_panels["slider"],
                    map_view: json.dumps(map_state.build(session.ws)),
                }

            return handler

        def load_example(request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            session.ws.load("before", EXAMPLE_BEFORE)
            session.ws.load("after", EXAMPLE_AFTER)
            shown_panels = panels.refresh(session)
            return {
                slot_status: "Example loaded: NAIP 2009-08-18 (before) and 2015-09-26 (after), North Dakota, 5 m.",
                image: shown_panels["image"],
                slider: shown_panels["slider"],
                map_view: json.dumps(map_state.build(session.ws)),
                box: gr.MultimodalTextbox(value={"text": "What changed between these two images?", "files": []}),
            }

        def on_click(mode: str, evt: gr.SelectData, request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            if not session.base_is_raster:
                return {slot_status: "Clicks work on an image, not on a plot: upload an image first."}
            note = session.click(mode, float(evt.index[0]), float(evt.index[1]))
            return {image: panels.with_prompts(session), slot_status: note}

        def clear_prompts(request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            session.ws.clear_prompts()
            session.pending_corner = None
            return {
                image: panels.with_prompts(session),
                slot_status: "points, boxes and the map region cleared",
                map_view: json.dumps(map_state.build(session.ws)),
            }

        def on_draw(evt: gr.EventData, request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            raw = getattr(evt, "geojson", "") or ""
            try:
                session.ws.set_region(json.loads(raw) if raw else None)
            except (InputError, ValueError) as err:
                return {slot_status: f"**Region not used:** {err}"}
            if session.ws.region is None:
                return {slot_status: "map region removed"}
            return {slot_status: "map region set: the next questions are restricted to it"}

        def compare_dates(history: list[dict], evt: gr.EventData, request: gr.Request):  # type: ignore[no-untyped-def]
            question = {"text": f"what changed between {evt.a} and {evt.b}?", "files": []}
            yield from respond(question, history, request)

        def export(request: gr.Request):  # type: ignore[no-untyped-def]
            session = store.get(request)
            files = exports.export_session(session.ws)
            return {downloads: [str(f) for f in files], slot_status: f"exported {len(files)} files"}

        def new_session(request: gr.Request):  # type: ignore[no-untyped-def]
            store.drop(request)
            return {chatbot: [], image: None, slider: None, downloads: None, slot_status: ""}

        # On a ZeroGPU Space the turn (which may run models) holds a GPU; elsewhere unchanged.
        turn_outputs = [chatbot, box, image, slider, downloads, map_view]
        box.submit(gpu_task(respond), [box, chatbot], turn_outputs, api_name="chat")
        slot_outputs = [slot_status, image, slider, map_view]
        before_file.change(load_slot("before"), [before_file], slot_outputs, api_name="load_before")
        after_file.change(load_slot("after"), [after_file], slot_outputs, api_name="load_after")
        example_btn.click(load_example, None, [*slot_outputs, box], api_name="load_example")
        image.select(on_click, [click_mode], [image, slot_status], api_visibility="private")
        clear_prompts_btn.click(clear_prompts, None, [image, slot_status, map_view], api_name="clear_prompts")
        map_view.draw(on_draw, None, [slot_status], api_name="draw_region")
        map_view.compare(
            compare_dates, [chatbot], [chatbot, box, image, slider, downloads, map_view], api_visibility="private"
        )
        map_tab.select(
            None,
            None,
            None,
            js="() => { setTimeout(() => window.rschatMap && window.rschatMap.invalidateSize(), 60); }",
        )
        export_btn.click(export, None, [downloads, slot_status], api_name="export")
        clear_btn.click(new_session, None, [chatbot, image, slider, downloads, slot_status], api_name="new_session")
        demo.unload(store.drop)
    return demo


def launch_options(settings: Settings) -> dict[str, Any]:
    """What ``demo.launch`` needs besides host and port (tests launch with the same)."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    # Session files (overlays for the map, downloads) are served from the work folder.
    return {"css": CSS, "theme": gr.themes.Soft(), "allowed_paths": [str(settings.work_dir), str(ASSETS)]}


def launch(host: str | None = None, port: int | None = None, **kwargs: Any) -> gr.Blocks:
    settings = load_settings()
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=host or settings.host or None,
        server_port=port or settings.port or None,
        **launch_options(settings),
        **kwargs,
    )
    return demo
