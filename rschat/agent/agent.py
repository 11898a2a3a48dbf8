"""One turn: message + uploads -> workspace -> plan -> executor -> responder -> Steps.

This is the only entry the UI and the CLI use. It yields ``Step`` events as they happen
and ends with exactly one ``answer`` step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from rschat.agent import direct, planner_rules, planner_vlm, responder, responder_vlm, short_answer
from rschat.agent.executor import TurnControl, execute
from rschat.agent.plans import Plan
from rschat.agent.questions import refers_to_earlier, split_questions
from rschat.agent.steps import Step
from rschat.agent.vocabulary import GSD_UNITS_M, STATED_GSD
from rschat.agent.workspace import Workspace
from rschat.backends import lite_models, loading
from rschat.backends.vlm import effective_decode
from rschat.geo.bands import parse_band_order, without_band_order
from rschat.geo.errors import InputError
from rschat.tools.base import Artifact, Figures, ToolResult

log = logging.getLogger(__name__)


class GroundingFigures(Figures):
    boxes: int  # places the model pointed at in its answer


LOADED_REPLY = (
    "Loaded. Ask about it: *describe the scene*, *how many trees?*, *how much is water?*, *what changed?* (two "
    "images of one place), *show the NDVI trend* (three or more dates), or *help* for everything I can do."
)
# Coarser than any imagery rschat measures (MODIS and weather satellites are 0.25-2 km): a
# bigger stated pixel size is a typo, and would print areas of 10^30 ha.
MAX_STATED_GSD_M = 10_000.0
MIN_STATED_GSD_M = 0.001  # 1 mm: finer is a typo too (areas would print as 0 m2)


def _asked_about(message: str, m: re.Match[str]) -> bool:
    """Whether a pixel size written before its name ('a 30 m resolution image') is asked
    about rather than stated: 'is this a 30 m resolution image?', 'is 0.5 m per pixel
    enough to count cars?' state nothing."""
    if m.group(1) is not None:  # 'the pixel size is 0.5 m' states it, even in a question
        return False
    rest = re.split(r"[.!\n]", message[m.end() :], maxsplit=1)[0]
    return "?" in rest


def stated_gsd(message: str) -> float | None:
    """A pixel size stated in a message ('the pixel size is 0.5 m', 'GSD 30 cm') in metres."""
    m = next((m for m in STATED_GSD.finditer(message) if not _asked_about(message, m)), None)
    if not m:
        return None
    number, unit = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    unit = unit.lower()
    # "0,5 m" is a decimal comma; "10,000 m" a thousands separator
    number = number.replace(",", "" if re.fullmatch(r"-?[1-9]\d*,\d{3}", number) else ".")
    return float(number) * GSD_UNITS_M[unit[:2] if len(unit) > 1 else unit]


def _vlm_configured(st: Any) -> str:
    """The configured VLM as the banner names it before it loads: base, adapter,
    quantisation, and the decoding that will run (compiled in 4-bit runs as static)."""
    adapter = f" + LoRA adapter {st.vlm_adapter} (RSCHAT_VLM_ADAPTER)" if st.vlm_adapter else ""
    mode, why = effective_decode(st.vlm_decode, "cuda" if st.device != "cpu" else "cpu", loading.quantised(st))
    decode = f", {mode} decoding" + (f" ({why})" if why else "") if st.vlm_decode != "dynamic" else ""
    return f"{st.vlm}{adapter}, {st.vlm_quant}{decode}"


# Capabilities served the same way in every mode.
_ALWAYS_LITE = {
    "measurement": "raster grid geometry",
    "image_information": "the file's header and grid (rasterio)",
    "spectral_indices": "normalised differences of the named bands (lite)",
    "description": "rule-based caption from land cover (lite)",
    "time_series": "index statistics and trend (lite)",
}


def backends(ws: Workspace) -> dict[str, str]:
    """Which backend serves each capability in this session (shown in the UI and CLI). A
    model that failed to load is reported as such, with what serves instead."""
    st = ws.settings

    def model(kind: str, setting: str, value: str, shown: str = "") -> tuple[str, str]:
        """(the model serving, or ''; why a configured model does not serve, or '')."""
        if not value:
            return "", ""
        state = loading.status(kind)
        if state is None:
            return f"{shown or value} (configured with {setting}; loads on first use)", ""
        if state.startswith("failed"):
            return "", f"{setting} failed to load: {state.removeprefix('failed: ')[:200]}"
        return f"{state.removeprefix('loaded: ')} ({setting})", ""

    def lite(text: str, failure: str) -> str:
        return f"{text}; {failure}" if failure else text

    def unavailable(failure: str, setting: str) -> str:
        return f"unavailable: {failure}" if failure else f"unavailable in lite mode (set {setting})"

    vlm, vlm_failed = model("vlm", "RSCHAT_VLM", st.vlm, _vlm_configured(st))
    sam, sam_failed = model("sam", "RSCHAT_SAM", st.sam)
    clip, clip_failed = model("clip", "RSCHAT_CLIP", st.clip)
    lora = f" + LoRA {st.generator_lora} (RSCHAT_GENERATOR_LORA)" if st.generator_lora else ""
    gen, gen_failed = model("generator", "RSCHAT_GENERATOR", st.generator, f"{st.generator}{lora}")
    segmentation = "spectral/colour rules on superpixels (lite)"
    change = "classical CPU detector (lite)"
    if lite_models.model("change") is not None:
        change += f", its regions confirmed by the {lite_models.status('change')}"
    if lite_models.model("buildings") is not None:
        segmentation += f"; buildings in built-up: {lite_models.status('buildings')}"
        change += f", plus buildings that appeared or went: {lite_models.status('buildings')}"
    if lite_models.model("landuse") is not None:
        segmentation += f"; towns in built-up at 4-30 m: {lite_models.status('landuse')}"
    if st.sam:
        segmentation += f"; prompts and named objects: SAM {sam}" if sam else f"; prompts unavailable: {sam_failed}"
    counting = (
        f"trees: {_lite_or_rules('trees', 'blob rules')}; buildings: {_lite_or_rules('buildings', 'shape rules')}"
    )
    if st.sam and st.clip:
        failed = "; ".join(f for f in (sam_failed, clip_failed) if f)
        counting += (
            f"; other objects unavailable: {failed}" if failed else f"; other objects: SAM + CLIP ({st.sam}, {st.clip})"
        )
    return {
        "planner": f"vision-language model {vlm}, rules as fallback" if vlm else lite("rules (lite)", vlm_failed),
        "answers": f"vision-language model {vlm}, checked against tool numbers"
        if vlm
        else lite("template responder (lite)", vlm_failed),
        "visual_questions": vlm or unavailable(vlm_failed, "RSCHAT_VLM"),
        "change_detection": change,
        "segmentation": segmentation,
        "counting": counting,
        "scene_classification": clip or lite(_lite_scenes(), clip_failed),
        **_ALWAYS_LITE,
        "image_generation": gen or unavailable(gen_failed, "RSCHAT_GENERATOR"),
    }


def _lite_scenes() -> str:
    """The lite scene classifiers: aerial scenes, and land use at satellite pixel sizes."""
    return (
        f"{_lite_or_rules('scene', 'unavailable')}; 4-30 m satellite land use: {_lite_or_rules('landuse', 'refused')}"
    )


def _lite_or_rules(name: str, rules: str) -> str:
    """Which lite backend serves: the learned model, or the rules and why."""
    if lite_models.model(name) is not None:
        return lite_models.status(name)
    return f"{rules} (lite; {lite_models.status(name)})"


REGION_LET_GO = (
    "The region drawn on the map does not overlap the new image(s), so it was cleared: draw a new one "
    "on the Map tab to restrict a question."
)


def _describe_uploads(ws: Workspace, names: list[str]) -> str:
    """What was loaded, and what the reader noticed (a large scene held as an overview,
    unnamed bands shown as 1-3, a dropped zero-size georeference), each note once."""
    parts, said = [], []
    for name in names:
        r = ws.rasters[name]
        date = f", {r.date_label}" if r.date else ""
        parts.append(f"{name} = {r.name} ({r.width}x{r.height}, {r.count} band(s), {r.describe_georef()}{date})")
        said += [(r.name, n) for n in r.notes]
    if {"before", "after"} <= set(names) and (reversed_note := ws.reversed_pair_note()):
        said.append(("", reversed_note))
    if names == ["image"] and (pair := ws.paired_by_upload()):
        said.append(("", f"'{pair[0]}' and '{pair[1]}' are now the before and after images: ask *what changed?* "
                         "to compare them, or about *the first image*."))  # fmt: skip
    return "; ".join(parts) + "".join(f"\n\nNote: {n}" for n in _grouped(said))


def _grouped(notes: list[tuple[str, str]]) -> list[str]:
    """Each note once; one said of several images (an 8-date stack of false-colour
    composites) in full for the first, then 'Likewise for ...' (it was repeated 8 times)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, note in notes:
        key = re.sub(r"-?\d+(?:\.\d+)?", "#", note.replace(f"'{name}'", "'*'"))
        if all(n != note for _, n in groups.get(key, [])):
            groups.setdefault(key, []).append((name, note))
    out = []
    for members in groups.values():
        others = [f"'{name}'" for name, _ in members[1:]]
        likewise = (
            f" Likewise for {', '.join(others[:-1])}{' and ' if len(others) > 1 else ''}{others[-1]}." if others else ""
        )
        out.append(members[0][1] + likewise)
    return out


def _load(ws: Workspace, uploads: list[Path] | None, named: dict[str, Path] | None) -> list[str]:
    """Load the turn's files (explicit slots first, then the message's attachments)."""
    loaded: list[str] = []
    for name, path in (named or {}).items():
        ws.load(name, path)
        loaded.append(name)
    if uploads:
        loaded += ws.load_uploads(list(uploads))
    return loaded


def _plan(ws: Workspace, message: str) -> Generator[Step, None, tuple[Plan, Any]]:
    """Plan with the model when one is configured and loads, else (or when it fails) by
    rules. Streams the notes; returns (plan, the model if it is still trusted)."""
    model = None
    if ws.settings.vlm:
        try:
            model = loading.load_vlm(ws.settings)
        except loading.BackendUnavailable as err:
            yield Step("plan", f"lite mode for planning and answers: {err}")
    if model is not None:
        try:
            planned = planner_vlm.plan_with_model(message, ws, model)
        except Exception as err:  # a model that cannot run (template, shapes, memory): plan by rules
            log.exception("model planning failed")
            note = f"the model could not plan ({type(err).__name__}: {err}); falling back to the rule planner"
            planned = planner_vlm.ModelPlan(None, [note])
            model = None  # and it will not write the answer either
        for note in planned.notes:
            yield Step("plan", note)
        if planned.plan is not None:
            return planned.plan, model
    return planner_rules.plan(message, ws), model


def _reuse(ws: Workspace, plan: Plan) -> Generator[Step, None, str]:
    """Answer a follow-up from a stored result, without recomputing it."""
    stored = next(s for s in ws.results if s.id == plan.use_result)
    reused = Step(
        "done", f"reused stored result {stored.id}", stored.tool, stored.args, 0.0, stored.result, stored.id,
        reused=True,
    )  # fmt: skip
    yield reused
    return responder.answer([reused], plan.focus, plan.point, plan.unit, plan.also_unit)


def _run_plan(
    ws: Workspace, message: str, plan: Plan, model: Any, failed: list[Step], control: TurnControl
) -> Generator[Step, None, str]:
    """Run the plan's calls and answer from their results (the model writes the answer
    when it is trusted, checked against the tools' numbers). Failed steps go to ``failed``."""
    yield Step("plan", "plan: " + "; then ".join(f"{c.tool} ({c.why})" for c in plan.calls))
    steps = []
    for step in execute(plan.calls, ws, control):
        steps.append(step)
        if step.kind == "error":
            failed.append(step)
        yield step
    if control.reason:  # cancelled or out of time: say so, not "the tool failed"
        return control.message()
    text = responder.answer(steps, plan.focus, plan.point, plan.unit, plan.also_unit)
    if model is not None:
        text = yield from _model_answer(model, ws, message, steps, text, control)
    return text


_FILLER = re.compile(
    r"\b(the|a|an|and|is|are|ok|okay|please|thanks|thank you|here|this|image|images|its|it's|it is|"
    r"landsat|sentinel|naip|planet|false|true|colou?r|composite|file|scene)\b",
    re.I,
)
# A pixel size with a number but no unit read ("the pixel size is 2 inches"): asked again, not ignored.
_UNREAD_GSD = re.compile(r"(?:pixel size|pixel spacing|gsd|ground sample distance)\s*(?:is|of|=|:)?\s*-?\d", re.I)


def _only_statements(message: str) -> bool:
    """Whether a message only states things about the images ('the pixel size is 10 m'),
    with no question after them ('... is this a residential area?' has one)."""
    rest = without_band_order(STATED_GSD.sub(" ", message))
    return not re.search(r"[A-Za-z]{2,}", _FILLER.sub(" ", rest))


def _unreadable(ws: Workspace, message: str, with_files: bool) -> str | None:
    """Why a message is not read (blank, too long, an impossible pixel size), or None; the
    history records it as the user and the app saw it."""
    if not message.strip() and not with_files:
        return "Type a question about your images (e.g. *what changed?*, *how many trees?*), or *help*."
    limit = ws.settings.max_message_chars
    if len(message) > limit:
        ws.history.append({"role": "user", "content": message[:200] + " ..."})
        text = (
            f"Your message is {len(message):,} characters long; I read questions of up to {limit:,} "
            "characters (RSCHAT_MAX_MESSAGE_CHARS). Ask in a sentence or two."
        )
    else:
        ws.history.append({"role": "user", "content": message})
        gsd = stated_gsd(message)
        if gsd is None and _UNREAD_GSD.search(message):
            text = (
                "I read pixel sizes in mm, cm, m, km or ft (*the pixel size is 0.5 m*), and did not understand the "
                "unit of yours: say it again in one of those."
            )
        elif gsd is None or MIN_STATED_GSD_M <= gsd <= MAX_STATED_GSD_M:
            return None
        else:
            text = (  # "the pixel size is 0 m": refused, not ignored
                f"A pixel size must be at least {MIN_STATED_GSD_M * 1000:g} mm and at most "
                f"{MAX_STATED_GSD_M / 1000:g} km (you said {gsd:g} m); say it again with the right value."
            )
    ws.history.append({"role": "assistant", "content": text})
    return text


def turn(
    ws: Workspace,
    message: str,
    uploads: list[Path] | None = None,
    named: dict[str, Path] | None = None,
    control: TurnControl | None = None,
) -> Iterator[Step]:
    """Run one chat turn (see ``_turn``), and note which results it answered from, run or
    reused, so that the panels offer their files rather than the newest result's."""
    used: list[str] = []
    for step in _turn(ws, message, uploads, named, control):
        if step.kind == "done" and step.result_id:
            used.append(step.result_id)
        if step.kind == "answer" and used:
            ws.answered_from = list(dict.fromkeys(used))
        yield step


def _turn(
    ws: Workspace,
    message: str,
    uploads: list[Path] | None = None,
    named: dict[str, Path] | None = None,
    control: TurnControl | None = None,
) -> Iterator[Step]:
    """Run one chat turn. ``uploads`` are files attached to the message (named by
    ``Workspace.load_uploads``); ``named`` maps explicit slots ('before', 'after', 'image')
    to files. Points and boxes are set on the workspace beforehand (UI clicks, CLI flags).
    ``control`` stops the turn (cancel, time limit) between phases and tool progress reports."""
    control = control or TurnControl()
    refused = _unreadable(ws, message, bool(uploads or named))
    if refused is not None:
        yield Step("answer", refused, answered=False)
        return
    gsd = stated_gsd(message)
    said = ws.state(gsd_m=gsd, bands=parse_band_order(message))
    # A region drawn over the images already here is let go if the new ones are elsewhere;
    # a region given with the images themselves (the CLI's --region) is kept, and a miss
    # is reported by the tool.
    drawn_for_earlier = ws.region is not None and bool(ws.rasters) and not ws.region_outside(list(ws.rasters))
    try:
        loaded = _load(ws, uploads, named)
    except InputError as err:
        text = f"I could not use that upload: {err}"
        ws.history.append({"role": "assistant", "content": text})
        yield Step("error", str(err), tool="upload")
        yield Step("answer", text, answered=False)
        return
    if loaded:
        yield Step("plan", "loaded " + _describe_uploads(ws, loaded), tool="upload")
        if drawn_for_earlier and ws.region_outside(loaded):  # drawn for earlier images: let it go, before planning
            ws.set_region(None)
            yield Step("plan", REGION_LET_GO, tool="region_cleared")
    if said:
        yield Step("plan", "noted: " + "; ".join(said), tool="noted")
    if control.stopped():  # stopped while the files were read: no plan, no tools
        text, answered = control.message(), False
    elif not message.strip():  # files without a question: say what to ask, not "I can't do that"
        text, answered = LOADED_REPLY, True
    else:
        parts = _questions(ws, message)
        if len(parts) > 1:
            text, answered, short = yield from _answer_each(ws, parts, said, control)
            ws.history.append({"role": "assistant", "content": text})
            yield Step("answer", text, answered=answered, short_answer=short)
            return
        text, answered = yield from _plan_and_answer(ws, message, said, control)
    ws.history.append({"role": "assistant", "content": text})
    yield Step("answer", text, answered=answered)


def _questions(ws: Workspace, message: str) -> list[str]:
    """The message's questions when it asks several and each plans to tools of its own
    (checked with the rule planner, which changes nothing; one about an earlier one's
    objects is not checked); else the message alone."""
    parts = split_questions(message)
    if len(parts) < 2:
        return [message]
    # a question about an earlier one's objects is planned once that one has run
    plans = [planner_rules.plan(part, ws) for part in parts if not refers_to_earlier(part)]
    runnable = all(p.calls or p.use_result is not None for p in plans)
    distinct = len({repr((p.calls, p.focus, p.use_result)) for p in plans}) == len(plans)
    return parts if runnable and distinct else [message]


def _answer_each(
    ws: Workspace, parts: list[str], said: list[str], control: TurnControl
) -> Generator[Step, None, tuple[str, bool, str | None]]:
    """Each question planned and answered in turn (a later one can use an earlier one's
    result), under its own heading. Returns (text, whether all were answered, the short
    answers joined with '; ' when every part has one)."""
    texts, shorts, answered = [], [], True
    for i, part in enumerate(parts, start=1):
        if control.stopped():
            texts.append(f"*{part}*\n\n{control.message()}")
            answered = False
            break
        yield Step("plan", f"question {i} of {len(parts)}: {part}", tool="questions")
        text, ok = yield from _plan_and_answer(ws, part, said, control)
        texts.append(f"*Question {i} of {len(parts)}: {part}*\n\n{text}")
        shorts.append(short_answer.parse(text) if ok else None)
        answered = answered and ok
    short = "; ".join(s for s in shorts if s) if shorts and all(shorts) and answered else None
    return "\n\n".join(texts), answered, short


def _plan_and_answer(
    ws: Workspace, message: str, said: list[str], control: TurnControl
) -> Generator[Step, None, tuple[str, bool]]:
    """Plan the message and answer it: directly, from a stored result, or by running the
    plan's tools. Returns (answer text, whether it answered the question)."""
    plan, model = yield from _plan(ws, message)
    if plan.intent == "clear":
        ws.clear_prompts()
    answered = plan.answered
    if model is not None and plan.intent in ("vqa", "unsupported"):
        text = yield from _answer_directly(model, ws, message, control)
        answered = not control.stopped()
    elif plan.reply is not None:
        text = plan.reply
        if said and plan.intent in ("unsupported", "vqa") and _only_statements(message):
            text = "Noted: " + "; ".join(said) + ". Ask a question about the images when you are ready."
            answered = True
    elif plan.use_result is not None:
        if plan.focus is not None:  # "how big is the largest one?" then "and in square feet?": the largest
            ws.remember_focus(plan.focus)
        text = yield from _reuse(ws, plan)
    else:
        failed: list[Step] = []
        ws.remember_focus(plan.focus)
        text = yield from _run_plan(ws, message, plan, model, failed, control)
        answered = not failed
    if plan.note:  # said first: the format asked for is not the one given
        text = f"{plan.note}\n\n{text}"
    # A question that went unanswered ('how much is covered by roads?', read as a visual
    # question) has no figure to convert; "thanks!" (unsupported) leaves the last one.
    if plan.intent not in ("unsupported", "help"):
        ws.last_unanswered = not answered
    return text, answered


def _streamed(stream: Iterator[str], chunks: list[str], control: TurnControl) -> Iterator[Step]:
    """The model's text as delta steps, into ``chunks``; once the turn is stopped (Cancel,
    time limit) the stream is closed, which ends the model at its next token."""
    try:
        for chunk in stream:
            chunks.append(chunk)
            yield Step("delta", chunk)
            if control.stopped():
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _answer_directly(model, ws: Workspace, message: str, control: TurnControl):  # type: ignore[no-untyped-def]
    """Stream the model's own answer about the images; draw any boxes it gives."""
    if not ws.rasters:
        return "Upload an image first, then ask about it."
    chunks: list[str] = []
    try:
        yield from _streamed(direct.stream_direct(model, ws, message), chunks, control)
    except Exception as err:
        log.exception("model answer failed")
        yield Step("error", f"the vision-language model failed ({type(err).__name__}: {err})", tool="vlm")
        return "The vision-language model could not answer this question; see the error above."
    if control.stopped():
        return f"{''.join(chunks).strip()} ...\n\n{control.message()}"
    text = "".join(chunks).strip()
    boxes = direct.boxes_in_answer(model, ws, text)
    if boxes:
        path = direct.draw_boxes(ws, boxes)
        found = ToolResult(
            summary=f"the model pointed at {len(boxes)} place(s) on image 1",
            figures=GroundingFigures(boxes=len(boxes)),
            artifacts=[Artifact("overlay", Path(path), "boxes from the model's answer")],
            method="grounding by the vision-language model",
        )
        yield Step("done", found.summary, tool="grounding", result=found)
    return text + ("\n\n(Answered by the vision-language model from the pixels; no tool measured this.)")


def _model_answer(  # type: ignore[no-untyped-def]
    model, ws: Workspace, message: str, steps: list[Step], template_text: str, control: TurnControl
):
    """The model's answer from the tool results, or the template answer if the model
    states a number no tool produced (or the turn was stopped while it wrote)."""
    if not any(s.result is not None for s in steps):
        return template_text
    chunks: list[str] = []
    try:
        yield from _streamed(responder_vlm.stream_answer(model, message, steps, ws.history[:-1]), chunks, control)
    except Exception as err:
        log.exception("model answer failed")
        yield Step("plan", f"the model could not write the answer ({type(err).__name__}); the tools' answer follows")
        return template_text
    if control.stopped():
        return f"{template_text}\n\n{control.message()}"
    text = "".join(chunks).strip()
    allowed = responder_vlm.grounded_numbers(steps, message)
    bad = responder_vlm.ungrounded(text, allowed)
    if bad or not responder_vlm.quotes_a_result(text, allowed):
        why = (
            f"it stated {', '.join(f'{v:g}' for v in bad[:5])}, which no tool computed"
            if bad
            else "it quoted none of the tools' numbers"
        )
        yield Step("plan", f"the model's answer was set aside: {why}; the tools' own answer follows")
        return template_text
    return text
