"""Per-browser-session state: the agent's Workspace plus what only the UI needs.

Stored by Gradio's session hash (a Workspace holds arrays that must not be deep-copied
or shared between users) and dropped when the tab closes (``demo.unload``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from rschat.agent import Workspace
from rschat.config import Settings


@dataclass
class UiSession:
    ws: Workspace
    base_image: str | None = None  # the picture under the prompts (a raster preview or overlay)
    base_is_raster: bool = False  # whether clicks on it are raster pixels (not a plot)
    pending_corner: tuple[float, float] | None = None  # first click of a two-click box
    # The uploaded files' names by raster name (a raster is named by its file's stem), so
    # the map and the chat name an image as the user knows it: "OSBS_029.tif".
    files: dict[str, str] = field(default_factory=dict)

    def remember_files(self, paths: list[Path]) -> None:
        self.files.update({p.stem: p.name for p in paths})

    def click(self, mode: str, x: float, y: float) -> str:
        """Apply a click on the image panel: a point (+/-) or one corner of a box.
        Returns a line for the status bar."""
        if mode.startswith("box"):
            if self.pending_corner is None:
                self.pending_corner = (x, y)
                return f"box corner at ({x:.0f}, {y:.0f}); click the opposite corner"
            (cx, cy), self.pending_corner = self.pending_corner, None
            self.ws.add_box((int(cx), int(cy), int(x), int(y)))
            return f"box {self.ws.boxes[-1]} added (x0, y0, x1, y1 in pixels)"
        positive = mode != "point -"
        self.ws.add_point(x, y, positive=positive)
        return f"point ({x:.0f}, {y:.0f}) {'+' if positive else '-'} added"


class SessionStore:
    """UiSessions by session hash; one per browser tab, never shared."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_session: dict[str, UiSession] = {}
        self._lock = threading.Lock()

    def get(self, request: gr.Request) -> UiSession:
        key = request.session_hash or "anonymous"
        with self._lock:
            if key not in self._by_session:
                self._by_session[key] = UiSession(Workspace(self.settings))
            return self._by_session[key]

    def drop(self, request: gr.Request) -> None:
        with self._lock:
            session = self._by_session.pop(request.session_hash or "anonymous", None)
        if session is not None:
            session.ws.close()

    def __len__(self) -> int:
        return len(self._by_session)
