"""The lite responder: an answer written from tool results, never beyond them.

Every number in an answer is read from a ``ToolResult.data`` entry, and the answer names
the tool and result id it came from, the method, and the limits that apply.
"""

from __future__ import annotations

from rschat.agent.steps import Step
from rschat.tools.base import ToolResult


def area_text(m2: float | None) -> str:
    if m2 is None:
        return "an unknown ground area (the image has no georeference)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def position_in_words(x: float, y: float, width: int, height: int) -> str:
    """'the north-west', 'the centre', ... for a pixel position (image north up)."""
    col = "west" if x < width / 3 else "east" if x > 2 * width / 3 else ""
    row = "north" if y < height / 3 else "south" if y > 2 * height / 3 else ""
    if not row and not col:
        return "the centre"
    return "the " + "-".join(p for p in (row, col) if p)


def _change_answer(r: ToolResult, source: str, focus: str | None) -> str:
    d = r.data
    regions = r.memory.get("regions", [])
    mask = r.memory.get("mask")
    if focus == "largest":
        if not regions:
            return f"No change region was found, so there is no largest one ({source})."
        big = regions[0]
        h, w = mask.shape if mask is not None else (0, 0)
        where = position_in_words(big.centroid[0], big.centroid[1], w, h) if mask is not None else "the image"
        x0, y0, x1, y1 = big.bbox
        return (
            f"The largest change region covers {area_text(big.area_m2)}, {big.pixels:,} pixels, in "
            f"{where} of the image (pixel box x {x0}-{x1}, y {y0}-{y1}). It is the biggest of "
            f"{d['region_count']} regions ({source})."
        )
    if focus == "count":
        return f"There are {d['region_count']} separate change regions ({source})."
    if focus == "fraction":
        return f"{d['changed_percent']:.1f}% of the analysed area changed ({d['changed_pixels']:,} pixels) ({source})."
    if focus == "area":
        return (
            f"The changed area is {area_text(d['changed_area_m2'])}, {d['changed_percent']:.1f}% of the "
            f"analysed area, in {d['region_count']} regions ({source})."
        )
    lines = [f"**What changed** ({source}): {r.summary}."]
    if d.get("pixel_size_m"):
        lines.append(f"Pixel size {d['pixel_size_m']:.2f} m; analysed area {area_text(d['analysed_area_m2'])}.")
    if regions and mask is not None:
        where = position_in_words(regions[0].centroid[0], regions[0].centroid[1], mask.shape[1], mask.shape[0])
        lines.append(f"The largest change is in {where} of the image.")
    return "\n\n".join(lines)


_ANSWERS = {"detect_changes": _change_answer}


def answer(steps: list[Step], focus: str | None) -> str:
    """Compose the answer for a turn from its finished and failed steps."""
    parts: list[str] = []
    method_lines: list[str] = []
    for step in steps:
        if step.kind == "error":
            parts.append(f"**{step.tool} could not run:** {step.text}")
        elif step.kind == "done" and step.result is not None and step.tool in _ANSWERS:
            r = step.result
            how = "stored result, not recomputed" if step.reused else f"{step.duration_s:.1f} s"
            source = f"`{step.tool}`, result {step.result_id}, {how}"
            parts.append(_ANSWERS[step.tool](r, source, focus))
            if focus is None:
                method_lines.append(f"Method: {r.method}.")
                method_lines += [f"Note: {n}" for n in r.notes]
                method_lines += [f"Limits: {lim}." for lim in r.limits]
                files = [a.label for a in r.artifacts if a.kind in ("geotiff", "geojson")]
                if files:
                    method_lines.append("Downloads: " + "; ".join(files) + ".")
    return "\n\n".join(parts + (["\n".join(f"- {m}" for m in method_lines)] if method_lines else []))
