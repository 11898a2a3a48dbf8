"""A message that asks several things ("How many trees are there? Is there water?", "how
many buildings are there and what percentage is water?") cut into its questions, so each
is planned and answered; the planner reads one question per message.

Only cuts that leave whole questions are made: after a question mark, and before "and" or
a comma that a question word or a request for a figure follows ("... and what ...", ",
is ...", "... and describe the scene"). The agent keeps the cut only when every part plans
on its own, or is about an earlier part's objects ("... and calculate its area"): those are
planned once the earlier part has run, as a follow-up in a turn of its own would be.
"""

from __future__ import annotations

import re

# Words that open a question of their own after "and" or a comma.
_OPENERS = (
    "what|how|is|are|was|were|where|which|when|does|do|did|has|have|can|could|will|would|who|why|"
    "count|describe|classify|estimate|compute|calculate|tell|give|list"
)
# One scan, no nested or adjacent quantifiers: linear in the message's length.
_CUT = re.compile(rf"\?\s+|(?:,\s*and|,|;|\band)\s+(?=(?:{_OPENERS})\b)", re.I)
MAX_QUESTIONS = 4  # more than this is a list to split by hand, not a chat message
_MIN_WORDS = 2  # "where?" alone is not a question the planner can read


def split_questions(message: str) -> list[str]:
    """The message's questions in order; the whole message when it holds one (or when a
    part would be too short to read, or there are more than ``MAX_QUESTIONS``)."""
    parts, start = [], 0
    for m in _CUT.finditer(message):
        end = m.start() + (1 if m.group(0).startswith("?") else 0)
        parts.append(message[start:end].strip())
        start = m.end()
    parts.append(message[start:].strip())
    parts = [p for p in parts if p]
    if len(parts) < 2 or len(parts) > MAX_QUESTIONS or any(len(p.split()) < _MIN_WORDS for p in parts):
        return [message]
    return [_as_question(p) for p in parts]


_ASKS = re.compile(rf"(?:{_OPENERS.split('|count|')[0]})\b", re.I)


def _as_question(part: str) -> str:
    """A part as it reads alone: capitalised; a question ends in a question mark, a
    request ('count the trees') as it was."""
    part = part[0].upper() + part[1:]
    if part.endswith(("?", ".", "!")) or not _ASKS.match(part):
        return part
    return part + "?"


# "How many buildings are there? How big are they?": the second is about the first's result.
_EARLIER = re.compile(r"\b(?:they|them|those|these|their|its)\b", re.I)


def refers_to_earlier(part: str) -> bool:
    """Whether a later question is about an earlier one's objects, so it can only be
    planned once that one has run (as a follow-up in a turn of its own would be)."""
    return bool(_EARLIER.search(part))
