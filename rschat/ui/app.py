"""The Gradio app: chat with streamed tool steps, image panel with visual prompts,
before/after slider, pair upload and downloads.

Layout and event wiring only: per-session state lives in ``ui.session``, what the panels
show in ``ui.panels``, how steps become chat messages in ``ui.render``. The UI reaches the
tools only through ``rschat.agent.turn``.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from rschat.agent import Workspace, backends, exports, gpu_task
from rschat.agent.agent import REGION_LET_GO
from rschat.config import Settings, load_settings
from rschat.geo.errors import InputError
from rschat.resources import assets_dir
from rschat.ui import map_panel, map_state, panels
from rschat.ui.render import apply_step, artifact_messages
from rschat.ui.session import SessionStore, UiSession, forget_uploads, not_uploaded
from rschat.ui.turns import ask_json, failure_text, run_turn

log = logging.getLogger(__name__)

ASSETS = assets_dir()  # the checkout's assets/ or the installed package's (rschat.resources)
EXAMPLE_BEFORE = ASSETS / "examples" / "naip_2009-08-18.tif"
EXAMPLE_AFTER = ASSETS / "examples" / "naip_2015-09-26.tif"
EXAMPLE_TREES = ASSETS / "examples" / "OSBS_029.tif"  # NEON, Florida, 10 cm RGB
EXAMPLE_SERIES = [ASSETS / "examples" / f"pucallpa_{year}.tif" for year in (1985, 2000, 2020)]  # Landsat
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
CLICK_MODES = ["point +", "point -", "box (two clicks)"]

CSS = """
#lite-banner {border-left: 4px solid #d97706; padding: 2px 12px; background: rgba(217,119,6,0.08);}
#lite-banner p {margin: 4px 0;}
#lite-banner details summary {cursor: pointer; font-size: 0.9em; opacity: 0.85;}
#title h1 {margin-bottom: 0;}
#title p {margin-top: 2px;}
#image-legend {font-size: 13px; min-height: 0;}
#image-legend i {display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: middle;}
"""

# Gradio gives the message box's textarea no accessible name: label it (and again whenever
# Gradio re-renders it), so screen readers and tests find the "Message" box.
LABEL_JS = """
() => {
  const label = () => document.querySelectorAll('#ask textarea').forEach(t => {
    if (t.getAttribute('aria-label') !== 'Message') t.setAttribute('aria-label', 'Message');
  });
  label();
  new MutationObserver(label).observe(document.body, {childList: true, subtree: true});
  // A file input keeps its last value, so choosing the same file again fires no change and
  // the re-attached file was silently dropped: empty the input before each choice.
  document.addEventListener('click', e => {
    const input = e.target.closest && e.target.closest('#ask input[type=file]');
    if (input) input.value = '';
  }, true);
}
"""

EMPTY_CHAT = """**What you can ask**

Attach a GeoTIFF, PNG or JPEG (or load an example below), then ask, for example:

- *What changed between these two images?* (two dates)
- *How many trees are there?* · *How much of it is water?*
- *How did the water change over time?* (three or more dates)
- *How big is the largest field?* · *Describe this scene.*

Click the image or draw on the **Map** tab to restrict a question to a place."""


def banner_text(ws: Workspace) -> str:
    """The mode banner: lite, full, or full with the models that failed to load named."""
    from rschat.backends import loading

    st = ws.settings
    rows = ", ".join(f"{k}: {v}" for k, v in backends(ws).items())
    models = (  # (name, loading kind, setting value, what its failure leaves)
        ("VLM", "vlm", st.vlm, "lite mode answers"),
        ("SAM", "sam", st.sam, "lite mode segmentation"),
        ("CLIP", "clip", st.clip, "lite scene classes"),
        ("generator", "generator", st.generator, "no image generation"),
    )
    configured = [name for name, _, value, _ in models if value]
    failed = {
        name: left for name, kind, value, left in models if value and (loading.status(kind) or "").startswith("failed")
    }
    if failed:
        working = [name for name in configured if name not in failed]
        head = (
            f"**Full mode configured, but {', '.join(failed)} failed to load: {'; '.join(failed.values())}**"
            + (f" ({', '.join(working)} still configured)" if working else "")
            + ". The backends below say why. Numbers still come from the tools, never from a model."
        )
    elif configured:
        head = (
            f"**Full mode: {', '.join(configured)} configured** (models load on first use; any that fails "
            "to load leaves that capability in lite mode, and the chat says why). Numbers still come from "
            "the tools, never from the model."
        )
    else:
        head = "**Lite mode is on.** Everything runs on the CPU and every number is computed from your pixels."
        more = (
            "Training-free algorithms and a rule planner answer. Free-form visual questions and image "
            "generation need full mode (set `RSCHAT_VLM`, `RSCHAT_GENERATOR`; see the README). "
        )
        return f"{head}\n\n<details><summary>Details</summary>\n\n{more}Backends: {rows}\n\n</details>"
    return f"{head}\n\n<details><summary>Backends</summary>\n\n{rows}\n\n</details>"


@dataclass
class Ui:
    """The components the handlers read and update (built by ``layout``)."""

    chatbot: Any
    box: Any
    image: Any
    click_mode: Any
    map_view: Any
    map_tab: Any
    slider: Any
    before_file: Any
    after_file: Any
    slot_status: Any
    downloads: Any
    example_btn: Any
    trees_btn: Any
    series_btn: Any
    clear_btn: Any
    clear_region_btn: Any
    image_legend: Any
    clear_prompts_btn: Any
    export_btn: Any
    cancel_btn: Any


def _chat_column() -> dict[str, Any]:
    # No LaTeX: answers carry units and numbers, and a model's stray "$" must not stall the page.
    # The height follows the window, so the input and the examples stay above the fold at 1280x720.
    chatbot = gr.Chatbot(
        label="Chat",
        height="calc(100vh - 330px)",
        min_height=260,
        max_height=640,
        elem_id="chat",
        latex_delimiters=[],
        placeholder=EMPTY_CHAT,
    )
    box = gr.MultimodalTextbox(
        label="Message",
        show_label=False,
        placeholder="Ask a question; attach one image, two (before, after) or a dated series",
        file_count="multiple",
        file_types=IMAGE_TYPES,
        elem_id="ask",
    )
    with gr.Row(elem_id="examples"):
        example_btn = gr.Button("Load the example pair (NAIP 2009 / 2015)", size="sm")
        trees_btn = gr.Button("Load a tree tile (NEON, Florida)", size="sm")
        series_btn = gr.Button("Load a time series (Landsat 1985-2020)", size="sm")
        # Narrow, so the row still fits beside the examples at 1280x720.
        cancel_btn = gr.Button("Cancel", size="sm", elem_id="cancel", scale=0, min_width=70)  # stops the running turn
        clear_btn = gr.Button("New session", size="sm", variant="stop", scale=0, min_width=100)
    return {
        "chatbot": chatbot, "box": box, "example_btn": example_btn, "trees_btn": trees_btn,
        "series_btn": series_btn, "clear_btn": clear_btn, "cancel_btn": cancel_btn,
    }  # fmt: skip


def _panel_column(settings: Settings) -> dict[str, Any]:
    with gr.Tabs():
        with gr.Tab("Image"):
            image = gr.Image(
                label="Image (click to add points or boxes)", type="filepath", interactive=False, elem_id="image-panel"
            )
            image_legend = gr.HTML("", elem_id="image-legend")  # what the overlay's colours mean
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
            with gr.Row():
                gr.Markdown("Draw a rectangle or polygon (toolbar, top left) to restrict the next questions to it.")
                clear_region_btn = gr.Button("Clear the drawn region", size="sm", scale=0)
        with gr.Tab("Before / after"):
            slider = gr.ImageSlider(label="Before | after", type="filepath")
        with gr.Tab("Pair upload"):
            before_file = gr.File(label="Before (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
            after_file = gr.File(label="After (PNG, JPEG, GeoTIFF)", file_types=IMAGE_TYPES)
    slot_status = gr.Markdown(elem_id="slot-status")
    downloads = gr.File(label="Downloads (GeoTIFF, GeoJSON, CSV, PNG)", file_count="multiple")
    export_btn = gr.Button("Export the session (GeoPackage, GeoJSON, HTML map, transcript)", size="sm")
    return {
        "image": image, "click_mode": click_mode, "clear_prompts_btn": clear_prompts_btn, "map_tab": map_tab,
        "map_view": map_view, "slider": slider, "before_file": before_file, "after_file": after_file,
        "slot_status": slot_status, "downloads": downloads, "export_btn": export_btn,
        "clear_region_btn": clear_region_btn, "image_legend": image_legend,
    }  # fmt: skip


def layout(settings: Settings) -> Ui:
    """The page: title, mode banner, chat on the left, image / map / pair panels on the right."""
    gr.Markdown(
        "# rschat\nAsk about satellite and aerial images: changes, land cover, counts, areas, trends.",
        elem_id="title",
    )
    gr.Markdown(banner_text(Workspace(settings)), elem_id="lite-banner")
    with gr.Row():
        with gr.Column(scale=3):
            chat = _chat_column()
        with gr.Column(scale=2):
            panel = _panel_column(settings)
    return Ui(**chat, **panel)


REGION_CLEARED = REGION_LET_GO


class Handlers:
    """What each event does, for one app: every handler finds its session in the store by
    the request, so nothing is shared between browser tabs."""

    def __init__(self, ui: Ui, store: SessionStore) -> None:
        self.ui, self.store = ui, store

    def _panels(self, session: UiSession) -> dict[Any, Any]:
        shown = panels.refresh(session)
        ui = self.ui
        return {
            ui.image: shown["image"],
            ui.slider: shown["slider"],
            ui.map_view: self._map(session),
            ui.image_legend: panels.overlay_legend(session),
        }

    @staticmethod
    def _map(session: UiSession) -> str:
        try:
            return json.dumps(map_state.build(session.ws, files=session.files))
        except Exception:  # e.g. a footprint the map code cannot draw: an empty map, not a failed turn
            log.exception("map failed")
            return json.dumps(map_state.build(Workspace(session.ws.settings)))

    @staticmethod
    def _drop_region_off(session: UiSession, before: dict[str, int]) -> bool:
        """Clear a drawn region that misses every raster loaded since ``before`` (uids)."""
        ws = session.ws
        new = [name for name, uid in ws.raster_uids.items() if before.get(name) != uid]
        if ws.region_outside(new):
            ws.set_region(None)
            return True
        return False

    def _uploaded(self, session: UiSession, history: list[dict], uids: dict[str, int]) -> dict[Any, Any]:
        """Outputs once a turn's upload is loaded (the turn waits there, before planning):
        the map moves to it, and a region drawn for earlier images is let go."""
        ui = self.ui
        out: dict[Any, Any] = {}
        if self._drop_region_off(session, uids):
            history.append(
                {"role": "assistant", "content": REGION_CLEARED,
                 "metadata": {"title": "Region cleared", "status": "done"}}
            )  # fmt: skip
            out[ui.slot_status] = "map region cleared: it did not overlap the new image(s)"
        return {ui.chatbot: history, ui.map_view: self._map(session), **out}

    def respond(self, message: dict, history: list[dict], request: gr.Request):  # type: ignore[no-untyped-def]
        ui, session = self.ui, self.store.get(request)
        text = (message or {}).get("text", "").strip()
        files = list(dict.fromkeys(Path(f) for f in (message or {}).get("files", [])))  # each file once
        session.remember_files(files)
        shown = text + (("\n\n📎 " + ", ".join(f.name for f in files)) if files else "")
        history = [*history, {"role": "user", "content": shown or "(no text)"}]
        yield {ui.chatbot: history, ui.box: gr.MultimodalTextbox(value=None, interactive=False)}
        try:
            history = yield from self._stream_turn(session, text, files, history)
        except Exception as err:  # a bug in the UI's own code: answer plainly, keep the session
            log.exception("chat turn failed")
            history = [*history, {"role": "assistant", "content": failure_text(err)}]
        session.last_seen = time.monotonic()
        yield {
            ui.chatbot: history,
            ui.box: gr.MultimodalTextbox(value=None, interactive=True),
            **self._turn_panels(session),
        }

    def ask(self, text: str, files: list[FileData] | None = None, request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """Ask rschat a question, with images to upload (PNG, JPEG, GeoTIFF) if any; returns the
        answer as JSON: answer (Markdown), answered, short_answer ('yes', '12', '4693 m2',
        '4106.32 ha' from 10 ha, 'urban'; null for open questions) and the tools' steps with their figures. Calls
        from one client share a session, so follow-ups work ('and in hectares?'); the
        files of the last answers come from /export."""
        session = self.store.get(request)
        paths = list(dict.fromkeys(Path(f.path if isinstance(f, FileData) else f["path"]) for f in files or []))
        if outside := not_uploaded(paths):
            names = ", ".join(p.name for p in outside)
            refusal = (f"I could not use {names}: /ask reads only files uploaded to this app "
                       "(gradio_client's handle_file uploads them), never a path on the server.")  # fmt: skip
            return {"answer": refusal, "answered": False, "short_answer": None, "steps": []}
        session.remember_files(paths)
        return ask_json(session, (text or "").strip(), paths, self.store.settings.turn_timeout_s)

    def _stream_turn(self, session: UiSession, text: str, files: list[Path], history: list[dict]):  # type: ignore[no-untyped-def]
        """Run the turn and stream its steps into the chat; returns the final history."""
        ui = self.ui
        last_yield = 0.0
        uids = dict(session.ws.raster_uids)
        for step in run_turn(session, text, files, self.store.settings.turn_timeout_s):
            if step.kind == "error" and step.tool == "upload":
                forget_uploads(set(files) & session.uploads)  # refused: not kept on disk
                session.uploads -= set(files)
            if step.kind == "plan" and step.tool == "upload":
                history = apply_step(history + upload_previews(session, uids), step)
                yield self._uploaded(session, history, uids)
                continue
            if step.kind == "plan" and step.tool == "region_cleared":  # the turn let the old region go
                history.append(
                    {"role": "assistant", "content": REGION_CLEARED,
                     "metadata": {"title": "Region cleared", "status": "done"}}
                )  # fmt: skip
                yield {ui.chatbot: history, ui.map_view: self._map(session),
                       ui.slot_status: "map region cleared: it did not overlap the new image(s)"}  # fmt: skip
                continue
            history = apply_step(history, step)
            if step.kind == "done" and not step.reused:
                history += artifact_messages(step)
            # Streamed text arrives token by token; sending the whole history for each
            # would flood the browser, so deltas are sent at most ~12 times a second.
            if step.kind != "delta" or time.monotonic() - last_yield > 0.08:
                last_yield = time.monotonic()
                yield {ui.chatbot: history}
        return history

    def _turn_panels(self, session: UiSession) -> dict[Any, Any]:
        """The panels after a turn; a panel that cannot be drawn says so and never fails
        the turn (nor, since the images stay, every later turn of the session)."""
        try:
            return {self.ui.downloads: panels.refresh(session)["files"], **self._panels(session)}
        except Exception as err:
            log.exception("panels failed")
            return {self.ui.slot_status: f"**The image panels could not be drawn:** {type(err).__name__}: {err}"}

    def load_slot(self, name: str):  # type: ignore[no-untyped-def]
        """The handler of the before/after file slot ``name``."""

        def handler(file: str | None, request: gr.Request):  # type: ignore[no-untyped-def]
            if not file:
                return {self.ui.slot_status: ""}
            session = self.store.get(request)
            uids = dict(session.ws.raster_uids)
            try:
                raster = session.ws.load(name, file)
            except InputError as err:
                return {self.ui.slot_status: f"**{name} not loaded:** {err}"}
            session.remember_files([Path(file)])
            status = (
                f"{name} = {Path(file).name} ({raster.width}x{raster.height}, {raster.count} band(s), "
                f"{raster.describe_georef()})"
            )
            if self._drop_region_off(session, uids):
                status += ". " + REGION_CLEARED
            if reversed_note := session.ws.reversed_pair_note():
                status += ". Note: " + reversed_note
            return {self.ui.slot_status: status, **self._panels(session)}

        return handler

    def _load_example(self, request: gr.Request, named: dict[str, Path], question: str, status: str) -> dict[Any, Any]:
        session = self.store.get(request)
        uids = dict(session.ws.raster_uids)
        if len(named) > 2:
            session.ws.load_uploads(list(named.values()))
        else:
            for name, path in named.items():
                session.ws.load(name, path)
        session.remember_files(list(named.values()))
        if self._drop_region_off(session, uids):
            status += " " + REGION_CLEARED
        return {
            self.ui.slot_status: status,
            self.ui.box: gr.MultimodalTextbox(value={"text": question, "files": []}),
            **self._panels(session),
        }

    def load_example(self, request: gr.Request):  # type: ignore[no-untyped-def]
        return self._load_example(
            request,
            {"before": EXAMPLE_BEFORE, "after": EXAMPLE_AFTER},
            "What changed between these two images?",
            "Example loaded: NAIP 2009-08-18 (before) and 2015-09-26 (after), North Dakota, 5 m.",
        )

    def load_example_trees(self, request: gr.Request):  # type: ignore[no-untyped-def]
        return self._load_example(
            request,
            {"image": EXAMPLE_TREES},
            "How many trees are in this image?",
            "Example loaded: OSBS_029.tif, NEON airborne RGB, Florida, 10 cm (data courtesy of NEON/Battelle).",
        )

    def load_example_series(self, request: gr.Request):  # type: ignore[no-untyped-def]
        return self._load_example(
            request,
            {f"t{i + 1}": path for i, path in enumerate(EXAMPLE_SERIES)},
            "How did the water change over time?",
            "Example loaded: Landsat 1985, 2000 and 2020 of Pucallpa, Peru (SWIR1, NIR, red, green; 30 m Landsat resampled to about 90 m pixels).",
        )

    def on_click(self, mode: str, evt: gr.SelectData, request: gr.Request):  # type: ignore[no-untyped-def]
        session = self.store.get(request)
        if not session.base_is_raster:
            why = "ask about the first image to click on it" if session.base_image else "upload an image first"
            return {
                self.ui.slot_status: "Clicks mark pixels of the first image, and the panel shows a plot or a result on "
                f"another image: {why}."
            }
        note = session.click(mode, float(evt.index[0]), float(evt.index[1]))
        return {self.ui.image: panels.with_prompts(session), self.ui.slot_status: note}

    def clear_prompts(self, request: gr.Request):  # type: ignore[no-untyped-def]
        session = self.store.get(request)
        session.ws.clear_prompts()
        session.pending_corner = None
        return {
            self.ui.image: panels.with_prompts(session),
            self.ui.slot_status: "points, boxes and the map region cleared",
            self.ui.map_view: self._map(session),
        }

    def clear_region(self, request: gr.Request):  # type: ignore[no-untyped-def]
        session = self.store.get(request)
        had = session.ws.region is not None
        session.ws.set_region(None)
        return {
            self.ui.slot_status: "map region cleared" if had else "no region was drawn",
            self.ui.map_view: self._map(session),
        }

    def on_draw(self, evt: gr.EventData, request: gr.Request):  # type: ignore[no-untyped-def]
        session = self.store.get(request)
        raw = getattr(evt, "geojson", "") or ""
        try:
            session.ws.set_region(json.loads(raw) if raw else None)
        except (InputError, ValueError) as err:
            return {self.ui.slot_status: f"**Region not used:** {err}"}
        if session.ws.region is None:
            return {self.ui.slot_status: "map region removed"}
        if session.ws.region_outside(session.ws.newest_names()):
            return {self.ui.slot_status: "map region set, but it does not overlap the images: draw it over them"}
        return {self.ui.slot_status: "map region set: the next questions are restricted to it"}

    def compare_dates(self, history: list[dict], evt: gr.EventData, request: gr.Request):  # type: ignore[no-untyped-def]
        question = {"text": f"what changed between {evt.a} and {evt.b}?", "files": []}
        yield from self.respond(question, history, request)

    def export(self, request: gr.Request):  # type: ignore[no-untyped-def]
        files = exports.export_session(self.store.get(request).ws)
        return {self.ui.downloads: [str(f) for f in files], self.ui.slot_status: f"exported {len(files)} files"}

    def cancel(self, request: gr.Request):  # type: ignore[no-untyped-def]
        """Stop the session's running turn (it ends at its tool's next progress report)."""
        session = self.store.get(request)
        if not session.busy() or session.control is None:
            return {self.ui.slot_status: "nothing is running"}
        session.control.stop("cancelled")
        return {self.ui.slot_status: "cancelling: the running step stops at its next progress report"}

    def new_session(self, request: gr.Request):  # type: ignore[no-untyped-def]
        self.store.drop(request)
        ui = self.ui
        empty = json.dumps(map_state.build(Workspace(self.store.settings)))
        return {
            ui.chatbot: [], ui.image: None, ui.slider: None, ui.downloads: None, ui.slot_status: "",
            ui.map_view: empty, ui.image_legend: "",
        }  # fmt: skip


def upload_previews(session: UiSession, before: dict[str, int]) -> list[dict[str, Any]]:
    """PNG previews of the rasters a turn just loaded (a browser cannot show a TIFF), one
    user-side message each, captioned with the file's name."""
    ws = session.ws
    new = [n for n, uid in ws.raster_uids.items() if before.get(n) != uid]
    stack = [n for n in ws.stack() if n in new]
    shown = stack or (["image"] if "image" in new else [n for n in ("before", "after") if n in new])
    return [
        {
            "role": "user",
            "content": {
                "path": panels.preview_path(session, n),
                "alt_text": map_state.file_label(ws.rasters[n].name, session.files),
            },
        }
        for n in shown
    ]


def guarded(handler: Any, status: Any) -> Any:
    """A handler that answers an unexpected error in the status line instead of Gradio's
    bare "Error" (Gradio reads the wrapped signature, so ``gr.Request`` is still passed)."""

    @functools.wraps(handler)
    def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as err:
            log.exception("%s failed", getattr(handler, "__name__", "handler"))
            return {status: f"**Something went wrong:** {type(err).__name__}: {str(err)[:300]}. The session is kept."}

    return safe


def wire(ui: Ui, on: Handlers, settings: Settings) -> None:
    """Connect the events to the handlers (API names are what gradio_client calls). Turns
    share one concurrency limit (``max_concurrent_turns``; the others wait in the queue);
    light events have a pool of their own so they never wait behind a turn."""
    turn_outputs = [ui.chatbot, ui.box, ui.image, ui.slider, ui.downloads, ui.map_view, ui.image_legend, ui.slot_status]
    turns = {"concurrency_limit": settings.max_concurrent_turns, "concurrency_id": "turn"}
    light = {"concurrency_limit": 8, "concurrency_id": "light"}

    def safe(handler: Any) -> Any:
        return guarded(handler, ui.slot_status)

    # On a ZeroGPU Space the turn (which may run models) holds a GPU; elsewhere unchanged.
    ui.box.submit(gpu_task(on.respond), [ui.box, ui.chatbot], turn_outputs, api_name="chat", **turns)
    # For programs: the same turn without the chat history (see ``turns.ask_json``).
    gr.api(gpu_task(on.ask), api_name="ask", **turns)
    slot_outputs = [ui.slot_status, ui.image, ui.slider, ui.map_view, ui.image_legend]
    ui.before_file.change(safe(on.load_slot("before")), [ui.before_file], slot_outputs, api_name="load_before", **light)
    ui.after_file.change(safe(on.load_slot("after")), [ui.after_file], slot_outputs, api_name="load_after", **light)
    ui.example_btn.click(safe(on.load_example), None, [*slot_outputs, ui.box], api_name="load_example", **light)
    ui.trees_btn.click(
        safe(on.load_example_trees), None, [*slot_outputs, ui.box], api_name="load_example_trees", **light
    )
    ui.series_btn.click(
        safe(on.load_example_series), None, [*slot_outputs, ui.box], api_name="load_example_series", **light
    )
    ui.image.select(safe(on.on_click), [ui.click_mode], [ui.image, ui.slot_status], api_visibility="private", **light)
    ui.clear_prompts_btn.click(
        safe(on.clear_prompts), None, [ui.image, ui.slot_status, ui.map_view], api_name="clear_prompts", **light
    )
    ui.clear_region_btn.click(
        safe(on.clear_region), None, [ui.slot_status, ui.map_view], api_name="clear_region", **light
    )
    ui.map_view.draw(safe(on.on_draw), None, [ui.slot_status], api_name="draw_region", **light)
    ui.map_view.compare(on.compare_dates, [ui.chatbot], turn_outputs, api_visibility="private", **turns)
    resize_map = "() => { setTimeout(() => window.rschatShown && window.rschatShown(), 60); }"
    ui.map_tab.select(None, None, None, js=resize_map)
    ui.export_btn.click(safe(on.export), None, [ui.downloads, ui.slot_status], api_name="export", **light)
    # Cancel must run while the session's turn holds a turn slot: no limit, never queued behind.
    ui.cancel_btn.click(safe(on.cancel), None, [ui.slot_status], api_name="cancel", concurrency_limit=None)
    new_outputs = [ui.chatbot, ui.image, ui.slider, ui.downloads, ui.slot_status, ui.map_view, ui.image_legend]
    ui.clear_btn.click(safe(on.new_session), None, new_outputs, api_name="new_session", **light)


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    store = SessionStore(settings)
    gr.set_static_paths(paths=[map_panel.VENDOR])  # Leaflet, served by the app itself (no CDN)
    # Gradio's upload cache is emptied of files older than the session idle limit as often
    # as the session sweep runs (and entirely when the server restarts).
    every = max(1, min(300, settings.session_max_idle_s // 4))
    with gr.Blocks(title="rschat: remote-sensing assistant", delete_cache=(every, settings.session_max_idle_s)) as demo:
        demo.store = store  # type: ignore[attr-defined]  # for tests and cleanup
        ui = layout(settings)
        wire(ui, Handlers(ui, store), settings)
        demo.unload(store.drop)
    store.start_sweeper()
    return demo


def queue_options(settings: Settings) -> dict[str, Any]:
    """Gradio's queue (README, "Many users at once"): events that wait before new ones are
    refused; light events' default limit (turns set their own in ``wire``)."""
    # api_open=False: every call goes through the queue (its limits, a session hash each);
    # Gradio's /run routes would otherwise serve REST calls past both.
    return {
        "default_concurrency_limit": settings.max_concurrent_turns,
        "max_size": settings.queue_max_size,
        "api_open": False,
    }


def launch_options(settings: Settings) -> dict[str, Any]:
    """What ``demo.launch`` needs besides host and port (tests launch with the same)."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    # Session files (overlays for the map, downloads) are served from the work folder; an
    # upload over the size limit is refused by Gradio while it streams (and not kept).
    return {
        "css": CSS,
        "js": LABEL_JS,
        "theme": gr.themes.Soft(),
        "allowed_paths": [str(settings.work_dir), str(ASSETS)],
        "max_file_size": settings.max_file_bytes,
    }


def launch(host: str | None = None, port: int | None = None, **kwargs: Any) -> gr.Blocks:
    settings = load_settings()
    demo = build_demo(settings)
    demo.queue(**queue_options(settings))
    atexit.register(demo.store.close_all)  # type: ignore[attr-defined]  # no session folder outlives the server
    demo.launch(
        server_name=host or settings.host or None,
        server_port=port or settings.port or None,
        **launch_options(settings),
        **kwargs,
    )
    return demo
