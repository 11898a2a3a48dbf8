"""Questions the vision-language model answers by looking at the images: free-form
visual questions, captions and grounding (boxes in its answer, drawn on the image).

The session's images go in as previews, labelled in the text ("image 1 = before,
2009-08-18"); the user's box is written in the model's own box convention.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PIL import Image, ImageDraw

from rschat.agent.prompts import template
from rschat.agent.workspace import Workspace
from rschat.geo.preview import rgb_preview
from rschat.geo.stack import stack_names

MAX_IMAGES = 4


def session_images(ws: Workspace) -> list[tuple[str, Image.Image]]:
    """(label, preview) for the images a question is about, in a stable order."""
    names: list[str] = [n for n in ("image", "before", "after") if n in ws.rasters]
    stack = stack_names(ws.rasters)
    if stack:
        names = [n for n in stack if n not in names][:MAX_IMAGES]
    out, seen = [], set()
    for name in names[:MAX_IMAGES]:
        r = ws.rasters[name]
        if id(r) in seen:  # an image paired with the one before it is also 'after' (or 'before')
            continue
        seen.add(id(r))
        label = name + (f", {r.date_label}" if r.date else "")
        out.append((label, Image.fromarray(rgb_preview(r))))
    return out


def build_messages(model: Any, ws: Workspace, message: str) -> tuple[list[dict], list[Image.Image]]:
    images = session_images(ws)
    content: list[dict] = []
    for i, (label, _) in enumerate(images, start=1):
        content += [{"type": "text", "text": f"Image {i} ({label}):"}, {"type": "image"}]
    box = ws.current_box()
    if box and images:
        w, h = model.seen_size(images[0][1])
        sx, sy = w / images[0][1].width, h / images[0][1].height
        scaled = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
        content.append(
            {"type": "text", "text": f"The user marked a box on image 1: {model.convention.to_model(scaled, w, h)}."}
        )
    content.append({"type": "text", "text": message})
    messages = [{"role": "system", "content": [{"type": "text", "text": template("system")}]}]
    for turn in ws.history[:-1][-6:]:  # earlier turns stay in the context (this turn is added below)
        messages.append({"role": turn["role"], "content": [{"type": "text", "text": turn["content"]}]})
    messages.append({"role": "user", "content": content})
    return messages, [im for _, im in images]


def stream_direct(model: Any, ws: Workspace, message: str) -> Iterator[str]:
    messages, images = build_messages(model, ws, message)
    yield from model.generate(messages, images, max_new_tokens=400)


def boxes_in_answer(model: Any, ws: Workspace, answer: str) -> list[tuple[float, float, float, float]]:
    """Boxes the model wrote, in pixels of image 1 (grounding)."""
    images = session_images(ws)
    if not images:
        return []
    first = images[0][1]
    w, h = model.seen_size(first)
    boxes = model.convention.from_model(answer, w, h)
    sx, sy = first.width / w, first.height / h
    return [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in boxes]


def draw_boxes(ws: Workspace, boxes: list[tuple[float, float, float, float]]) -> str:
    _, first = session_images(ws)[0]
    im = first.copy()
    draw = ImageDraw.Draw(im)
    for b in boxes:
        draw.rectangle(b, outline=(255, 60, 0), width=3)
    path = ws.out_dir / f"grounding_{len(ws.results)}_{len(boxes)}.png"
    im.save(path)
    return str(path)
