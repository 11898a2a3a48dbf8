"""Accuracy on visual questions (the RSVQA format of ../shared/data/vqa/manifest.json).

A manifest is a JSON list of ``{"image", "question", "answer", "type", "pixel_size_m",
"set"}`` with image paths relative to its folder. Each question goes through the same
agent turn a user gets: one fresh session per image, the image uploaded once with "the
pixel size is X m" when the entry gives one, then the image's questions one by one (so
the tools' results are computed once per image and reused, as in a chat). What is scored
is the answer's ``short_answer``: yes/no and rural/urban by exact match, counts by exact
integer match (with the mean absolute error), areas within 20% (or both zero). A question
the tools cannot judge has no short answer and counts as wrong.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HELP = "accuracy on visual questions (RSVQA format): per question type and per set, beside the majority baseline"

AREA_TOLERANCE = 0.20  # an area within 20% of the reference counts as right
_NUMBER = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?")  # not the 2 of "m2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="JSON list of questions; image paths relative to its folder")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N questions (after --set)")
    parser.add_argument("--set", dest="subset", default=None, help="score only the questions of this set")


# -- scoring -----------------------------------------------------------------------------


def parse_area(text: str | None) -> float | None:
    """An area in m2 from '4693 m2', '0m2', '1,200 m2' or 'between 10m2 and 100m2' (the
    middle of the range, on a log scale as RSVQA's bins are); None if it holds no number."""
    if text is None:
        return None
    values = [float(v) for v in _NUMBER.findall(text.replace(",", ""))]
    if not values:
        return None
    if len(values) >= 2 and min(values) > 0:
        return float((values[0] * values[1]) ** 0.5)
    return values[0] if len(values) == 1 else sum(values) / len(values)


def parse_count(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"\s*\d+\s*", text):
        return None
    return int(text)


def is_correct(kind: str, predicted: str | None, truth: str) -> bool:
    """Whether a short answer is right for a question of this type (see the module doc)."""
    if predicted is None:
        return False
    if kind == "count":
        return parse_count(predicted) is not None and parse_count(predicted) == parse_count(truth)
    if kind == "area":
        p, t = parse_area(predicted), parse_area(truth)
        if p is None or t is None:
            return False
        return p == t == 0 or (t > 0 and abs(p - t) <= AREA_TOLERANCE * t)
    return predicted.strip().lower() == truth.strip().lower()


# -- running the questions ---------------------------------------------------------------


def _load(manifest: Path, limit: int | None, subset: str | None) -> list[dict[str, Any]]:
    from rschat.eval.manifest import load_entries
    from rschat.geo.errors import InputError

    entries = load_entries(manifest, {"image": str, "question": str, "answer": str, "type": str})
    if subset is not None:
        entries = [e for e in entries if e.get("set") == subset]
        if not entries:
            raise InputError(f"{manifest.name} has no questions of the set {subset!r}.")
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be at least 1 (got {limit}).")
        entries = entries[:limit]
    return entries


def _ask_image(path: Path, entries: list[dict[str, Any]], settings: Any) -> list[str | None]:
    """One session for one image: upload it (stating the pixel size), then ask each
    question; the short answers, in order."""
    from rschat.agent import Workspace, turn

    ws = Workspace(settings)
    try:
        gsd = entries[0].get("pixel_size_m")
        intro = f"the pixel size is {gsd:g} m" if isinstance(gsd, (int, float)) and gsd > 0 else "here is the image"
        for _ in turn(ws, intro, uploads=[path]):
            pass
        answers = []
        for entry in entries:
            final = [s for s in turn(ws, entry["question"]) if s.kind == "answer"][-1]
            answers.append(final.short_answer)
        return answers
    finally:
        ws.close()


def _by_image(entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        groups[entry["image"]].append(i)
    return groups


def _majority(entries: list[dict[str, Any]]) -> dict[str, str]:
    """The most frequent answer of each question type among these entries."""
    kinds = {e["type"] for e in entries}
    return {k: Counter(e["answer"] for e in entries if e["type"] == k).most_common(1)[0][0] for k in kinds}


def _row(rows: list[tuple[dict[str, Any], str | None]]) -> dict[str, Any]:
    """Accuracy of some questions, beside the baseline that answers each with the most
    frequent answer of its type in the same group, with the mean absolute error of counts."""
    majority = _majority([e for e, _ in rows])
    right = [is_correct(e["type"], p, e["answer"]) for e, p in rows]
    base = [is_correct(e["type"], majority[e["type"]], e["answer"]) for e, _ in rows]
    errors = [
        abs(parse_count(p) - parse_count(e["answer"]))  # type: ignore[operator]
        for e, p in rows
        if e["type"] == "count" and parse_count(p) is not None and parse_count(e["answer"]) is not None
    ]
    answered = sum(p is not None for _, p in rows)
    return {
        "accuracy": sum(right) / len(rows),
        "baseline": sum(base) / len(rows),
        "questions": len(rows),
        "correct": sum(right),
        "unanswered": len(rows) - answered,
        # How often a short answer, when given, is right: an unanswered question is wrong
        # in "accuracy", and this tells a refusal from a wrong answer.
        "when_answered": sum(right) / answered if answered else None,
        "count_mae": sum(errors) / len(errors) if errors else None,
    }


def evaluate_vqa(manifest: Path, limit: int | None = None, subset: str | None = None) -> dict[str, Any]:
    """Accuracy overall, per question type and per set, each with its majority baseline."""
    from rschat.config import load_settings
    from rschat.eval.manifest import resolve

    manifest = Path(manifest)
    entries = _load(manifest, limit, subset)
    settings = load_settings()
    predicted: list[str | None] = [None] * len(entries)
    started = time.perf_counter()
    for image, indices in _by_image(entries).items():
        answers = _ask_image(resolve(manifest, image), [entries[i] for i in indices], settings)
        for i, found in zip(indices, answers, strict=True):
            predicted[i] = found
    pairs = list(zip(entries, predicted, strict=True))

    def grouped(key: str) -> dict[str, Any]:
        names = sorted({str(e.get(key, "all")) for e in entries})
        return {n: _row([(e, p) for e, p in pairs if str(e.get(key, "all")) == n]) for n in names}

    per_set_type = {
        f"{s} / {t}": _row(rows)
        for (s, t) in sorted({(str(e.get("set", "all")), e["type"]) for e in entries})
        if (rows := [(e, p) for e, p in pairs if str(e.get("set", "all")) == s and e["type"] == t])
    }
    overall = _row(pairs)
    return {
        "overall": overall["accuracy"],
        "overall_detail": overall,
        "per_type": grouped("type"),
        "per_set": grouped("set"),
        "per_set_type": per_set_type,
        "majority_answer": _majority(entries),
        "images": len(_by_image(entries)),
        "runtime_s": round(time.perf_counter() - started, 1),
        "mode": "full" if settings.vlm else "lite",
    }


# -- the command -------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    from rschat.eval.manifest import fmt

    lines = [
        f"{'group':<28} {'n':>5} {'accuracy':>9} {'majority':>9} {'no answer':>9} {'if answered':>11} {'count MAE':>9}"
    ]

    def add(name: str, row: dict[str, Any]) -> None:
        lines.append(
            f"{name:<28} {row['questions']:>5} {fmt(row['accuracy']):>9} {fmt(row['baseline']):>9} "
            f"{row['unanswered']:>9} {fmt(row['when_answered']):>11} {fmt(row['count_mae'], 2):>9}"
        )

    add("overall", report["overall_detail"])
    for section in ("per_type", "per_set", "per_set_type"):
        for name, row in report[section].items():
            add(name, row)
    lines.append(
        f"{report['images']} images, {report['overall_detail']['questions']} questions in {report['runtime_s']:.1f} s "
        f"({report['mode']} mode); majority = each type's most frequent answer within the row's questions; "
        "if answered = accuracy over the questions given a short answer"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rschat.geo.errors import InputError

    try:
        report = evaluate_vqa(Path(args.manifest), args.limit, args.subset)
    except InputError as err:
        print(f"rschat eval vqa: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0
