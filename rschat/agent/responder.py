"""The lite responder: an answer written from tool results, never beyond them.

Each tool says how its result reads (``Tool.answer``, in the tool's own file); this module
puts a turn's answers together with where each came from (tool, result id, time), the
method, the notes and limits that apply, and the files to download. Every number in an
answer is read from a ``ToolResult``.
"""

from __future__ import annotations

from rschat.agent import short_answer as short
from rschat.agent.steps import Step
from rschat.tools import REGISTRY
from rschat.tools.base import Reading, ToolResult

DOWNLOAD_LISTED = ("geotiff", "geojson", "table", "plot")


def _method_lines(result: ToolResult, tool: str) -> list[str]:
    lines = [f"Method ({tool}): {result.method}."]
    lines += [f"Note: {n.rstrip('.')}." for n in result.notes]
    lines += [f"Limits: {lim}." for lim in result.limits]
    files = [a.label for a in result.artifacts if a.kind in DOWNLOAD_LISTED]
    if files:
        lines.append("Downloads: " + "; ".join(files) + ".")
    return lines


def _comparison(steps: list[Step], focus: str) -> tuple[str, str] | None:
    """A comparison's short answer and the sentence that shows the two counts, from the
    turn's two counting steps; None when either count is missing (a step failed)."""
    relation = focus.removeprefix("compare_")
    done = [s for s in steps if s.kind == "done" and s.result is not None]
    counts = [short.counted(s.result, _target(s)) for s in done if s.result is not None]
    if len(counts) != 2 or None in counts:
        return None
    first, second = counts[0] or 0, counts[1] or 0
    found = short.compare(relation, first, second)
    sign, words = short.COMPARISONS[relation]
    what = [_counted_what(s) for s in done]
    verdict = "so yes" if found == "yes" else f"so no: not {words}"
    return found, f"Compared: {first} {what[0]} against {second} {what[1]} ({first} {sign} {second}?), {verdict}."


def _counted_what(step: Step) -> str:
    """'large buildings', 'circular water areas': what a counting step counted."""
    words = " ".join(str(step.args[k]) for k in ("size", "shape") if step.args.get(k))
    target = str(_target(step) or "").replace("_", " ")
    noun = f"{target}s" if step.tool == "count_objects" else f"{target.removesuffix('s')} areas"
    return f"{words} {noun}".strip()


def _target(step: Step) -> str | None:
    target = step.args.get("target") or (step.result.kept.target if step.result else None)
    return target if isinstance(target, str) else None


def _regions_within_text(steps: list[Step], focus: str) -> str | None:
    """'4 of the 15 change regions are larger than 10 ha: 59.43, 30.01, ... ha.'"""
    from rschat.geo.shapes import describe_bounds

    for step in steps:
        if step.kind == "done" and step.result is not None and (found := short.regions_within(step.result, focus)):
            picked, total = found
            low, high = (float(v) if v else None for v in focus.removeprefix(short.REGIONS_WITHIN).split(":"))
            what = (
                "change regions"
                if step.tool == "detect_changes"
                else f"{_target(step) or 'class'} areas".replace("_", " ")
            )
            sizes = ", ".join(f"{r.area_m2 / 1e4:,.2f}" for r in picked[:10]) + (" ..." if len(picked) > 10 else "")
            listed = f": {sizes} ha" if picked else ""
            verb = "is" if len(picked) == 1 else "are"
            big = all(v is None or v >= 1e4 for v in (low, high))  # "larger than 10 ha", as it was asked
            bounds = describe_bounds(low, high, "ha" if big else "m2")
            return f"{len(picked)} of the {total} {what} {verb} {bounds}{listed}."
        regions = step.result.kept.regions if step.kind == "done" and step.result is not None else []
        if regions and all(r.area_m2 is None for r in regions):  # no georeference, no pixel size
            return (
                "I can't sort the regions by area: the images have no georeference or stated pixel size, so "
                "their areas are unknown (say 'the pixel size is 0.5 m' and ask again)."
            )
    return None


def short_answer(steps: list[Step], focus: str | None) -> str | None:
    """The closed answer the turn's results give (the first step that holds the figure:
    a class's whole area from segment before a measure of its largest region)."""
    if focus is not None and focus.startswith("compare_"):
        both = _comparison(steps, focus)
        return None if both is None else both[0]
    for step in steps:
        if step.kind == "done" and step.result is not None:
            target = step.args.get("target") or step.result.kept.target
            found = short.derive(step.result, focus, target if isinstance(target, str) else None)
            if found is not None:
                return found
    return None


def _with_lead(text: str, found: str | None, also: str | None = None) -> str:
    """The short answer first (with the figure in a second unit asked for, '**846 m2**
    (0.21 acres)'), unless the tool's own answer already opens with it."""
    if found is None or (also is None and short.parse(text) == found):
        return text
    beside = f" ({also})" if also and also != found else ""
    return f"{short.lead(found)}{beside}\n\n{text}"


def answer(
    steps: list[Step],
    focus: str | None,
    point: tuple[float, float] | None = None,
    unit: str | None = None,
    also_unit: str | None = None,
) -> str:
    """Compose the answer for a turn from its finished and failed steps; an area's short
    answer in the unit the question asked for."""
    parts: list[str] = []
    method_lines: list[str] = []
    for step in steps:
        if step.kind == "error":
            parts.append(f"**{step.tool} could not run:** {step.text}")
        elif step.kind == "done" and step.result is not None and step.tool:
            r = step.result
            how = "stored result, not recomputed" if step.reused else f"{step.duration_s or 0.0:.1f} s"
            reading = Reading(f"`{step.tool}`, result {step.result_id}, {how}", focus, point)
            tool = REGISTRY.get(step.tool)
            # Results that come from no registered tool (the model's grounding boxes) read plainly.
            parts.append(tool.answer(r, reading) if tool else f"**{step.tool}** ({reading.source}): {r.summary}.")
            if focus is None or not step.reused:
                method_lines += _method_lines(r, step.tool)
    if focus is not None and focus.startswith("compare_") and (both := _comparison(steps, focus)) is not None:
        parts.insert(0, both[1])
    if focus is not None and focus.startswith(short.REGIONS_WITHIN) and (said := _regions_within_text(steps, focus)):
        parts.insert(0, said)
    text = "\n\n".join(parts + (["\n".join(f"- {m}" for m in method_lines)] if method_lines else []))
    found = short_answer(steps, focus)
    also = short.in_unit(found, also_unit) if also_unit else None
    return _with_lead(text, short.in_unit(found, unit or _readable_unit(found)), also)


LARGE_M2 = 100_000.0  # 10 ha: from here an area reads in hectares ('41,063,192 m2' is 4,106.32 ha)


def _readable_unit(found: str | None) -> str | None:
    """The unit an area is best read in when none was asked: hectares from 10 ha."""
    if found is None or not found.endswith(" m2"):
        return None
    try:
        return "ha" if abs(float(found.removesuffix(" m2"))) >= LARGE_M2 else None
    except ValueError:
        return None
