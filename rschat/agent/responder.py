"""The lite responder: an answer written from tool results, never beyond them.

Every number in an answer is read from a ``ToolResult`` (its ``data`` or the regions and
detections it keeps), and the answer names the tool and result id it came from, the
method, and the limits that apply.
"""

from __future__ import annotations

from collections.abc import Callable

from rschat.agent.steps import Step
from rschat.backends.landcover_rules import CLASSES
from rschat.geo.places import place
from rschat.tools.base import ToolResult


def area_text(m2: float | None) -> str:
    if m2 is None:
        return "an unknown ground area (the image has no georeference; say the pixel size to get one)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def _largest_region_text(r: ToolResult, what: str, source: str) -> str:
    regions = r.memory.get("regions", [])
    mask = r.memory.get("mask")
    if not regions or mask is None:
        return f"No {what} region was found, so there is no largest one ({source})."
    big = regions[0]
    where = place(big.centroid[0], big.centroid[1], mask.shape[1], mask.shape[0])
    x0, y0, x1, y1 = big.bbox
    return (
        f"The largest {what} region covers {area_text(big.area_m2)}, {big.pixels:,} pixels, in {where} of the "
        f"image (pixel box x {x0}-{x1}, y {y0}-{y1}); it is the biggest of {len(regions)} ({source})."
    )


def _change(r: ToolResult, source: str, focus: str | None, point: tuple[float, float] | None) -> str:
    d = r.data
    if focus == "largest":
        return _largest_region_text(r, "change", source)
    if focus == "count":
        return f"There are {d['region_count']} separate change regions ({source})."
    if focus == "fraction":
        return f"{d['changed_percent']:.1f}% of the analysed area changed ({d['changed_pixels']:,} pixels) ({source})."
    if focus == "area":
        return (
            f"The changed area is {area_text(d['changed_area_m2'])}, {d['changed_percent']:.1f}% of the analysed "
            f"area, in {d['region_count']} regions ({source})."
        )
    lines = [f"**What changed** ({source}): {r.summary}."]
    if d.get("pixel_size_m"):
        lines.append(f"Pixel size {d['pixel_size_m']:.2f} m; analysed area {area_text(d['analysed_area_m2'])}.")
    regions, mask = r.memory.get("regions", []), r.memory.get("mask")
    if regions and mask is not None:
        lines.append(
            f"The largest change is in {place(regions[0].centroid[0], regions[0].centroid[1], mask.shape[1], mask.shape[0])} of the image."
        )
    return "\n\n".join(lines)


def _segment(r: ToolResult, source: str, focus: str | None, point: tuple[float, float] | None) -> str:
    d, target = r.data, r.memory.get("target", "all")
    lc = r.memory.get("landcover")
    if focus == "point" and point is not None and lc is not None:
        x, y = int(point[0]), int(point[1])
        if not (0 <= y < lc.classes.shape[0] and 0 <= x < lc.classes.shape[1]):
            return f"The point ({x}, {y}) is outside the image ({source})."
        k = int(lc.classes[y, x])
        name = CLASSES[k] if k >= 0 else "no data"
        verdict = ""
        if target not in ("all", "vegetation"):
            verdict = "Yes: " if name == target else "No: "
        elif target == "vegetation":
            verdict = "Yes: " if name in ("trees", "low_vegetation") else "No: "
        return f"{verdict}the point ({x}, {y}) is {name.replace('_', ' ')} ({source})."
    if focus == "largest" and target != "all":
        return _largest_region_text(r, target.replace("_", " "), source)
    if target != "all":
        pct, ha = d.get(f"{target}_percent"), d.get(f"{target}_area_ha")
        where = f" in {r.memory.get('scope')}" if r.memory.get("scope") else ""
        size = f", {ha:,.2f} ha ({d[f'{target}_area_m2']:,.0f} m2)" if ha is not None else ""
        regions = d.get(f"{target}_region_count")
        return (
            f"**{target.replace('_', ' ').capitalize()}** covers {pct:.1f}%{size}{where}, in {regions} separate "
            f"areas ({source})."
        )
    return f"**Land cover** ({source}): {r.summary}."


def _count(r: ToolResult, source: str, focus: str | None, point: tuple[float, float] | None) -> str:
    d = r.data
    text = f"**{r.summary}** ({source})."
    if d.get("dead_or_leafless"):
        text += f" {d['dead_or_leafless']} of them look leafless or dead."
    if d.get("density_per_ha") is not None:
        text += f" That is {d['density_per_ha']:,.1f} per ha."
    return text


def _plain(title: str) -> Callable[[ToolResult, str, str | None, tuple[float, float] | None], str]:
    def answer(r: ToolResult, source: str, focus: str | None, point: tuple[float, float] | None) -> str:
        return f"**{title}** ({source}): {r.summary}."

    return answer


_ANSWERS = {
    "detect_changes": _change,
    "segment": _segment,
    "count_objects": _count,
    "measure": _plain("Measured"),
    "describe_scene": _plain("Scene"),
    "analyze_timeseries": _plain("Time series"),
}


def answer(steps: list[Step], focus: str | None, point: tuple[float, float] | None = None) -> str:
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
            parts.append(_ANSWERS[step.tool](r, source, focus, point))
            if focus is None or not step.reused:
                method_lines.append(f"Method ({step.tool}): {r.method}.")
                method_lines += [f"Note: {n.rstrip('.')}." for n in r.notes]
                method_lines += [f"Limits: {lim}." for lim in r.limits]
                files = [a.label for a in r.artifacts if a.kind in ("geotiff", "geojson", "table", "plot")]
                if files:
                    method_lines.append("Downloads: " + "; ".join(files) + ".")
    return "\n\n".join(parts + (["\n".join(f"- {m}" for m in method_lines)] if method_lines else []))
