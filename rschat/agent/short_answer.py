"""Short answers to closed questions: "yes", "12", "4693 m2", "urban".

One place derives them from the plan's focus (presence, count, area, rural/urban) and the
figures of the turn's results, so no tool's answer() has to know about them. The responder
states the short answer first ("**Yes.**", "**12**"); ``parse`` reads it back from an
answer's first line, and normalises a model's own reply (yes/no, a number) the same way,
so lite and full mode fill ``Step.short_answer`` through one function.
"""

from __future__ import annotations

import re
from typing import Any

from rschat.agent.vocabulary import AREA_UNIT_M2, COUNT_BOUND_FOCUS
from rschat.geo.shapes import within
from rschat.tools.analyze_timeseries import extreme_row
from rschat.tools.base import ToolResult
from rschat.tools.count_objects import equal_area_diameter_m

# segment's own threshold: the short answer never contradicts the tool's sentence.
from rschat.tools.segment import PRESENT_PERCENT, URBAN_MAX_GSD_M

# Built-up share (% of the image) from which a scene reads as urban. Set on the CORINE-like
# convention that continuous urban fabric is mostly sealed; discontinuous suburbs sit at
# 20-50%, rural land with farms and villages under ~10-15%.
URBAN_BUILT_PERCENT = 15.0
# Ground under buildings (%) from which a scene reads as urban: suburbs of detached houses
# have 10-25% of their ground under roofs, city blocks more, farmland and forest a few %.
URBAN_BUILDINGS_PERCENT = 10.0

_NUMBER = r"-?\d+(?:[.,]\d+)*"
_LEAD = re.compile(r"^\s*\*\*(?P<short>[^*\n]{1,40}?)\.?\*\*", re.S)
_MODEL_YES_NO = re.compile(r"^\W*(yes|no)\b", re.I)
# "12 buildings", "4693 m2", "63.8% of the trees", "-0.07": the number, its unit kept.
_MODEL_NUMBER = re.compile(
    rf"^[^\w-]*(?:there (?:is|are) |about |approximately )?({_NUMBER})(?:\s*(m2|m²)\b|(%))?", re.I
)
_MODEL_CLASS = re.compile(r"^\W*(?:it is |it's |this is )?(?:an? )?(rural|urban)\b", re.I)


def _presence(result: ToolResult, target: str | None) -> str | None:
    d = result.data
    if (selected := d.get("selected_count")) is not None:  # "is there a large water area?"
        return "yes" if selected > 0 else "no"
    if "count" in d:
        return "yes" if (d["count"] or 0) > 0 else "no"
    if target and f"{target}_percent" in d:
        return "yes" if (d[f"{target}_percent"] or 0.0) >= PRESENT_PERCENT else "no"
    return None


def _count(result: ToolResult, target: str | None) -> str | None:
    d = result.data
    if (appeared := d.get("appeared_count")) is not None:  # building change: "how many new buildings?"
        return str(int(appeared))
    if (selected := d.get("selected_count")) is not None:
        return str(int(selected))
    if "count" in d and d["count"] is not None:
        return str(int(d["count"]))
    if target and d.get(f"{target}_region_count") is not None:
        return str(int(d[f"{target}_region_count"]))  # type: ignore[arg-type]
    return None


def _area(result: ToolResult, target: str | None) -> str | None:
    """The area a class covers in the whole image (not its largest region); unknown
    (None) without a pixel size."""
    d = result.data
    if d.get("appeared_area_m2") is not None:  # building change: "how much area do the new buildings cover?"
        m2 = d.get("appeared_area_m2")
    elif d.get("selected_count") is not None:
        m2 = d.get("selected_area_m2")
    elif "count" in d:  # counted objects: their footprints together (None for boxes)
        m2 = d.get("area_m2")
    elif "changed_area_m2" in d and d.get("lost_m2") is None:  # "what changed?" then "how much is that in acres?"
        m2 = d.get("changed_area_m2")
    else:
        m2 = d.get(f"{target}_area_m2") if target else d.get("area_m2")
    return None if m2 is None else f"{round(float(m2))} m2"  # type: ignore[arg-type]


# The focus of "how many (change regions, water areas) are larger than 10 ha?": regions of a
# result within area bounds, 'regions_within:MIN:MAX' in m2 (either may be empty).
REGIONS_WITHIN = "regions_within:"


def regions_within_focus(bounds: dict[str, float]) -> str:
    low, high = bounds.get("min_area_m2"), bounds.get("max_area_m2")
    return f"{REGIONS_WITHIN}{'' if low is None else low:}:{'' if high is None else high}"


def regions_within(result: ToolResult, focus: str) -> tuple[list[Any], int] | None:
    """(the result's regions within the focus's bounds, how many regions it has), or None
    when it has no regions or their areas are unknown (no pixel size)."""
    regions = result.kept.regions
    if regions is None or "count" in result.data or any(r.area_m2 is None for r in regions):
        return None
    low, high = (float(v) if v else None for v in focus.removeprefix(REGIONS_WITHIN).split(":"))
    return [r for r in regions if within(r.area_m2, low, high)], len(regions)


def _extreme(result: ToolResult, focus: str) -> str | None:
    """The largest (or smallest) counted object's area, else the largest region's (change
    regions, a class's areas: kept largest first)."""
    pick = max if focus == "largest" else min
    if "count" in result.data:
        sizes = [d.area_m2 for d in result.kept.detections or [] if d.area_m2 is not None]
        return f"{round(pick(sizes))} m2" if sizes else None
    regions = result.kept.regions or []
    if not regions or regions[0].area_m2 is None:
        return None
    return f"{round(float((regions[0] if focus == 'largest' else regions[-1]).area_m2))} m2"  # type: ignore[arg-type]


def _percent(result: ToolResult, target: str | None) -> str | None:
    """A share of the analysed area: what changed, the class asked for, or the counted
    objects' footprints ('21.6%')."""
    d = result.data
    for key in ("changed_percent", f"{target}_percent" if target else "", "cover_percent"):
        if key and d.get(key) is not None:
            return f"{float(d[key]):.1f}%"  # type: ignore[arg-type]
    return None


def _land_use(d: dict[str, Any], focus: str) -> str | None:
    """Residential or industrial land of a satellite image (the land-use model's shares):
    'is there an industrial area?' yes or no; 'is there a residential building?' yes where
    such land is found, unknown where not (a farm is below a 640 m tile); 'how much
    residential land?' its share."""
    use = focus.split(":")[1]
    share = d.get(f"{use}_land_percent")
    if share is None:
        return None
    if focus.startswith("land_use_share:"):
        return f"{float(share):.1f}%"  # type: ignore[arg-type]
    if focus.startswith("land_use_area:"):
        return _m2(None if d.get(f"{use}_land_ha") is None else float(d[f"{use}_land_ha"]) * 1e4)  # type: ignore[arg-type]
    if float(share) > 0:  # type: ignore[arg-type]
        return "yes"
    return None if focus.endswith(":buildings") else "no"


def _rural_urban(result: ToolResult) -> str | None:
    """Urban by the buildings' share where the building model served (fine pixels): grey
    sand and rock read as built-up by colour (35-38% on the NEON forest tiles, whose
    buildings cover 0-1.7%; LEVIR's suburbs 22-40%); else by the built-up share."""
    buildings = result.data.get("buildings_percent")
    if buildings is None and "count" in result.data:  # a one-band image: the counted footprints' share
        buildings = result.data.get("cover_percent")
    if buildings is not None:
        return "urban" if float(buildings) >= URBAN_BUILDINGS_PERCENT else "rural"
    built = result.data.get("built_up_percent")
    if built is None or float(result.data.get("pixel_size_m") or 0.0) > URBAN_MAX_GSD_M:
        return None  # too coarse: built-up by colour is rock and bare ground as much as towns
    return "urban" if float(built) >= URBAN_BUILT_PERCENT else "rural"


COMPARISONS = {"more": (">", "more"), "less": ("<", "fewer"), "equal": ("=", "as many")}


def compare(relation: str, first: int, second: int) -> str:
    """'yes' or 'no' to 'are there more/less X than Y', 'is the number of X equal to Y'."""
    holds = {"more": first > second, "less": first < second, "equal": first == second}[relation]
    return "yes" if holds else "no"


def counted(result: ToolResult, target: str | None) -> int | None:
    """The number a result counted (objects, or the class's areas of the asked kind)."""
    found = _count(result, target)
    return None if found is None else int(found)


def derive(result: ToolResult, focus: str | None, target: str | None) -> str | None:
    """The short answer a result gives to a question with this focus, or None when the
    question is open or the result does not hold the figure."""
    if focus == "presence":
        return _presence(result, target)
    if focus == "count":
        return _count(result, target)
    if focus in ("largest", "smallest"):  # "how big is the largest building?", "... change region?"
        return _extreme(result, focus)
    if focus in ("count_dead", "count_living"):  # "how many dead trees?", "and how many living ones?"
        dead, every = result.data.get("dead_or_leafless"), result.data.get("count")
        if dead is None or every is None:
            return None
        return str(int(dead) if focus == "count_dead" else int(every) - int(dead))
    if focus == "count_gone":  # building change: "how many buildings were demolished?"
        gone = result.data.get("gone_count")
        return None if gone is None else str(int(gone))
    if focus == "area":
        return _area(result, target)
    if focus is not None and focus.startswith(REGIONS_WITHIN):  # "how many change regions are larger than 10 ha?"
        found = regions_within(result, focus)
        return None if found is None else str(len(found[0]))
    if focus is not None and focus.startswith("cover_"):
        return _cover_change(result.data, focus)
    if focus == "fraction":  # "what share of the area changed?", "what percent is water?"
        return _percent(result, target)
    if focus in ("mean", "median", "min", "max") and f"value_{focus}" in result.data:  # "the mean elevation?"
        return f"{float(result.data[f'value_{focus}']):.2f}"  # type: ignore[arg-type]
    if focus in ("mean", "median", "min", "max") and f"index_{focus}" in result.data:  # "what is the mean NDVI?"
        return f"{float(result.data[f'index_{focus}']):.3f}"  # type: ignore[arg-type]
    if focus == "density":  # "what is the tree density?": counted objects per hectare
        per_ha = result.data.get("density_per_ha")
        return None if per_ha is None else f"{float(per_ha):.1f} per ha"
    if focus == "average_diameter":  # "what is the average crown diameter?": a circle of the mean size
        m2 = result.data.get("mean_size_m2")
        return None if m2 is None else f"{equal_area_diameter_m(float(m2)):.1f} m"
    if focus == "average":  # "how big is the average tree?": one object's mean size
        m2 = result.data.get("mean_size_m2")
        return None if m2 is None else f"{round(float(m2))} m2"
    if focus == "rural_urban":
        return _rural_urban(result)
    if focus is not None and focus.startswith("land_use"):
        return _land_use(result.data, focus)
    if focus is not None and focus.startswith("date:"):  # "what is the NDVI on 2016-06-15?": one row
        day = focus.split(":", 1)[1]
        rows = [r for r in result.kept.rows or [] if str(r.get("date") or "").startswith(day)]
        return f"{float(rows[0]['mean']):.3f}" if len(rows) == 1 else None
    if focus is not None and focus.startswith("date_of:"):  # "which year had the lowest NDVI?"
        row = extreme_row(result, focus)
        return None if row is None else str(row["date"] or row["image"])
    if focus and (bound := COUNT_BOUND_FOCUS.fullmatch(focus)):  # "are there more than 10 buildings?"
        counted_now = _count(result, target)
        if counted_now is None:
            return None
        limit = int(bound.group(2))
        return "yes" if (int(counted_now) > limit if bound.group(1) == "more" else int(counted_now) < limit) else "no"
    return _image_info(result, focus)


def _m2(value: object) -> str | None:
    return None if value is None else f"{round(float(value))} m2"  # type: ignore[arg-type]


def _cover_change(d: dict[str, Any], focus: str) -> str | None:
    """A class's loss and gain ('how much forest was lost?', 'did the lake shrink?')."""
    lost_or_gained = "lost" if "_lost" in focus or focus == "cover_shrank" else "gained"
    if focus in ("cover_lost", "cover_gained"):  # "how much forest was lost?"
        return _m2(d.get(f"{lost_or_gained}_m2"))
    if focus == "cover_net":  # "what is the net change in forest?": gained less lost, negative for a loss
        lost, gained = d.get("lost_m2"), d.get("gained_m2")
        return None if lost is None or gained is None else _m2(float(gained) - float(lost))
    if focus in ("cover_lost_largest", "cover_gained_largest"):  # "how big is the largest patch lost?"
        return _m2(d.get(f"{lost_or_gained}_largest_m2"))
    if focus in ("cover_share_lost", "cover_share_gained"):  # "what percent of the forest was lost?"
        before, px = d.get("cover_before_pixels"), d.get(f"{lost_or_gained}_pixels")
        return None if not before or px is None else f"{100.0 * float(px) / float(before):.1f}%"
    if focus in ("cover_lost_count", "cover_gained_count"):  # "how many patches of forest were lost?"
        n = d.get(f"{lost_or_gained}_patches")
        return None if n is None else str(int(n))
    if focus in ("cover_shrank", "cover_grew"):  # "did the lake shrink?": its net change, in pixels
        lost, gained = d.get("lost_pixels"), d.get("gained_pixels")
        if lost is None or gained is None:
            return None
        return "yes" if (lost > gained if focus == "cover_shrank" else gained > lost) else "no"
    if focus in ("cover_any_lost", "cover_any_gained"):  # "was forest lost?": any of it
        px = d.get(f"{lost_or_gained}_pixels")
        return None if px is None else ("yes" if px > 0 else "no")
    return None


def _image_info(result: ToolResult, focus: str | None) -> str | None:
    """'5 m', 'EPSG:26914', '4' (bands): what image_info read from the file."""
    d = result.data
    if focus == "pixel_size" and d.get("pixel_size_m") is not None:
        return f"{float(d['pixel_size_m']):.3g} m"  # type: ignore[arg-type]
    if focus == "crs" and d.get("epsg") is not None:
        return f"EPSG:{int(d['epsg'])}"  # type: ignore[arg-type]
    if focus == "bands" and d.get("bands") is not None and "width_px" in d:
        return str(int(d["bands"]))  # type: ignore[arg-type]
    if focus in ("data", "no_data") and "valid_percent" in d:  # "how much of the image has no data?"
        valid = float(d["valid_percent"])  # type: ignore[arg-type]
        share = valid if focus == "data" else 100 - valid
        return f"{share:.2g}%" if 0 < share < 0.05 else f"{share:.1f}%"  # a few pixels: not '0.0%'
    return None


_DIGITS = {"m2": 0, "ha": 2, "km2": 3, "acres": 2, "sq ft": 0}
_ONE = {"m2": "m2", "ha": "ha", "km2": "km2", "acres": "acre", "sq ft": "sq ft"}


def in_unit(short: str | None, unit: str | None) -> str | None:
    """An area's short answer ('2415925 m2') in the unit asked ('241.59 ha'); anything
    else as it is."""
    if short is not None and unit is not None and short.endswith(" per ha") and unit != "ha":
        per_m2 = float(short.removesuffix(" per ha")) / AREA_UNIT_M2["ha"]  # "406.2 per ha" -> "164.4 per acre"
        value = per_m2 * AREA_UNIT_M2[unit]
        digits = ".3g" if value < 0.1 else ".1f" if value < 1000 else ".0f"
        return f"{value:{digits}} per {_ONE[unit]}"
    if short is None or unit is None or unit == "m2" or not short.endswith(" m2"):
        return short
    value = float(short.removesuffix(" m2")) / AREA_UNIT_M2[unit]
    return f"{value:.{_DIGITS[unit]}f} {unit}"


def lead(short: str) -> str:
    """How the answer states it first: '**Yes.**', '**12**', '**4,693 m2**', '**Urban.**'
    (thousands separated for reading; ``parse`` reads it back without them)."""
    if short in ("yes", "no", "rural", "urban"):
        return f"**{short.capitalize()}.**"
    # 5 digits and more: '2000' may be a year, '41,063,192 m2' is not
    if (m := re.fullmatch(r"(-?)(\d+)(\.\d+)?( .+|%)?", short)) and len(m.group(2)) > 4:
        return f"**{m.group(1)}{int(m.group(2)):,}{m.group(3) or ''}{m.group(4) or ''}**"
    return f"**{short}**"


def _clean_number(text: str) -> str:
    return text.replace(",", "")


def parse(text: str) -> str | None:
    """The short answer an answer text states first: the responder's bold lead, else a
    model's reply normalised (yes/no, rural/urban, a number, an area in m2); None for an
    open answer."""
    if m := _LEAD.match(text):
        short = m.group("short").strip().lower()
        if short in ("yes", "no", "rural", "urban") or re.fullmatch(
            rf"{_NUMBER}( m2| m| per (?:ha|acre|km2|m2)| ha| km2| acres| sq ft|%)?", short
        ):
            return _clean_number(short)
        if re.fullmatch(r"epsg:\d{4,6}", short):
            return short.upper()
        if re.fullmatch(r"(?:19|20)\d\d(?:-\d\d-\d\d)?", short):  # "which year had the lowest NDVI?"
            return short
        return None
    if text.lstrip().startswith("**"):  # a tool's bold title, not a reply to normalise
        return None
    if m := _MODEL_YES_NO.match(text):
        return m.group(1).lower()
    if m := _MODEL_CLASS.match(text):
        return m.group(1).lower()
    if m := _MODEL_NUMBER.match(text):
        return _clean_number(m.group(1)) + (" m2" if m.group(2) else "%" if m.group(3) else "")
    return None
