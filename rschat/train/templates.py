"""Phrasings and box formats of the instruction data, per model family.

Each task has a pool of phrasings; ``pick`` chooses one with the caller's seeded
``random.Random``, so the same seed gives the same data. Boxes arrive in pixels of the
original image (x right, y down, end exclusive) and are written in the convention each
family was pre-trained on, so fine-tuning teaches the task and not a new coordinate
system (see rschat/train/build_data.py for the reasons and sources).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava")
STYLES = ("plain", "geochat")

# Qwen2-VL's image processor defaults (transformers Qwen2VLImageProcessor, shared by
# Qwen2.5-VL): the model sees the image resized by smart_resize to sides that are
# multiples of 28 px with a pixel count within these bounds.
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280

PHRASES: dict[str, tuple[str, ...]] = {
    "count": (
        "How many {plural} are there in this image?",
        "Count the {plural} in the image.",
        "What is the number of {plural} visible here?",
        "How many {plural} can you see?",
    ),
    "count_answer": ("{n}", "There are {n} {noun}.", "I count {n} {noun}."),
    "presence": (
        "Is there a {label} in this image?",
        "Are there any {plural} in the image?",
        "Does the image contain {article} {label}?",
    ),
    "presence_answer": ("Yes.", "Yes, there are {n} {noun}."),
    "identify": (
        "What is in the region {box}?",
        "What object is inside {box}?",
        "Identify the object in {box}.",
        "Describe the region {box} in a few words.",
    ),
    "identify_answer": ("{article} {label}", "It is {article} {label}.", "{Article} {label}."),
    "refer": (
        "Where is the largest {label}?",
        "Give the bounding box of the largest {label}.",
        "Locate the biggest {label} in the image.",
    ),
    "ground": (
        "Locate every {label} in the image.",
        "Give the bounding boxes of all {plural}.",
        "Detect all {plural} and output their boxes.",
        "Find the {plural} in this image.",
    ),
    "change_any": (
        "Has anything changed between the two images?",
        "Is there any change between the before and after images?",
        "Did the scene change from the first image to the second?",
    ),
    "change_yes": ("Yes.", "Yes, part of the scene changed."),
    "change_no": ("No.", "No, nothing changed."),
    "change_share": (
        "What share of the image changed?",
        "What percentage of the area changed between the two dates?",
        "How much of the scene changed, in percent?",
    ),
    "change_share_answer": ("{percent}%", "About {percent}% of the image changed."),
    "change_area": (
        "What is the changed area?",
        "How large is the area that changed?",
        "What ground area changed between the two images?",
    ),
    "change_area_answer": ("{m2} m2 ({ha} ha)", "About {m2} m2 ({ha} ha) changed."),
    "change_where": (
        "Where is the largest changed region?",
        "Locate the biggest change between the two images.",
        "Give the bounding box of the largest change.",
    ),
    "caption": (
        "Describe this image.",
        "Write a short caption for this remote sensing image.",
        "What does this image show?",
        "Give a brief description of the scene.",
    ),
    "vqa_suffix": (
        "Answer the question using a single word or phrase.",
        "Answer with a single word or number.",
    ),
}

# GeoChat's task tokens (Kuckreja et al., 2024): the task is named at the start of the
# question so one model can tell referring, grounding and region captioning apart.
GEOCHAT_TAGS = {"identify": "[identify]", "refer": "[refer]", "ground": "[grounding]"}


def pick(rng: random.Random, task: str, **values: object) -> str:
    """One phrasing of ``task`` chosen by ``rng``, filled with ``values``."""
    return rng.choice(PHRASES[task]).format(**values)


def plural(noun: str) -> str:
    """English plural of a label (tree -> trees, bus -> buses, city -> cities)."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def noun_for(label: str, n: int) -> str:
    return label if n == 1 else plural(label)


def qwen_resized(width: int, height: int, max_pixels: int = QWEN_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) the Qwen2-VL / Qwen2.5-VL processor resizes an image to: the
    smart_resize of transformers' Qwen2VLImageProcessor, copied so that building data
    needs no torch."""
    factor, min_pixels = QWEN_FACTOR, QWEN_MIN_PIXELS
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


@dataclass(frozen=True)
class BoxWriter:
    """Writes pixel boxes of one image in one family's convention."""

    family: str
    width: int  # pixels of the original image
    height: int
    style: str = "plain"  # llava only: "geochat" for {<x1><y1><x2><y2>|<0>} and task tags
    max_pixels: int = QWEN_MAX_PIXELS  # Qwen2.5-VL: the processor's pixel budget

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; expected one of {', '.join(STYLES)}")

    def _scaled(self, box: Sequence[float], scale_x: float, scale_y: float, top: float) -> list[float]:
        x0, y0, x1, y1 = box
        values = [x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y]
        return [min(max(v, 0.0), top) for v in values]

    def qwen2(self, box: Sequence[float]) -> list[int]:
        """Integers on a 0-1000 grid, whatever the image size (Qwen-VL, Qwen2-VL)."""
        return [round(v) for v in self._scaled(box, 1000 / self.width, 1000 / self.height, 1000)]

    def qwen25(self, box: Sequence[float]) -> list[int]:
        """Absolute pixels of the image as the processor resized it (Qwen2.5-VL)."""
        w, h = qwen_resized(self.width, self.height, self.max_pixels)
        x0, y0, x1, y1 = self._scaled(box, w / self.width, h / self.height, max(w, h))
        return [round(min(x0, w)), round(min(y0, h)), round(min(x1, w)), round(min(y1, h))]

    def unit(self, box: Sequence[float]) -> list[float]:
        """Fractions of the width and height, 0-1 (LLaVA-1.5's referring data)."""
        return [round(v, 2) for v in self._scaled(box, 1 / self.width, 1 / self.height, 1.0)]

    def region(self, box: Sequence[float]) -> str:
        """A box named in a question ("what is in <box>?")."""
        if self.family == "qwen2_vl":
            (a, b, c, d) = self.qwen2(box)
            return f"<|box_start|>({a},{b}),({c},{d})<|box_end|>"
        if self.family == "qwen2_5_vl":
            return json.dumps({"bbox_2d": self.qwen25(box)})
        if self.style == "geochat":
            return self._geochat(box)
        return "[{:.2f}, {:.2f}, {:.2f}, {:.2f}]".format(*self.unit(box))

    def _geochat(self, box: Sequence[float]) -> str:
        # GeoChat: integers 0-100 and a rotation angle in degrees (0: our boxes are axis-aligned)
        a, b, c, d = (round(v * 100) for v in self.unit(box))
        return f"{{<{a}><{b}><{c}><{d}>|<0>}}"

    def answer(self, boxes: Sequence[Sequence[float]], label: str) -> str:
        """The gpt turn that gives boxes of ``label`` (one or many)."""
        if self.family == "qwen2_vl":
            spans = "".join(self.region(b) for b in boxes)
            return f"<|object_ref_start|>{label}<|object_ref_end|>{spans}"
        if self.family == "qwen2_5_vl":
            items = [{"bbox_2d": self.qwen25(b), "label": label} for b in boxes]
            return "```json\n" + json.dumps(items) + "\n```"
        return ", ".join(self.region(b) for b in boxes) if self.style == "geochat" else self._llava(boxes, label)

    def _llava(self, boxes: Sequence[Sequence[float]], label: str) -> str:
        return "; ".join(f"{label} {self.region(b)}" for b in boxes)

    def tagged(self, task: str, question: str) -> str:
        """The question with the family's task tag in front, where it has one."""
        tag = GEOCHAT_TAGS.get(task) if self.family == "llava" and self.style == "geochat" else None
        return f"{tag} {question}" if tag else question
