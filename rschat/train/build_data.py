"""``rschat train build-data``: instruction data for ``rschat train vlm`` from annotations.

Annotations (boxes, change masks, VQA pairs, captions) become single-turn conversations
by template, as GeoChat, LHRS-Bot and SkyEyeGPT built theirs, in the LLaVA JSON format::

    [{"id": "OSBS_029_count_0", "image": "/abs/or/relative/OSBS_029.tif",
      "conversations": [{"from": "human", "value": "<image>\\nHow many trees are there?"},
                        {"from": "gpt", "value": "61"}]}]

A before/after pair has ``"images": [before, after]`` and one ``<image>`` line per image.
Image paths are relative to the output file's folder when the image lies inside it, else
absolute. Each task draws its question (and answer wording) from a pool of phrasings with
``random.Random(--seed)``: the same seed gives the same file.

Kinds and what ``--from`` is:

- ``vqa``: a JSON list of ``{"image", "question", "answer", ...}`` (RSVQA as in
  ../shared/data/vqa/manifest.json); one conversation per entry, the answer as the gpt
  turn, the question followed by LLaVA-1.5's short-answer instruction.
- ``count`` and ``grounding``: a JSON list of ``{"image", "labels", "object"}`` (as in
  ../shared/data/counting/manifest.json), ``labels`` being a CSV with named columns xmin,
  ymin, xmax, ymax in any order (DeepForest's image_path,xmin,ymin,xmax,ymax,label or the
  NEON truth files' xmin,xmax,ymin,ymax), Pascal VOC XML, COCO JSON, or GeoJSON in a
  projected or geographic CRS (mapped to pixel boxes through the image's geotransform);
  ``--from`` may also be one COCO JSON file (images relative to it). ``count`` asks how
  many objects of each class and of the manifest's object (SOAP_061: 28 dead trees, 9
  alive trees, 37 trees) and whether they are present; ``grounding`` asks what is in a
  box (up to ``--per-image`` boxes per image), where the largest object of a class is,
  and for the boxes of all objects of a class.
- ``change``: a JSON list of ``{"before", "after", "label"}`` (as in
  ../shared/data/change/manifest.json; optional ``"pixel_size_m"``), the label a
  GeoTIFF/PNG mask where any non-zero pixel changed: is there change, the changed share
  in %, the changed area in m2 and ha when the pixel size is known (the mask's
  georeference, the entry's ``pixel_size_m``, else ``--pixel-size``), and the box of the
  largest 8-connected changed region.
- ``caption``: a JSON list of ``{"image", "captions": ["...", ...]}`` (``"caption": "..."``
  also works); one conversation per caption.

Boxes are written in each family's own pre-training convention, so fine-tuning teaches
the task rather than a new coordinate system:

- ``qwen2_vl``: integers on a 0-1000 grid whatever the image size, in Qwen-VL's special
  tokens: ``<|object_ref_start|>tree<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  (Qwen2-VL report, Wang et al. 2024; the tokens are in its tokenizer). A box named in a
  question is the ``<|box_start|>...<|box_end|>`` span alone.
- ``qwen2_5_vl``: absolute pixel coordinates, as JSON: an answer is a fenced ``json``
  block holding ``[{"bbox_2d": [x1, y1, x2, y2], "label": "tree"}, ...]`` (the output of
  the Qwen2.5-VL grounding cookbook), a box in a question ``{"bbox_2d": [...]}``.
  Qwen2.5-VL counts pixels of the image *as its processor resized it* (smart_resize:
  sides multiples of 28, at most ``--max-pixels``, transformers' default 1,003,520), so
  boxes are scaled to that size: a 400x400 image is seen at 392x392. Train with the same
  max_pixels.
- ``llava``: fractions of the width and height with 2 decimals, ``[0.12, 0.34, 0.56,
  0.78]``, after the label (LLaVA-1.5's referring data). ``--style geochat`` writes
  GeoChat's ``{<x1><y1><x2><y2>|<0>}`` (integers 0-100, rotation angle 0 for our
  axis-aligned boxes) and its task tags ``[identify]``, ``[refer]``, ``[grounding]`` in
  front of the question; the Qwen families have no task tags.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rschat.geo.errors import InputError
from rschat.train import annotations as ann
from rschat.train import templates as tpl

HELP = "turn annotations (VQA, boxes, change masks, captions) into LLaVA-format instruction data for rschat train vlm"

KINDS = ("vqa", "count", "grounding", "change", "caption")
Record = dict[str, Any]

EPILOG = """--from, by kind (paths relative to the manifest or a folder above it):
  vqa        [{"image", "question", "answer"}, ...]           (RSVQA, ../shared/data/vqa)
  count,     [{"image", "labels", "object"}, ...] or one COCO JSON; labels: CSV with
  grounding  named xmin,ymin,xmax,ymax columns, Pascal VOC XML, COCO JSON or GeoJSON
  change     [{"before", "after", "label", "pixel_size_m"?}, ...]; label: mask GeoTIFF/PNG
  caption    [{"image", "captions": ["...", ...]}, ...]
Boxes: qwen2_vl 0-1000 grid in <|box_start|>(x1,y1),(x2,y2)<|box_end|>; qwen2_5_vl
{"bbox_2d": [...]} in pixels of the processor's resized image; llava [0.12, 0.34, ...]
fractions, or GeoChat's {<x1><y1><x2><y2>|<0>} and [refer] tags with --style geochat."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--kind", required=True, choices=KINDS, help="which task to write")
    parser.add_argument(
        "--from", dest="source", required=True, metavar="MANIFEST", help="the annotations (formats below)"
    )
    parser.add_argument("--family", required=True, choices=tpl.FAMILIES, help="the model family, for its box format")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phrasing choice (default 0)")
    parser.add_argument(
        "--style", choices=tpl.STYLES, default="plain", help="llava only: 'geochat' boxes and task tags"
    )
    parser.add_argument(
        "--per-image", type=int, default=8, help="grounding: most 'what is in this box' questions per image"
    )
    parser.add_argument(
        "--pixel-size", type=float, default=None, help="change: metres per pixel where masks have no georeference"
    )
    parser.add_argument(
        "--max-pixels", type=int, default=tpl.QWEN_MAX_PIXELS, help="qwen2_5_vl: the processor's max_pixels"
    )
    parser.add_argument(
        "--object", default="object", help="class name for boxes that carry none (default: the manifest's 'object')"
    )


@dataclass
class Builder:
    """What every template needs: the family's conventions, the seeded choice, where the
    output goes, and a counter for unique ids."""

    family: str
    style: str
    rng: random.Random
    out_dir: Path
    max_pixels: int
    ids: Counter[str] = field(default_factory=Counter)

    def boxes(self, width: int, height: int) -> tpl.BoxWriter:
        return tpl.BoxWriter(self.family, width, height, self.style, self.max_pixels)

    def record(self, images: list[Path], kind: str, question: str, answer: str) -> Record:
        stem = images[-1].stem
        key = f"{stem}_{kind}"
        rec: Record = {"id": f"{key}_{self.ids[key]}"}
        self.ids[key] += 1
        names = [ann.relative_or_absolute(p, self.out_dir) for p in images]
        if len(names) == 1:
            rec["image"] = names[0]
        else:
            rec["images"] = names
        human = "<image>\n" * len(images) + question
        rec["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]
        return rec


def _entries(source: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(source.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{source.name} is not valid JSON ({err}).") from err
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InputError(f"{source.name}: a manifest is a JSON list of objects (see rschat train build-data --help).")
    return data


def _field(entry: dict[str, Any], key: str, source: Path) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise InputError(f"{source.name}: an entry has no '{key}' ({json.dumps(entry)[:120]}).")
    return entry[key]


def build_vqa(source: Path, b: Builder, args: argparse.Namespace) -> Iterator[Record]:
    for entry in _entries(source):
        image = ann.resolve(source, _field(entry, "image", source))
        question = str(_field(entry, "question", source)).strip()
        answer = str(_field(entry, "answer", source)).strip()
        yield b.record([image], "vqa", f"{question}\n{tpl.pick(b.rng, 'vqa_suffix')}", answer)


def _box_entries(source: Path, default: str) -> list[tuple[Path, Path, str]]:
    """(image, labels, object name) per image: from a manifest list, or one COCO file."""
    if source.suffix.lower() == ".json":
        data = ann.load_json(source)
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            return [(ann.resolve(source, str(im["file_name"])), source, default) for im in data["images"]]
    out = []
    for entry in _entries(source):
        image = ann.resolve(source, _field(entry, "image", source))
        labels = ann.resolve(source, _field(entry, "labels", source))
        out.append((image, labels, str(entry.get("object") or default).lower()))
    return out


def _classes(boxes: list[ann.Box], obj: str) -> dict[str, list[ann.Box]]:
    """Boxes by class phrase: a label that is an attribute of the object becomes
    'dead tree'; one that names it (or another object) stays as it is."""
    out: dict[str, list[ann.Box]] = {}
    for box in boxes:
        phrase = box.label if obj in box.label or box.label == obj or obj == "object" else f"{box.label} {obj}"
        out.setdefault(phrase, []).append(box)
    return out


def _count_turns(b: Builder, classes: dict[str, list[ann.Box]], obj: str) -> Iterator[tuple[str, str]]:
    groups = dict(classes)
    if obj != "object" and obj not in groups:
        groups[obj] = [box for v in classes.values() for box in v]
    for label, members in groups.items():
        n = len(members)
        words = {"n": n, "noun": tpl.noun_for(label, n), "plural": tpl.plural(label), "label": label}
        yield tpl.pick(b.rng, "count", **words), tpl.pick(b.rng, "count_answer", **words)
        yield (
            tpl.pick(b.rng, "presence", article=tpl.article(label), **words),
            tpl.pick(b.rng, "presence_answer", **words),
        )


def build_count(source: Path, b: Builder, args: argparse.Namespace) -> Iterator[Record]:
    for image, labels, obj in _box_entries(source, args.object):
        boxes = ann.read_boxes(labels, image, obj)
        if not boxes:
            continue  # no objects: a count of 0 would claim an absence nobody annotated
        for question, answer in _count_turns(b, _classes(boxes, obj), obj):
            yield b.record([image], "count", question, answer)


def _ground_turns(
    b: Builder, boxes: list[ann.Box], obj: str, per_image: int, writer: tpl.BoxWriter
) -> Iterator[tuple[str, str]]:
    for box in b.rng.sample(boxes, min(per_image, len(boxes))):
        label = box.label
        a = tpl.article(label)
        question = tpl.pick(b.rng, "identify", box=writer.region(box.xyxy))
        yield (
            writer.tagged("identify", question),
            tpl.pick(b.rng, "identify_answer", article=a, Article=a.capitalize(), label=label),
        )
    for label, members in _classes(boxes, obj).items():
        largest = max(members, key=lambda m: m.area_px)
        yield writer.tagged("refer", tpl.pick(b.rng, "refer", label=label)), writer.answer([largest.xyxy], label)
        question = tpl.pick(b.rng, "ground", label=label, plural=tpl.plural(label))
        yield writer.tagged("ground", question), writer.answer([m.xyxy for m in members], label)


def build_grounding(source: Path, b: Builder, args: argparse.Namespace) -> Iterator[Record]:
    if args.per_image < 0:
        raise InputError("--per-image must be 0 or more.")
    for image, labels, obj in _box_entries(source, args.object):
        boxes = ann.read_boxes(labels, image, obj)
        writer = b.boxes(*ann.image_size(image))
        for question, answer in _ground_turns(b, boxes, obj, args.per_image, writer):
            yield b.record([image], "grounding", question, answer)


def _change_turns(b: Builder, facts: ann.MaskFacts) -> Iterator[tuple[str, str]]:
    changed = facts.largest is not None
    yield tpl.pick(b.rng, "change_any"), tpl.pick(b.rng, "change_yes" if changed else "change_no")
    yield (
        tpl.pick(b.rng, "change_share"),
        tpl.pick(b.rng, "change_share_answer", percent=f"{facts.changed_percent:.1f}"),
    )
    if facts.changed_m2 is not None:
        m2, ha = f"{facts.changed_m2:,.0f}", f"{facts.changed_m2 / 1e4:,.2f}"
        yield tpl.pick(b.rng, "change_area"), tpl.pick(b.rng, "change_area_answer", m2=m2, ha=ha)
    if facts.largest is not None:
        writer = b.boxes(facts.width, facts.height)
        yield writer.tagged("refer", tpl.pick(b.rng, "change_where")), writer.answer([facts.largest], "change")


def build_change(source: Path, b: Builder, args: argparse.Namespace) -> Iterator[Record]:
    for entry in _entries(source):
        before, after, label = (ann.resolve(source, _field(entry, k, source)) for k in ("before", "after", "label"))
        facts = ann.read_mask(label, entry.get("pixel_size_m") or args.pixel_size)
        for image in (before, after):
            if ann.image_size(image) != (facts.width, facts.height):
                raise InputError(
                    f"{image.name} is {ann.image_size(image)} px but its mask {label.name} is {(facts.width, facts.height)} px."
                )
        for question, answer in _change_turns(b, facts):
            yield b.record([before, after], "change", question, answer)


def build_caption(source: Path, b: Builder, args: argparse.Namespace) -> Iterator[Record]:
    for entry in _entries(source):
        image = ann.resolve(source, _field(entry, "image", source))
        captions = entry.get("captions") or ([entry["caption"]] if entry.get("caption") else [])
        if not isinstance(captions, list) or not captions:
            raise InputError(f"{source.name}: the entry for {image.name} has no 'captions' list.")
        for caption in captions:
            yield b.record([image], "caption", tpl.pick(b.rng, "caption"), str(caption).strip())


BUILDERS: dict[str, Callable[[Path, Builder, argparse.Namespace], Iterator[Record]]] = {
    "vqa": build_vqa,
    "count": build_count,
    "grounding": build_grounding,
    "change": build_change,
    "caption": build_caption,
}


def build(args: argparse.Namespace) -> list[Record]:
    """The conversations of ``args.kind`` from ``args.source`` (InputError on bad input)."""
    source = Path(args.source)
    if not source.is_file():
        raise InputError(f"{args.source}: no such manifest.")
    if args.style == "geochat" and args.family != "llava":
        raise InputError("--style geochat is GeoChat's LLaVA-based format: use it with --family llava.")
    out_dir = Path(args.out).resolve().parent
    b = Builder(args.family, args.style, random.Random(args.seed), out_dir, args.max_pixels)
    records = list(BUILDERS[args.kind](source, b, args))
    if not records:
        raise InputError(f"{source.name} gave no {args.kind} conversations (no entries, or no annotations in them).")
    return records


def run(args: argparse.Namespace) -> int:
    records = build(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    images = {r.get("image") or tuple(r["images"]) for r in records}
    print(f"wrote {len(records)} {args.kind} conversations on {len(images)} images ({args.family}) to {out}")
    return 0
