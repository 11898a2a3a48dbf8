"""The Gradio app: chat with streamed tool steps, image panel, before/after slider, downloads.

Per-session state lives in a ``SessionStore`` keyed by Gradio's session hash (a
Workspace holds arrays that must not be deep-copied or shared), and is deleted when the
browser tab goes away. The UI reaches the tools only through ``rschat.agent.turn``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rschat.agent import Workspace, backends, turn
from rschat.config import Settings, load_settings
from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.ui.render import apply_step

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLE_BEFORE = ASSETS / "examples" / "naip_2009-08-18.tif"
EXAMPLE_AFTER = ASSETS / "examples" / "naip_2015-09-26.tif"
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]

CSS = """
#lite-banner {border-left: 4px solid #d97706; padding: 6px 12px; background: rgba(217,119,6,0.08);}
"""


class SessionStore:
    """Workspaces by session hash; one per browser tab, never shared."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_session: dict[str, Workspace] = {}
        self._lock = threading.Lock()

    def get(self, request: gr.Request) -> Workspace:
        key = request.session_hash or "anonymous"
        with self._lock:
            if key not in self._by_session:
                self._by_session[key] = Workspace(self.settings)
            return self._by_session[key]

    def drop(self, request: gr.Request) -> None:
        with self._lock:
            ws = self._by_session.pop(request.session_hash or "anonymous", None)
        if ws is not None:
            ws.close()

    def __len__(self) -> int:
        return len(self._by_session)


def banner_text(ws: Workspace) -> str:
    rows = ", ".join(f"{k}: {v}" for k, v in backends(ws).items())
    return (
        "**Lite mode is on.** Everything runs on the CPU with training-free algorithms and a rule "
        "planner; every number is computed from your pixels. Free-form visual questions and image "
        "generation need full mode (set `RSCHAT_VLM`, `RSCHAT_GENERATOR`; see the README).  \n"
        f"<small>Backends: {rows}</small>"
    )


def _preview_path(ws: Workspace, name: str) -> str:
    path = ws.out_dir / f"preview_{name}_{ws.raster_uids[name]}.png"
    if not path.exists():
        write_png(path, rgb_preview(ws.rasters[name]))
    return str(path)


def _panels(ws: Workspace) -> dict[str, Any]:
    """Values for the image panel, slider and downloads from the session's latest state."""
    last = ws.last_result()
    image = slider = None
    files: list[str] = []
    if last is not None and last.result.artifact("overlay") is not None:
        res = last.result
        image = str(res.artifact("overlay").path)  # type: ignore[union-attr]
        slider = (str(res.artifact("before_preview").path), str(res.artifact("after_preview").path))  # type: ignore[union-attr]
        files = [str(a.path) for a in res.artifacts if a.kind in ("geotiff", "geojson", "overlay")]
    elif "after" in ws.rasters and "before" in ws.rasters:
        slider = (_preview_path(ws, "before"), _preview_path(ws, "after"))
        image = slider[1]
    elif "image" in ws.rasters:
        image = _preview_path(ws, "image")
    return {"image": image, "slider": slider, "files": files or None}


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    store = SessionStore(settings)

    with gr.Blocks(title="rschat: remote-sensing assistant") as demo:
        demo.store = store  # type: ignore[attr-defined]  # for tests and cleanup
        gr.Markdown("# rschat\nAsk about satellite and aerial images: upload a pair and ask *what changed?*")
        banner = gr.Markdown(banner_text(Workspace(settings)), elem_id="lite-banner")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=560, elem_id="chat")
                box = gr.MultimodalTextbox(
                    placeholder="Ask a question; attach one image, or two (before, after) for change detection",
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
                        image = gr.Image(label="Image / change overlay", type="filepath", interactive=False)
                    with gr.Tab("Before / after"):
                        slider = gr.ImageSlider(label="Before | after", type="filepath")
                    with gr.Tab("Pair upload"):
                        before_file = gr.File(label="Before (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
                        after_file = gr.File(label="After (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
                slot_status = gr.Markdown(elem_id="slot-status")
                downloads = gr.File(
                    label="Downloads (overlay PNG, GeoTIFF mask, GeoJSON regions)", file_count="multiple"
                )

        def respond(message: dict, history: list[dict], request: gr.Request):  # type: ignore[no-untyped-def]
            ws = store.get(request)
            text = (message or {}).get("text", "").strip()
            files = [Path(f) for f in (message or {}).get("files", [])]
            shown = text + (("\n\n📎 " + ", ".join(f.name for f in files)) if files else "")
            history = [*history, {"role": "user", "content": shown or "(no text)"}]
            yield {chatbot: history, box: gr.MultimodalTextbox(value=None, interactive=False)}
            for step in turn(ws, text, uploads=files or None):
                history = apply_step(history, step)
                yield {chatbot: history}
            panels = _panels(ws)
            yield {
                chatbot: history,
                box: gr.MultimodalTextbox(value=None, interactive=True),
                image: panels["image"],
                slider: panels["slider"],
                downloads: panels["files"],
            }

        def load_slot(name: str):  # type: ignore[no-untyped-def]
            def handler(file: str | None, request: gr.Request):  # type: ignore[no-untyped-def]
                if not file:
                    return {slot_status: ""}
                ws = store.get(request)
                try:
                    raster = ws.load(name, file)
                except InputError as err:
                    return {slot_status: f"**{name} not loaded:** {err}"}
                panels = _panels(ws)
                return {
                    slot_status: f"{name} = {raster.name} ({raster.width}x{raster.height}, {raster.count} band(s), "
                    f"{raster.describe_georef()})",
                    image: panels["image"],
                    slider: panels["slider"],
                }

            return handler

        def load_example(request: gr.Request):  # type: ignore[no-untyped-def]
            ws = store.get(request)
            ws.load("before", EXAMPLE_BEFORE)
            ws.load("after", EXAMPLE_AFTER)
            panels = _panels(ws)
            return {
                slot_status: "Example loaded: NAIP 2009-08-18 (before) and 2015-09-26 (after), North Dakota, 5 m.",
                image: panels["image"],
                slider: panels["slider"],
                box: gr.MultimodalTextbox(value={"text": "What changed between these two images?", "files": []}),
            }

        def new_session(request: gr.Request):  # type: ignore[no-untyped-def]
            store.drop(request)
            return {chatbot: [], image: None, slider: None, downloads: None, slot_status: ""}

        outputs_turn = [chatbot, box, image, slider, downloads]
        box.submit(respond, [box, chatbot], outputs_turn, api_name="chat")
        before_file.change(load_slot("before"), [before_file], [slot_status, image, slider], api_name="load_before")
        after_file.change(load_slot("after"), [after_file], [slot_status, image, slider], api_name="load_after")
        example_btn.click(load_example, None, [slot_status, image, slider, box], api_name="load_example")
        clear_btn.click(new_session, None, [chatbot, image, slider, downloads, slot_status])
        demo.unload(store.drop)
        _ = banner
    return demo


def launch(host: str | None = None, port: int | None = None, **kwargs: Any) -> gr.Blocks:
    settings = load_settings()
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=host or settings.host,
        server_port=port or settings.port,
        css=CSS,
        theme=gr.themes.Soft(),
        allowed_paths=[str(settings.work_dir), str(ASSETS)],
        **kwargs,
    )
    return demo
