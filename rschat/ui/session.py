"""Per-browser-session state: the agent's Workspace plus what only the UI needs.

Stored by Gradio's session hash (a Workspace holds arrays that must not be deep-copied
or shared between users) and dropped when the tab closes (``demo.unload``), on "New
session", or after ``session_max_idle_s`` without an event (a sweeper thread): API clients
(REST, gradio_client) send no heartbeat, so Gradio never unloads their sessions.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from rschat.agent import Workspace
from rschat.agent.executor import TurnControl
from rschat.agent.workspace import remove_stale_folders
from rschat.config import Settings

log = logging.getLogger(__name__)


# A session is ended to make room for a new one only after this long without an event.
EVICT_MIN_IDLE_S = 120.0
# Points and boxes one session may place on the image (each click redraws them all).
MAX_PROMPTS = 200


@dataclass
class UiSession:
    ws: Workspace
    base_image: str | None = None  # the picture under the prompts (a raster preview or overlay)
    base_is_raster: bool = False  # whether clicks on it are raster pixels (not a plot)
    pending_corner: tuple[float, float] | None = None  # first click of a two-click box
    # The uploaded files' names by raster name (a raster is named by its file's stem), so
    # the map and the chat name an image as the user knows it: "OSBS_029.tif".
    files: dict[str, str] = field(default_factory=dict)
    uploads: set[Path] = field(default_factory=set)  # its files in Gradio's upload cache
    last_seen: float = field(default_factory=time.monotonic)  # its last event (idle sweep)
    control: TurnControl | None = None  # the running (or last) turn's: Cancel stops it
    worker: threading.Thread | None = None  # the thread running its turn

    def remember_files(self, paths: list[Path]) -> None:
        self.files.update({p.stem: p.name for p in paths})
        self.uploads.update(p for p in paths if _in_upload_cache(p))

    def busy(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    def end(self, keep: set[Path]) -> None:
        """Stop its turn and delete its folder. Its uploads are left to Gradio's own
        age-based cleaning (``delete_cache``): Gradio stores identical uploads once, so a
        file of this session may at this moment be arriving for another session that has
        not claimed it yet, and deleting it here made that session's turn fail (seen with
        20 clients uploading the same pair). ``keep`` is unused now; kept for callers."""
        if self.control is not None:
            self.control.stop("cancelled")
        self.ws.close()

    def click(self, mode: str, x: float, y: float) -> str:
        """Apply a click on the image panel: a point (+/-) or one corner of a box.
        Returns a line for the status bar."""
        if len(self.ws.points) + len(self.ws.boxes) >= MAX_PROMPTS:
            return f"at most {MAX_PROMPTS} points and boxes: clear them to place new ones"
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
        # A request without a session hash (a REST call past the queue) gets a session of its
        # own: one shared key let any such caller export or question another's images.
        key = request.session_hash or f"no-hash-{uuid.uuid4().hex}"
        evicted = None
        with self._lock:
            if key not in self._by_session:
                evicted = self._make_room()
                self._by_session[key] = UiSession(Workspace(self.settings))
            session = self._by_session[key]
            session.last_seen = time.monotonic()
        if evicted is not None:  # its folder is deleted outside the lock
            evicted.end(keep=set())
        return session

    def _make_room(self) -> UiSession | None:
        """At ``max_sessions`` (lock held), take out one session to end: an empty one (no
        image) first, else the one idle longest, and only one idle for EVICT_MIN_IDLE_S
        and running no turn, so that a burst of new sessions (a script) cannot wipe users
        who are at work. Each session holds its images in memory until it ends; without a
        candidate the cap is exceeded rather than a user's work lost."""
        if len(self._by_session) < self.settings.max_sessions:
            return None
        now = time.monotonic()
        idle = [
            (bool(s.ws.rasters), s.last_seen, k)
            for k, s in self._by_session.items()
            if not s.busy() and now - s.last_seen >= EVICT_MIN_IDLE_S
        ]
        if not idle:
            log.warning("%d sessions, none idle enough to end: over RSCHAT_MAX_SESSIONS", len(self._by_session))
            return None
        return self._by_session.pop(min(idle)[2])

    def drop(self, request: gr.Request) -> None:
        if request.session_hash:
            self._drop(request.session_hash)

    def _drop(self, key: str) -> None:
        with self._lock:
            session = self._by_session.pop(key, None)
            others = {p for s in self._by_session.values() for p in s.uploads}
        if session is not None:
            session.end(keep=others)

    def sweep(self) -> int:
        """Drop the sessions idle for longer than ``session_max_idle_s`` (not while a turn
        runs), then delete session folders no live session owns that are as old (left by
        an earlier run). Returns how many sessions were dropped."""
        max_idle = self.settings.session_max_idle_s
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self._by_session.items() if now - s.last_seen > max_idle and not s.busy()]
        for key in idle:
            self._drop(key)
        with self._lock:
            live = {s.ws.folder for s in self._by_session.values() if s.ws.folder is not None}
        remove_stale_folders(self.settings.work_dir, max_idle, keep=live)
        return len(idle)

    def start_sweeper(self) -> threading.Thread:
        """Sweep at start and then every quarter of the idle limit (at most 5 minutes), in a
        daemon thread that ends with the store (it holds only a weak reference)."""
        every = max(1.0, min(300.0, self.settings.session_max_idle_s / 4))
        ref = weakref.ref(self)

        def loop() -> None:
            while (store := ref()) is not None:
                try:
                    store.sweep()
                except Exception:  # a sweep must never end the sweeper
                    log.exception("session sweep failed")
                del store
                time.sleep(every)

        thread = threading.Thread(target=loop, daemon=True, name="rschat-session-sweeper")
        thread.start()
        return thread

    def close_all(self) -> None:
        """End every session (the server is stopping)."""
        with self._lock:
            keys = list(self._by_session)
        for key in keys:
            self._drop(key)

    def __len__(self) -> int:
        return len(self._by_session)


def _in_upload_cache(path: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def not_uploaded(paths: list[Path]) -> list[Path]:
    """The paths that are not uploads to this app. Gradio checks the files of component
    inputs (``/chat``) but hands a ``gr.api`` endpoint's (``/ask``) file paths over as sent,
    so a request naming a server path would have had that file read and analysed."""
    return [p for p in paths if not _in_upload_cache(p)]


def forget_uploads(paths: set[Path] | list[Path]) -> None:
    """Delete uploads from Gradio's cache (and their folder once empty): a session's when it
    ends, a refused one at once. Never a file outside the cache (the examples)."""
    for path in paths:
        if not _in_upload_cache(path):
            continue
        Path(path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another file of the same upload
            Path(path).parent.rmdir()  # Gradio keeps each upload in a folder of its own
