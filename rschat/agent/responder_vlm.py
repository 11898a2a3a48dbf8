"""Answers written by the vision-language model, checked against the tools' numbers.

The model streams an answer from the tool results; then every number in it must be one a
tool produced (or one the user wrote). An answer that states any other number is
replaced by the template answer, and the turn says why: the tools, not the model,
produce numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from rschat.agent.prompts import fill, template
from rschat.agent.steps import Step

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def grounded_numbers(steps: list[Step], message: str) -> list[float]:
    """Every number the tools produced (data values, and any number in their summaries and
    notes), plus the numbers in the user's message."""
    values: list[float] = numbers_in(message)
    for step in steps:
        if step.result is None:
            continue
        values += [float(v) for v in step.result.data.values() if isinstance(v, int | float)]
        for text in [step.result.summary, *step.result.notes, *step.result.limits, step.result.method]:
            values += numbers_in(text)
        if step.result_id:
            values += numbers_in(step.result_id)
    return values


def ungrounded(answer: str, allowed: list[float]) -> list[float]:
    """Numbers in the answer that match no allowed number, allowing for rounding (to the
    shown decimals, 1% relative) and unit changes by powers of ten (m2 <-> ha, fraction <-> %)."""
    bad = []
    for value in numbers_in(answer):
        if value in (1, 2):
            continue  # "image 1", "the 2 images": ordinals in prose carry no result
        ok = any(
            abs(value - a * scale) <= max(abs(a * scale) * 0.01, 0.051)
            for a in allowed
            for scale in (1, 100, 0.01, 1e4, 1e-4)
        )
        if not ok:
            bad.append(value)
    return bad


def quotes_a_result(answer: str, allowed: list[float]) -> bool:
    """Whether the answer quotes at least one substantive number a tool produced (not a
    0, 1 or 2, which prose and noise produce by chance)."""
    substantive = [v for v in numbers_in(answer) if v not in (0, 1, 2)]
    return bool(substantive) and not ungrounded(" ".join(f"{v:g}" for v in substantive), allowed)


def results_text(steps: list[Step]) -> str:
    lines = []
    for step in steps:
        if step.kind == "error":
            lines.append(f"- {step.tool} failed: {step.text}")
        elif step.result is not None:
            data = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in step.result.data.items()}
            lines.append(
                f"- {step.tool} (result {step.result_id}): {step.result.summary}. Numbers: {json.dumps(data)}. "
                f"Limits: {'; '.join(step.result.limits)}"
            )
    return "\n".join(lines)


def stream_answer(model: Any, message: str, steps: list[Step], history: list[dict[str, str]]) -> Iterator[str]:
    """Stream the model's answer to the request from the tool results."""
    messages = [{"role": "system", "content": [{"type": "text", "text": template("system")}]}]
    for turn in history[-6:]:
        messages.append({"role": turn["role"], "content": [{"type": "text", "text": turn["content"]}]})
    prompt = fill("answer", message=message, results=results_text(steps))
    messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    yield from model.generate(messages, None, max_new_tokens=400)
