"""Runs a chat turn for the UI: in a thread of its own, under the session's time limit,
stoppable by the Cancel button, and never ending in a bare exception.

Gradio runs the handler in its thread pool (never on the event loop); the turn runs in a
further thread so the handler can stop waiting when the turn is cancelled or out of time
even while the turn is inside a phase that cannot be interrupted (reading a large upload):
the handler answers at once, and the turn's thread ends at its next check.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rschat.agent import Step, turn
from rschat.agent.executor import TurnControl
from rschat.ui.session import UiSession, forget_uploads

log = logging.getLogger(__name__)

GRACE_S = 3.0  # how long a stopped turn may take to end by itself before the UI answers for it
BUSY_WAIT_S = 3.0  # how long a new turn waits for the session's previous one to end
BUSY = (
    "I am still finishing your previous request in this session; ask again in a few seconds "
    "(or press Cancel to stop it)."
)


def failure_text(err: BaseException) -> str:
    """The chat's answer to an unexpected error: what happened, and that the session lives on."""
    return (
        f"Something went wrong on my side while answering ({type(err).__name__}: {str(err)[:300]}). "
        "Your images and earlier results are kept: ask again, or try another question."
    )


# Turns computing at once, whatever Gradio's queue thinks: a cancelled or timed-out turn
# frees its queue slot at once (the UI answers for it), but its thread runs on to its next
# check, so cancel-and-ask-again from fresh sessions could run any number of turns at once.
_COMPUTING: dict[int, threading.BoundedSemaphore] = {}
_COMPUTING_LOCK = threading.Lock()


def _computing(limit: int) -> threading.BoundedSemaphore:
    with _COMPUTING_LOCK:
        return _COMPUTING.setdefault(limit, threading.BoundedSemaphore(max(1, limit)))


def _work(session: UiSession, text: str, files: list[Path], control: TurnControl, out: queue.Queue) -> None:
    slots = _computing(session.ws.settings.max_concurrent_turns)
    while not slots.acquire(timeout=0.25):  # a stopped turn stops waiting
        if control.stopped():
            out.put(Step("answer", control.message(), answered=False))
            out.put(None)
            return
    control.started = time.monotonic()  # the time limit counts from here, not from the wait
    try:
        for step in turn(session.ws, text, uploads=files or None, control=control):
            out.put(step)
    except Exception as err:  # a bug in a turn: logged, answered plainly, the session lives on
        log.exception("turn failed")
        out.put(Step("answer", failure_text(err), answered=False))
    finally:
        slots.release()
        out.put(None)


def run_turn(session: UiSession, text: str, files: list[Path], limit_s: float) -> Iterator[Step]:
    """The turn's steps as they happen; always ends with one ``answer`` step."""
    if session.worker is not None:
        session.worker.join(BUSY_WAIT_S)
    if session.busy():
        yield Step("answer", BUSY, answered=False)
        return
    control = TurnControl(limit_s=limit_s if limit_s > 0 else None)
    steps: queue.Queue[Step | None] = queue.Queue()
    session.control = control
    session.worker = threading.Thread(
        target=_work, args=(session, text, files, control, steps), daemon=True, name="rschat-turn"
    )
    session.worker.start()
    stopped_at: float | None = None
    while True:
        try:
            step = steps.get(timeout=0.25)
        except queue.Empty:
            if control.stopped():
                stopped_at = stopped_at or time.monotonic()
                if time.monotonic() - stopped_at > GRACE_S:  # stuck where it cannot be stopped
                    yield Step("answer", control.message(), answered=False)
                    return
            continue
        if step is None:
            return
        yield step


def ask_json(session: UiSession, text: str, files: list[Path], limit_s: float) -> dict[str, Any]:
    """One turn for a program (the ``/ask`` endpoint): the answer as JSON, as ``rschat ask
    --json`` prints it. Programs keep no chat history to send back (``/chat`` takes the
    chat as it is shown, and a history read back by gradio_client does not validate as
    input); the session (images, results, follow-ups) lives on the server, per client."""
    answer: Step | None = None
    steps: list[dict[str, Any]] = []
    for step in run_turn(session, text, files, limit_s):
        if step.kind == "error" and step.tool == "upload":
            forget_uploads(set(files) & session.uploads)  # refused: not kept on disk
            session.uploads -= set(files)
        if step.kind == "answer":
            answer = step
        elif step.kind in ("done", "error"):
            result = step.result
            steps.append({
                "tool": step.tool, "args": step.args, "summary": step.text,
                "data": result.data if result is not None else {},
                "files": [a.path.name for a in result.artifacts] if result is not None else [],
            })  # fmt: skip
    session.last_seen = time.monotonic()
    return {
        "answer": answer.text if answer is not None else "",
        "answered": bool(answer and answer.answered),
        "short_answer": answer.short_answer if answer is not None else None,
        "steps": steps,
    }
