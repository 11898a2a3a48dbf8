"""Pure functions from agent ``Step``s to Gradio chat messages (no Gradio import).

Messages are dicts in Gradio 6's format: ``{"role", "content", "metadata"}``. A tool's
``start`` step becomes a pending message that its ``done``/``error`` step replaces in
place, so the user sees each tool running, then finished with its duration.
"""

from __future__ import annotations

from typing import Any

from rschat.agent.steps import Step

Message = dict[str, Any]


def step_message(step: Step) -> Message:
    """The chat message for one step."""
    if step.kind == "answer":
        return {"role": "assistant", "content": step.text}
    if step.kind == "plan":
        return {
            "role": "assistant",
            "content": step.text,
            "metadata": {"title": PLAN_TITLES.get(step.tool or "", "Plan"), "status": "done"},
        }
    if step.kind == "start":
        return {
            "role": "assistant",
            "content": step.text,
            "metadata": _meta(step, title=f"Running {step.tool}", status="pending"),
        }
    title = f"{step.tool}: failed" if step.kind == "error" else f"{step.tool}: done"
    if step.reused:
        title = f"{step.tool}: stored result {step.result_id}"
    meta = _meta(step, title=title, status="done")
    if step.duration_s is not None:
        meta["duration"] = round(step.duration_s, 2)
    return {"role": "assistant", "content": step.text, "metadata": meta}


# Titles of plan-kind steps by what the agent says they are about (Step.tool).
PLAN_TITLES = {"upload": "Upload", "noted": "Noted"}


def _meta(step: Step, **fields: Any) -> dict[str, Any]:
    """A message's metadata, with the step's call id when it has one: Gradio 6 refuses a
    message whose ``id`` is None (a reused result, a failed upload), and the whole turn
    then ended in a bare "Error"."""
    return {**fields, "id": step.call_id} if step.call_id else dict(fields)


def _draft_index(history: list[Message]) -> int | None:
    """Index of this turn's streamed draft: plain assistant text after the last user message."""
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.get("role") == "user":
            return None
        if m.get("role") == "assistant" and not m.get("metadata") and isinstance(m.get("content"), str):
            return i
    return None


def _streaming(history: list[Message]) -> bool:
    """Whether the last message is this turn's answer being streamed (plain assistant text;
    tool steps carry metadata and the turn opened with the user's message)."""
    last = history[-1] if history else {}
    return last.get("role") == "assistant" and not last.get("metadata") and isinstance(last.get("content"), str)


def apply_step(history: list[Message], step: Step) -> list[Message]:
    """Add a step to the history: a tool's done/error replaces its pending message, streamed
    text grows the answer, and the final answer replaces the streamed draft."""
    if step.kind == "delta":
        if _streaming(history):
            history[-1] = {**history[-1], "content": history[-1]["content"] + step.text}
        elif step.text:
            history.append({"role": "assistant", "content": step.text})
        return history
    if step.kind == "answer":
        # The final answer replaces this turn's streamed draft (which a check may have set
        # aside) and comes last.
        draft = _draft_index(history)
        if draft is not None:
            del history[draft]
        history.append({"role": "assistant", "content": step.text})
        return history
    if step.kind == "progress":
        # Progress rewrites the pending message of its tool call ("60%: change mask computed").
        for i in range(len(history) - 1, -1, -1):
            meta = history[i].get("metadata") or {}
            if meta.get("id") == step.call_id and meta.get("status") == "pending":
                history[i] = {**history[i], "content": step.text}
                break
        return history
    message = step_message(step)
    step_id = message.get("metadata", {}).get("id")
    if step.kind in ("done", "error") and step_id:
        for i in range(len(history) - 1, -1, -1):
            meta = history[i].get("metadata") or {}
            if meta.get("id") == step_id and meta.get("status") == "pending":
                history[i] = message
                return history
    history.append(message)
    return history


def artifact_messages(step: Step) -> list[Message]:
    """Chat messages that show a finished step's picture (overlay or plot) inline."""
    if step.result is None:
        return []
    shown = step.result.artifact("overlay") or step.result.artifact("plot")
    if shown is None:
        return []
    return [{"role": "assistant", "content": {"path": str(shown.path), "alt_text": shown.label}}]
