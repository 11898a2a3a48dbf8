"""The events one turn streams, from plan to answer.

The UI and the CLI render these; neither looks inside the agent otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rschat.agent import short_answer as short
from rschat.tools.base import ToolResult

StepKind = Literal["plan", "start", "progress", "done", "error", "delta", "answer"]  # delta: streamed text


@dataclass
class ToolCall:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # one line for the plan shown to the user


@dataclass
class Step:
    kind: StepKind
    text: str
    tool: str | None = None  # the tool; on plan steps what they are about ("upload", "noted")
    args: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    result: ToolResult | None = None
    result_id: str | None = None
    reused: bool = False  # the result came from the workspace, not a new run
    call_id: str | None = None  # ties a tool's start step to its done/error step
    # On the answer step: False when the question could not be answered (bad input, a
    # missing image, a failed tool, out of this mode's reach); the CLI then exits 1.
    answered: bool = True
    # On the answer step: the closed answer ("yes", "12", "4693 m2", "urban"), None for an
    # open question or one the tools could not judge. Read from the answer's first line
    # (the responder states it there; a model's reply is normalised), so every way an
    # answer is written fills it the same way.
    short_answer: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "answer" and self.answered and self.short_answer is None:
            self.short_answer = short.parse(self.text)
