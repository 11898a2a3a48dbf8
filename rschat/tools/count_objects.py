"""Tool ``count_objects``: how many trees or buildings (lite), or other objects with SAM and
CLIP (full mode), with boxes on the image and points on the map."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from rschat.backends import counting_classical as cc
from rschat.geo.area import share_text
from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.places import place
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster, clip_box
from rschat.geo.shapes import Shape, Size, SizeKind, describe, describe_bounds, matches, size_unresolved, within
from rschat.geo.vector import PIXEL_COORDINATES, grid_lonlat, lat_lon_text, pixels_to_lonlat, write_geojson
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Layer,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    region_mask_of,
    scoped_raster,
)
from rschat.tools.count_detect import SUPPORTED, UNRELIABLE, detected

PHRASES = (Phrase("count", re.compile(r"\bhow many\b|\bcount|\bnumber of\b", re.I), 50),)


class CountArgs(Args):
    target: Literal["tree", "building", "vehicle", "ship", "pool", "solar_panel"]
    image: ImageName = "image"
    box: Box = None
    region: UseRegion = False
    within_previous_mask: bool = Field(False, description="count only inside the previous step's mask")
    size: Size | None = Field(
        None,
        description="only objects of this size (buildings: small < 100 m2 <= medium < 500 m2 <= large; trees: "
        "crowns small under 5 m across, medium 5-10 m, large 10 m or more)",
    )
    shape: Shape | None = Field(None, description="only objects of this outline (buildings)")
    min_area_m2: float | None = Field(None, ge=0, description="only objects larger than this (m2)")
    max_area_m2: float | None = Field(None, gt=0, description="only objects smaller than this (m2)")


class CountFigures(Figures):
    count: int
    density_per_ha: float | None
    pixel_size_m: float | None
    dead_or_leafless: int | None = None  # trees only
    area_m2: float | None = None  # the counted objects' footprints together, where outlined
    mean_size_m2: float | None = None  # one object's mean footprint (or crown, from its box)
    cover_percent: float | None = None  # share of the analysed area under the footprints (outlined objects)


def _selected(dets: list[cc.Detection], args: CountArgs, gsd: float | None) -> list[cc.Detection]:
    """The detections of the asked size and shape, on the image's own pixel size (None:
    unknown, never the assumed one). Trees and the rules' buildings are boxes, not
    outlines: their size is the box's ellipse (a crown) or the box, and their shape cannot
    be judged, which the user is told rather than given a count of none."""
    bounded = args.min_area_m2 is not None or args.max_area_m2 is not None
    if args.size is None and args.shape is None and not bounded:
        return dets
    if (why := size_unresolved(args.size, gsd, _kind(args))) is not None:
        raise InputError(f"I can't sort the {SUPPORTED.get(args.target, args.target)} by size: {why}.")
    if bounded and gsd is None:
        raise InputError(
            f"I can't sort the {SUPPORTED.get(args.target, args.target)} by area: the image has no pixel size "
            "(say 'the pixel size is X m')."
        )
    if args.shape is not None and any(d.shape is None and d.area_m2 is None for d in dets):
        raise InputError(
            f"Lite mode outlines buildings with the learned model only; these {SUPPORTED.get(args.target, args.target)} "
            f"are boxes, so I can't tell which are {args.shape}. Ask without the shape to count them all."
        )
    return [
        d
        for d in dets
        if matches(_area(d, gsd), d.shape, args.size, args.shape, _kind(args))
        and within(_area(d, gsd), args.min_area_m2, args.max_area_m2)
    ]


def _what(args: CountArgs, plural: str) -> str:
    """'large (>= 500 m2) buildings', 'trees larger than 20 m2': what was counted."""
    bounds = describe_bounds(args.min_area_m2, args.max_area_m2)
    return " ".join(w for w in (describe(args.size, args.shape, _kind(args)), plural, bounds) if w)


def _kind(args: CountArgs) -> SizeKind:
    """Trees are sized by crown, everything else by footprint (``rschat.geo.shapes``)."""
    return "tree" if args.target == "tree" else "area"


def _area(d: cc.Detection, gsd: float | None) -> float | None:
    if d.area_m2 is not None or gsd is None:
        return d.area_m2
    w, h = d.box[2] - d.box[0], d.box[3] - d.box[1]
    return w * h * gsd**2 * (np.pi / 4 if d.kind.startswith("tree") else 1.0)


def _mean_size_m2(dets: list[cc.Detection], gsd: float | None) -> float | None:
    sizes = [a for d in dets if (a := _area(d, gsd)) is not None]
    return float(np.mean(sizes)) if sizes else None


def _footprints_m2(dets: list[cc.Detection]) -> float | None:
    """The outlined objects' area together; None when any is only a box."""
    if any(d.area_m2 is None for d in dets):
        return None
    return float(sum(d.area_m2 or 0.0 for d in dets))


def _draw(rgb: np.ndarray, dets: list[cc.Detection]) -> np.ndarray:
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    for d in dets:
        color = (255, 200, 0) if "dead" in d.kind else (0, 255, 255) if d.kind == "building" else (255, 40, 40)
        draw.rectangle(d.box, outline=color, width=2)
    return np.asarray(im)


def _geojson(dets: list[cc.Detection], raster: Raster, offset: tuple[int, int]) -> dict:
    """Points (centres) and boxes of detections, EPSG:4326 when georeferenced."""
    boxes = np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    # per detection: its centre, then its box's corners as a closed ring
    xs = np.stack([(x0 + x1) / 2, x0, x1, x1, x0, x0], axis=1)
    ys = np.stack([(y0 + y1) / 2, y0, y0, y1, y1, y0], axis=1)
    points = pixels_to_lonlat(raster, xs.ravel(), ys.ravel(), offset)
    gsd = raster.pixel_size_m()
    feats = []
    for i, d in enumerate(dets):
        centre, *ring = points[6 * i : 6 * i + 6]
        props: dict = {"id": i + 1, "kind": d.kind, "score": round(d.score, 3)}
        # Plain numbers, so a GIS table (the GeoPackage drops the lists below) keeps each
        # crown's size: the box's mean side, as the crown detectors predict a diameter.
        if gsd and d.kind.startswith("tree"):
            props["crown_diameter_m"] = round(gsd * ((d.box[2] - d.box[0]) + (d.box[3] - d.box[1])) / 2, 2)
        if d.area_m2 is not None:
            props["area_m2"] = round(d.area_m2, 1)
        props |= {"box_px": [round(v, 1) for v in d.box], "footprint": ring}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": centre}, "properties": props})
    out: dict = {"type": "FeatureCollection", "features": feats}
    if not raster.georeferenced:
        out["coordinates"] = PIXEL_COORDINATES
    return out


_OUTLINED = {"building": "footprints", "tree": "crown boxes"}


def outlines_geojson(dets: list[cc.Detection], raster: Raster, offset: tuple[int, int]) -> dict:
    """Polygons of detections for a GIS: the footprint where the detector outlines it (the
    building model), else its box (a tree's crown box), EPSG:4326 when georeferenced."""
    rings = [
        d.outline
        or (
            (d.box[0], d.box[1]),
            (d.box[2], d.box[1]),
            (d.box[2], d.box[3]),
            (d.box[0], d.box[3]),
            (d.box[0], d.box[1]),
        )
        for d in dets
    ]
    xs = np.array([x for ring in rings for x, _ in ring], dtype=np.float64)
    ys = np.array([y for ring in rings for _, y in ring], dtype=np.float64)
    points = pixels_to_lonlat(raster, xs, ys, offset)
    feats, start = [], 0
    for i, (d, ring) in enumerate(zip(dets, rings, strict=True)):
        coords = points[start : start + len(ring)]
        start += len(ring)
        props = {"id": i + 1, "kind": d.kind, "outline": "footprint" if d.outline else "box"}
        if d.area_m2 is not None:
            props["area_m2"] = round(d.area_m2, 1)
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [coords]}, "properties": props})
    out: dict = {"type": "FeatureCollection", "features": feats}
    if not raster.georeferenced:
        out["coordinates"] = PIXEL_COORDINATES
    return out


def _detect_with_sam_clip(target: str, raster: Raster, ctx: ToolContext) -> tuple[list[cc.Detection], str, list[str]]:
    """Full mode: SAM's masks that CLIP names as the target, as detections (boxes)."""
    from rschat.backends.loading import load_clip, load_sam
    from rschat.backends.named_objects import named_objects
    from rschat.tools.full_mode import require

    sam = require(load_sam, ctx, "Counting with SAM")
    clip = require(load_clip, ctx, "Naming objects with CLIP")
    label = target.replace("_", " ") + "s"
    found, probs = named_objects(sam, clip, rgb_preview(raster), label)
    dets = [cc.Detection(tuple(float(v) for v in m.box), p, target) for m, p in zip(found, probs, strict=True)]  # type: ignore[arg-type]
    method = f"segment-anything ({sam.name}) masks that CLIP ({clip.name}) names '{label}'"
    return dets, method, ["counted as SAM masks named by CLIP: touching objects merge and small ones are missed"]


def _singular(plural: str) -> str:
    """'1 tree', '1 large building', '1 building larger than 200 m2', not '1 trees'."""
    m = re.match(r"(.*?)s( (?:larger|smaller) than .*| of [\d,.]+-.*)?$", plural)
    return m.group(1) + (m.group(2) or "") if m else plural


def _in_box(dets: list[cc.Detection], offset: tuple[int, int], crop: Raster) -> list[cc.Detection]:
    """Detections of the whole image whose centres lie in the crop, in the crop's pixels."""
    ox, oy = offset
    out = []
    for d in dets:
        cx, cy = d.center[0] - ox, d.center[1] - oy
        if 0 <= cx < crop.width and 0 <= cy < crop.height:
            x0, y0, x1, y1 = d.box
            box = (
                max(0.0, x0 - ox),
                max(0.0, y0 - oy),
                min(float(crop.width), x1 - ox),
                min(float(crop.height), y1 - oy),
            )
            out.append(replace(d, box=box))
    return out


def _inside(dets: list[cc.Detection], mask: np.ndarray) -> list[cc.Detection]:
    h, w = mask.shape
    return [d for d in dets if mask[min(int(d.center[1]), h - 1), min(int(d.center[0]), w - 1)]]


def _in_region(
    dets: list[cc.Detection], args: CountArgs, ctx: ToolContext, raster: Raster, scope: str
) -> tuple[list[cc.Detection], str, np.ndarray | None, list[str]]:
    """The detections on pixels with data (a warp's black edge found 3 of 6 'buildings'),
    and inside the region drawn on the map when the call asks for it; with the mask of
    what was counted (None for every pixel) and a note on the no data left out."""
    valid = raster.valid_mask()
    region = region_mask_of(args.region, ctx, raster)
    area = region if region is not None else np.ones_like(valid)
    missing = 100 * (1 - float((area & valid).sum()) / max(int(area.sum()), 1))
    where = "the region drawn on the map" if region is not None else "the box" if args.box else "the image"
    note = [f"{share_text(missing)} of {where} is no data: left out of the count and of the area counted"]
    note = note if missing > 0 else []
    if region is None:
        return (dets, scope, None, note) if valid.all() else (_inside(dets, valid), scope, valid, note)
    inside = region & valid
    return _inside(dets, inside), scope + ", inside the region drawn on the map", inside, note


def _previous_mask(ctx: ToolContext, raster: Raster, full: Raster, offset: tuple[int, int]) -> np.ndarray | None:
    """The previous step's mask on the counted raster's pixels: as it is when it was
    computed on the same crop, cut out when it covers the whole image; else None."""
    kept = ctx.previous.kept if ctx.previous is not None else None
    if kept is None or kept.mask is None:
        return None
    mask = kept.mask
    if mask.shape == (raster.height, raster.width) and _same_grid(kept.grid, raster):
        return mask
    if mask.shape == (full.height, full.width) and _same_grid(kept.grid, full):
        x0, y0 = offset
        return mask[y0 : y0 + raster.height, x0 : x0 + raster.width]
    return None


def _same_grid(grid: tuple[Any, Any] | None, raster: Raster) -> bool:
    """Whether a mask's grid is the raster's: a change mask lies on the before image's grid,
    and an after image of the same size on another grid would misplace it."""
    if grid is None or not raster.georeferenced:
        return True  # pixel grids: the same size is all there is to compare
    crs, transform = grid
    return bool(crs == raster.crs and transform is not None and transform.almost_equals(raster.transform))


def _detections(
    args: CountArgs, ctx: ToolContext, full: Raster, raster: Raster, offset: tuple[int, int]
) -> tuple[list[cc.Detection], str, list[str], list[str], float | None, str]:
    """(detections on the counted raster, method, limits, notes, pixel size, how) from SAM +
    CLIP where they serve the target, else the lite detectors."""
    st = ctx.settings
    if args.target in UNRELIABLE and st is not None and st.sam and st.clip:
        dets, method, limits = _detect_with_sam_clip(args.target, raster, ctx)
        return dets, method, limits, [], raster.pixel_size_m(), " (SAM masks named by CLIP)"
    if args.box:
        # Found on the whole image and kept where their centres fall in the box: a crop run
        # on its own finds other crowns at its edges, and a box could count more than the image.
        dets, method, limits, notes, gsd = detected(args.target, full)
        return _in_box(dets, offset, raster), method, limits, notes, gsd, ""
    return (*detected(args.target, raster), "")


def run(args: CountArgs, ctx: ToolContext) -> ToolResult:
    # 0. A large scene: the lite detector tile by tile from the file. Imported here because
    #    the tiled path reuses this module's figures and drawing (count_tiled imports them).
    if ctx.raster(args.image).source is not None and args.target in SUPPORTED:
        from rschat.tools.count_tiled import run_tiled

        return run_tiled(args, ctx, ctx.raster(args.image))
    # 1. Inputs: the image or its box, and which detector (lite rules, or SAM + CLIP).
    target = args.target
    full = ctx.raster(args.image)
    raster, scope = scoped_raster(args.image, args.box, ctx)
    offset = clip_box(args.box, full.width, full.height)[:2] if args.box else (0, 0)
    dets, method, limits, notes, gsd, how = _detections(args, ctx, full, raster, offset)
    plural = SUPPORTED.get(target, target.replace("_", " ") + "s")
    ctx.progress(0.7, f"{len(dets)} {plural} found")

    # 2. Restrict to the previous step's mask (chains such as "buildings that appeared"),
    #    to the drawn region, and to the asked size and shape.
    if args.within_previous_mask:
        prev = _previous_mask(ctx, raster, full, offset)
        if prev is None:
            notes.append("the previous step left no mask on this image's grid, so the count is not restricted to it")
        else:
            dets = _inside(dets, prev)
            scope += " inside the changed area"
    dets, scope, inside, no_data = _in_region(dets, args, ctx, raster, scope)
    notes += no_data
    dets = _selected(dets, args, known := raster.pixel_size_m())
    plural = _what(args, plural)

    # 3. Figures and artifacts.
    area_m2 = raster.area_m2(inside if inside is not None else np.ones((raster.height, raster.width), bool))
    figures = CountFigures(
        count=len(dets),
        density_per_ha=len(dets) / (area_m2 / 1e4) if area_m2 else None,
        pixel_size_m=gsd,
        area_m2=_footprints_m2(dets) if known else None,
        mean_size_m2=_mean_size_m2(dets, known),
    )
    figures.cover_percent = cover_percent(figures.area_m2, area_m2)
    if target == "tree":
        figures.dead_or_leafless = sum("dead" in d.kind for d in dets)
    path_geo = ctx.path(f"count_{target}.geojson")
    write_geojson(path_geo, _geojson(dets, raster, offset))
    path_shapes = ctx.path(f"count_{target}_outlines.geojson")
    write_geojson(path_shapes, outlines_geojson(dets, raster, offset))
    overlay = write_png(ctx.path(f"count_{target}.png"), _draw(rgb_preview(raster), dets))
    return ToolResult(
        summary=f"{len(dets)} {_singular(plural) if len(dets) == 1 else plural} in {scope}{how}",
        figures=figures,
        artifacts=[
            Artifact("overlay", overlay, f"{plural} (boxes)"),
            Artifact("geojson", path_geo, f"{plural} as points with boxes (GeoJSON)"),
            Artifact("geojson", path_shapes, f"{plural} as polygons: {_OUTLINED.get(target, 'boxes')} (GeoJSON)"),
        ],
        method=method,
        limits=limits,
        notes=notes,
        kept=_kept(dets, offset, target, scope, raster),
    )


def _kept(dets: list[cc.Detection], offset: tuple[int, int], target: str, scope: str, raster: Raster) -> Kept:
    """What follow-ups reuse, with the grid read, so a single object can be placed."""
    grid = (raster.crs, raster.transform) if raster.georeferenced else None
    return Kept(detections=dets, offset=offset, target=target, scope=scope, grid=grid, shape=raster.data.shape[1:])


def cover_percent(footprints_m2: float | None, analysed_m2: float | None) -> float | None:
    """The share (%) of the analysed area under the counted footprints: how rural/urban is
    judged where only buildings can be read (a panchromatic image)."""
    if footprints_m2 is None or not analysed_m2:
        return None
    return round(100.0 * footprints_m2 / analysed_m2, 2)


def _largest_text(result: ToolResult, f: CountFigures, source: str, smallest: bool = False) -> str:
    """'The largest of the 36 buildings covers 377 m2 ...' (or the smallest): by footprint,
    or by crown box."""
    dets, target = result.kept.detections, result.kept.target or "object"
    word = "smallest" if smallest else "largest"
    if not dets:
        return f"**None found**: no {SUPPORTED.get(target, target + 's')}, so there is no {word} one ({source})."
    sized = [(a, d) for d in dets if (a := _area(d, f.pixel_size_m)) is not None]
    if not sized:
        return f"The sizes are unknown: the image has no pixel size (say 'the pixel size is X m') ({source})."
    m2, big = (min if smallest else max)(sized, key=lambda t: t[0])
    x0, y0, x1, y1 = (round(v) for v in big.box)
    what = "footprint" if big.area_m2 is not None else "crown, from its box" if target == "tree" else "box"
    if any("were assumed" in n for n in result.notes):
        what += ", with the assumed pixel size"
    return (
        f"The {word} of the {len(dets)} {SUPPORTED.get(target, target + 's')} covers {m2:,.0f} m2 ({what}; "
        f"pixel box x {x0}-{x1}, y {y0}-{y1}){_where(result, big)} ({source})."
    )


def _where(result: ToolResult, det: cc.Detection) -> str:
    """', in the north-west, centred at 33.63840 N, 84.47894 W': where one object lies, in
    words and (georeferenced) in latitude and longitude, so it can be found on a map."""
    x, y = det.center
    kept = result.kept
    text = f", in {place(x, y, kept.shape[-1], kept.shape[-2])} of {kept.scope}" if kept.shape else ""
    if kept.grid is not None:
        ((lon, lat),) = grid_lonlat(*kept.grid, np.array([x]), np.array([y]))
        text += f", centred at {lat_lon_text(lat, lon)}"
    return text


def _average_text(result: ToolResult, f: CountFigures, source: str, diameter: bool = False) -> str:
    """'The 36 buildings average 142 m2 each (median 118 m2; footprints)'; for trees the
    crown from its box, with the diameter of a circle of that area."""
    dets, target = result.kept.detections, result.kept.target or "object"
    plural = SUPPORTED.get(target, target + "s")
    sizes = [a for d in dets if (a := _area(d, f.pixel_size_m)) is not None]
    if not dets:
        return f"**None found**: no {plural}, so there is no average size ({source})."
    if not sizes:
        return f"The sizes are unknown: the image has no pixel size (say 'the pixel size is X m') ({source})."
    mean, median = float(np.mean(sizes)), float(np.median(sizes))
    what = (
        "footprints"
        if all(d.area_m2 is not None for d in dets)
        else "crowns, from their boxes"
        if target == "tree"
        else "boxes"
    )
    if any("were assumed" in n for n in result.notes):
        what += ", with the assumed pixel size"
    across = f"{equal_area_diameter_m(mean):.1f} m"
    if diameter:  # "what is the average crown diameter?": the width first, the area behind it
        return (
            f"The {len(sizes)} {plural} are about {across} across on average (the diameter of a circle of their "
            f"mean area, {mean:,.0f} m2; median {median:,.0f} m2; {what}) ({source})."
        )
    text = f"The {len(sizes)} {plural} average {mean:,.0f} m2 each (median {median:,.0f} m2; {what})"
    if target == "tree":
        text += f": a crown about {across} across"
    return f"{text} ({source})."


def equal_area_diameter_m(area_m2: float) -> float:
    """The diameter of the circle of this area: a crown's or footprint's width."""
    return float(2 * np.sqrt(area_m2 / np.pi))


def answer(result: ToolResult, reading: Reading) -> str:
    f = result.figures
    assert isinstance(f, CountFigures)
    if reading.focus in ("largest", "smallest"):
        return _largest_text(result, f, reading.source, smallest=reading.focus == "smallest")
    if reading.focus in ("average", "average_diameter"):
        return _average_text(result, f, reading.source, diameter=reading.focus == "average_diameter")
    if reading.focus == "rural_urban" and f.cover_percent is not None:
        return (
            f"**Buildings** cover {f.cover_percent:.1f}% of {result.kept.scope} ({result.summary}; "
            f"{f.area_m2 or 0.0:,.0f} m2 of footprints). Land cover needs colour, so the buildings' share is what "
            f"tells rural from urban here ({reading.source})."
        )
    if reading.focus == "tree_health" and f.dead_or_leafless is not None:
        return _health_text(result, f, reading.source)
    text = f"**{result.summary}** ({reading.source})."
    if f.dead_or_leafless:
        text += f" {f.dead_or_leafless} of them {'looks' if f.dead_or_leafless == 1 else 'look'} leafless or dead."
    if f.density_per_ha is not None:
        text += f" That is {f.density_per_ha:,.1f} per ha."
    if f.area_m2 is not None and f.count:
        share = f"; {f.cover_percent:.1f}% of the area counted" if f.cover_percent is not None else ""
        text += f" Their footprints cover {f.area_m2:,.0f} m2 ({f.area_m2 / 1e4:,.2f} ha{share})."
    elif reading.focus == "area" and f.count:  # no pixel size: the count alone, said so
        text += " Their area is unknown: the image has no pixel size (say 'the pixel size is X m')."
    return text


def _health_text(result: ToolResult, f: CountFigures, source: str) -> str:
    """'Are the trees healthy?': how many look leafless or dead, the rest in leaf, and what
    lite mode cannot see (stress and disease before the leaves go)."""
    dead = f.dead_or_leafless or 0
    verb = "looks" if dead == 1 else "look"
    return (
        f"**{dead} of the {f.count} trees {verb} leafless or dead**; the other {f.count - dead} are in leaf "
        f"({result.summary}; {source}). That is as far as lite mode judges tree health from colour: stress, "
        "disease or drought before the leaves go needs a near-infrared band (with one, ask *what is the mean "
        "NDVI?*), and a leafless crown may be a deciduous tree in winter."
    )


HELP = "- **counting** trees and buildings with boxes on the image (*how many trees in this box?*)"


TOOL = Tool(
    name="count_objects",
    description=(
        "Count objects of one kind in an image: trees (crowns) or buildings (lite mode), or vehicles, ships, pools "
        "and solar panels (full mode, SAM + CLIP), optionally inside a box, the drawn region or the previous step's "
        "mask. Returns the count, density per ha, boxes drawn on the image and GeoJSON points."
    ),
    args=CountArgs,
    figures=CountFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=Layer("counted objects", "#ffcc00", points=True),
    help=HELP,
    needs=("image",),
)
