"""What the side panels show: the image (with the user's prompts drawn), the slider, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.tools import REGISTRY
from rschat.tools.base import result_color
from rschat.tools.segment import CLASS_COLORS
from rschat.ui.session import UiSession

CHANGE_COLOR = "#ff0000"  # detect_changes paints changed pixels red

DOWNLOAD_KINDS = ("geotiff", "geojson", "table", "plot", "overlay")


def preview_path(session: UiSession, name: str) -> str:
    ws = session.ws
    path = ws.out_dir / f"preview_{name}_{ws.raster_uids[name]}.png"
    if not path.exists():
        write_png(path, rgb_preview(ws.rasters[name]))
    return str(path)


def with_prompts(session: UiSession) -> str | None:
    """The base image with points (green +, red -) and boxes (yellow) drawn on it."""
    ws = session.ws
    if session.base_image is None:
        return None
    if not session.base_is_raster or not (ws.points or ws.boxes or session.pending_corner):
        return session.base_image
    im = Image.open(session.base_image).convert("RGB")
    draw = ImageDraw.Draw(im)
    r = max(3, min(im.size) // 100)
    for x0, y0, x1, y1 in ws.boxes:
        draw.rectangle((x0, y0, x1, y1), outline=(255, 220, 0), width=max(2, r // 2))
    for x, y, positive in ws.points:
        color = (0, 230, 0) if positive else (255, 40, 40)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color, outline=(0, 0, 0))
    if session.pending_corner:
        x, y = session.pending_corner
        draw.line((x - 2 * r, y, x + 2 * r, y), fill=(255, 220, 0), width=2)
        draw.line((x, y - 2 * r, x, y + 2 * r), fill=(255, 220, 0), width=2)
    out = ws.out_dir / f"prompts_{len(ws.points)}_{len(ws.boxes)}_{abs(hash(session.pending_corner))}.png"
    for old in ws.out_dir.glob("prompts_*.png"):  # one drawing per session, not one per click
        old.unlink(missing_ok=True)
    write_png(out, np.asarray(im))
    return str(out)


def refresh(session: UiSession) -> dict[str, Any]:
    """Values for the image panel, slider and downloads from the session's latest state."""
    ws = session.ws
    shown = ws.shown_results()  # the results the last answer used (none computed from images since replaced)
    last = shown[-1] if shown else None
    slider = None
    files: list[str] = []
    if "before" in ws.rasters and "after" in ws.rasters:
        slider = (preview_path(session, "before"), preview_path(session, "after"))
    # Prompts are in pixels of the first image: the single image, or the pair's before image
    # (whose grid the after image is reprojected onto).
    shown_raster = "image" if "image" in ws.rasters else "before" if "before" in ws.rasters else None
    session.base_image, session.base_is_raster = None, False
    if shown_raster:
        session.base_image, session.base_is_raster = preview_path(session, shown_raster), True
    # every file of the answer's results: a two-part answer offers both parts' downloads
    files = list(dict.fromkeys(str(a.path) for s in shown for a in s.result.artifacts if a.kind in DOWNLOAD_KINDS))
    if last is not None:
        res = last.result
        overlay, plot = res.artifact("overlay"), res.artifact("plot")
        if overlay is not None and _same_size(overlay.path, session.base_image):
            session.base_image, session.base_is_raster = str(overlay.path), True
        elif overlay is not None:
            # A result on the pair's other image (512 x 511 against 512 x 512): shown, since it
            # is what was asked for, but clicks on it would not be the first image's pixels.
            session.base_image, session.base_is_raster = str(overlay.path), False
        elif plot is not None:
            session.base_image, session.base_is_raster = str(plot.path), False
        before, after = res.artifact("before_preview"), res.artifact("after_preview")
        if before is not None and after is not None:
            slider = (str(before.path), str(after.path))
    return {"image": with_prompts(session), "slider": slider, "files": files or None}


def overlay_legend(session: UiSession) -> str:
    """A line under the image panel saying what the colours of the overlay shown mean
    (HTML; empty when the panel shows a plain image)."""
    shown = session.ws.shown_results()
    last = shown[-1] if shown else None
    if last is None or session.base_image is None:
        return ""
    overlay = last.result.artifact("overlay")
    if overlay is None or session.base_image != str(overlay.path):
        return ""

    def swatch(color: str, text: str) -> str:
        return f'<i style="background:{color}"></i>{text}'

    cover = last.result.kept.target
    if last.tool == "detect_changes" and cover not in (None, "change"):  # a land-cover class lost and gained
        name = cover.replace("_", " ")
        return (
            "Overlay: "
            + swatch(CHANGE_COLOR, f"{name} lost")
            + swatch("#2878ff", f"{name} gained")
            + " (on the after image)"
        )
    if last.tool == "detect_changes":
        return "Overlay: " + swatch(CHANGE_COLOR, "changed") + " (on the after image)"
    layer = REGISTRY[last.tool].layer if last.tool in REGISTRY else None
    if last.tool in ("segment", "describe_scene") or (layer is not None and layer.class_colors):
        return "Land cover: " + "".join(swatch(c, k.replace("_", " ")) for k, c in CLASS_COLORS.items())
    if last.tool == "count_objects":  # the boxes' colours, as count_objects draws them
        if last.result.kept.target == "building":
            return "Overlay: " + swatch("#00ffff", overlay.label)
        if last.result.kept.target == "tree":
            return "Overlay: " + swatch("#ff2828", "tree crowns") + swatch("#ffc800", "leafless or dead crowns")
        return "Overlay: " + swatch("#ff2828", overlay.label)
    color = result_color(layer, last.id) if layer is not None else "#ffdc00"
    return "Overlay: " + swatch(color, overlay.label)


def _same_size(path: Path, other: str | None) -> bool:
    """An overlay can replace the base image only if clicks on it mean the same pixels."""
    if other is None:
        return True
    with Image.open(path) as a, Image.open(other) as b:
        return a.size == b.size
