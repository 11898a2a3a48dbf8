"""Runs a plan's tool calls and streams ``Step`` events.

A call whose result is already in the workspace (same tool, arguments and input images)
is not run again. A tool that fails on bad input becomes a visible ``error`` step with
its message; an unexpected exception is logged and reported the same way, so a turn
never crashes the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from rschat.agent.steps import Step, ToolCall
from rschat.agent.workspace import Workspace
from rschat.geo.errors import InputError
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

log = logging.getLogger(__name__)


def execute(calls: list[ToolCall], ws: Workspace) -> Iterator[Step]:
    previous = None
    for number, call in enumerate(calls, start=1):
        tool = REGISTRY[call.tool]
        cid = f"{call.tool}-{number}"
        inputs = ws.inputs_key(call.args, tool.needs)
        # A chained call depends on the step before it, so only stand-alone calls are reused.
        stored = ws.find_result(call.tool, call.args, inputs) if number == 1 else None
        if stored is not None:
            previous = stored.result
            yield Step(
                "done",
                f"reused stored result {stored.id}: {stored.result.summary}",
                call.tool,
                call.args,
                0.0,
                stored.result,
                stored.id,
                reused=True,
                call_id=cid,
            )
            continue
        yield Step("start", f"running {call.tool}: {call.why}", call.tool, call.args, call_id=cid)
        started = time.perf_counter()
        ctx = ToolContext(
            rasters=ws.rasters,
            out_dir=ws.out_dir,
            settings=ws.settings,
            previous=previous,
            region=ws.region if call.args.get("region") or call.args.get("what") == "region" else None,
        )
        try:
            result = tool.run(call.args, ctx)
        except InputError as err:
            yield Step("error", str(err), call.tool, call.args, time.perf_counter() - started, call_id=cid)
            return
        except Exception as err:  # a bug: keep the session alive, say so plainly
            log.exception("tool %s failed", call.tool)
            yield Step(
                "error",
                f"{call.tool} failed unexpectedly ({type(err).__name__}: {err}).",
                call.tool,
                call.args,
                time.perf_counter() - started,
                call_id=cid,
            )
            return
        stored = ws.store_result(call.tool, call.args, inputs, result)
        previous = result
        yield Step(
            "done", result.summary, call.tool, call.args, time.perf_counter() - started, result, stored.id, call_id=cid
        )
