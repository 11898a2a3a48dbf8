"""Runs a plan's tool calls and streams ``Step`` events.

Every call, whether the rule planner or a model wrote it, is validated here against the
tool's argument model, which also fills in the defaults (once, in one place); a call that
does not fit is a visible failed step. A call whose result is already in the workspace (same tool, arguments and input images)
is not run again. A tool that fails on bad input becomes a visible ``error`` step with
its message; an unexpected exception is logged and reported the same way, so a turn
never crashes the session. A ``TurnControl`` stops a turn (the Cancel button, the time
limit): the executor stops waiting at once, and the tool's thread stops at its next
``ctx.progress`` report (Python cannot kill a thread).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rschat.agent.steps import Step, ToolCall
from rschat.agent.workspace import StoredResult, Workspace, merged_notes, uses_region
from rschat.geo.errors import InputError
from rschat.tools import REGISTRY
from rschat.tools.base import Cancelled, ToolContext

log = logging.getLogger(__name__)


@dataclass
class TurnControl:
    """Stops one turn: ``stop("cancelled")`` (the Cancel button) or its time limit."""

    limit_s: float | None = None  # the turn's time limit (RSCHAT_TURN_TIMEOUT_S); None: none
    started: float = field(default_factory=time.monotonic)
    reason: str | None = None  # "cancelled" or "timeout" once stopped
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    def stop(self, reason: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def stopped(self) -> bool:
        """Whether the turn should stop now (cancelled, or past its time limit)."""
        if not self._event.is_set() and self.limit_s is not None and time.monotonic() - self.started > self.limit_s:
            self.stop("timeout")
        return self._event.is_set()

    def message(self) -> str:
        if self.reason == "timeout":
            return (
                f"This took too long (limit {self.limit_s:g} s, RSCHAT_TURN_TIMEOUT_S), so I stopped it. Try a box "
                "or a drawn region, a smaller image, or a simpler question."
            )
        return "Stopped, as you asked (Cancel). Earlier results are kept; ask again when you are ready."

    def check(self) -> None:
        """Raise ``Cancelled`` once the turn is stopped (between phases, in progress reports)."""
        if self.stopped():
            raise Cancelled(self.message())


def _run_with_progress(run, args, call: ToolCall, ctx: ToolContext, cid: str, control: TurnControl):  # type: ignore[no-untyped-def]
    """Run a tool in a worker thread and stream its ``ctx.progress`` reports as steps, so a
    slow tool (SAM on a large image, a big change pair) shows how far it has got. Once the
    turn is stopped this stops waiting (the thread ends at its next progress report)."""
    reports: queue.Queue[tuple[float, str]] = queue.Queue()

    def progress(fraction: float, text: str) -> None:
        control.check()
        reports.put((fraction, text))

    ctx.progress = progress
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = run(args, ctx)
        except BaseException as err:  # re-raised in the caller's thread below
            outcome["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while thread.is_alive() or not reports.empty():
        control.check()
        try:
            fraction, text = reports.get(timeout=0.1)
        except queue.Empty:
            continue
        yield Step("progress", f"{100 * fraction:.0f}%: {text}", call.tool, call.args, call_id=cid)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _failed(call: ToolCall, cid: str, text: str, started: float | None = None) -> Step:
    took = None if started is None else time.perf_counter() - started
    return Step("error", text, call.tool, call.args, took, call_id=cid)


def _reused(stored: StoredResult, call: ToolCall, cid: str) -> Step:
    text = f"reused stored result {stored.id}: {stored.result.summary}"
    return Step("done", text, call.tool, call.args, 0.0, stored.result, stored.id, reused=True, call_id=cid)


def execute(calls: list[ToolCall], ws: Workspace, control: TurnControl | None = None) -> Iterator[Step]:
    control = control or TurnControl()
    previous = None
    for number, call in enumerate(calls, start=1):
        cid = f"{call.tool}-{number}"
        tool = REGISTRY.get(call.tool)
        if tool is None:
            yield _failed(call, cid, f"There is no tool called '{call.tool}' (known: {', '.join(REGISTRY)}).")
            return
        try:
            args = tool.validate(call.args)
        except InputError as err:
            yield _failed(call, cid, str(err))
            return
        call = ToolCall(call.tool, args.model_dump(exclude_none=True), call.why)
        inputs = ws.inputs_key(call.args, tool.needs)
        # A chained call depends on the step before it, so only stand-alone calls are reused.
        stored = ws.find_result(call.tool, call.args, inputs) if number == 1 else None
        if stored is not None:
            previous = stored.result
            yield _reused(stored, call, cid)
            continue
        doubt = ws.band_doubt(inputs)
        if doubt and tool.reads_colours(call.args):
            yield _failed(call, cid, f"{call.tool} needs to know which band is which: {doubt}")
            return
        yield Step("start", f"running {call.tool}: {call.why}", call.tool, call.args, call_id=cid)
        started = time.perf_counter()
        ctx = ToolContext(
            rasters=ws.rasters,
            out_dir=ws.out_dir,
            settings=ws.settings,
            previous=previous,
            region=ws.region if uses_region(call.args) else None,
            result_id=ws.next_result_id(),
        )
        try:
            result = yield from _run_with_progress(tool.run, args, call, ctx, cid, control)
        except Cancelled as err:
            yield _failed(call, cid, str(err), started)
            return
        except InputError as err:
            yield _failed(call, cid, str(err), started)
            return
        except Exception as err:  # a bug: keep the session alive, say so plainly
            log.exception("tool %s failed", call.tool)
            yield _failed(call, cid, f"{call.tool} failed unexpectedly ({type(err).__name__}: {err}).", started)
            return
        result.notes = merged_notes(list(dict.fromkeys([*result.notes, *ws.band_notes(inputs)])))
        stored = ws.store_result(call.tool, call.args, inputs, result)
        previous = result
        yield Step(
            "done", result.summary, call.tool, call.args, time.perf_counter() - started, result, stored.id, call_id=cid
        )
