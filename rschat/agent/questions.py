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
# "and in square feet, how big is the largest one?": a unit for the question, not a question
_UNIT_ONLY = re.compile(r"\W*(?:and\s+|so\s+)?(?:in|into|as)\s+(?:square\s+|sq\.?\s*)?[a-z0-9]+\W*$", re.I)
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
    parts = [q for p in parts if p for q in _distribute(_without_statements(p))]
    if (
        len(parts) < 2
        or len(parts) > MAX_QUESTIONS
        or any(len(p.split()) < _MIN_WORDS or _UNIT_ONLY.match(p) for p in parts)
    ):
        return [message]
    return [_as_question(p) for p in parts]


# "How many trees and buildings are there?", "what is the mean NDVI and the pixel size?":
# one verb shared by two things, asked as two questions. Read word by word (no pattern that
# could backtrack), and only in short questions whose two things are short noun phrases.
_SHARED_HEADS = (("how", "many"), ("count", "the"), ("count",), ("what", "is", "the"), ("what", "are", "the"))
_TAIL_STARTS = {"are", "is", "in", "on", "inside", "within", "can", "do", "does", "there", "here", "visible", "of"}
_NOT_IN_A_THING = {"of", "and", "or", "than", "with", "per", "between", "from", "to", "is", "are"}
# "how many large and small buildings?": two adjectives of one noun, not two things
_ADJECTIVES = {
    "large", "small", "big", "medium", "tiny", "huge", "new", "old", "dead", "living", "tall", "short",
    "circular", "square", "rectangular", "round", "largest", "smallest", "biggest", "mean", "average",
}  # fmt: skip
_MAX_SHARED_WORDS = 12
_MAX_THING_WORDS = 3


def _distribute(part: str) -> list[str]:
    """A question whose verb is shared by two things, as two questions; else itself."""
    words = part.rstrip("?. ").split()
    lower = [w.lower().strip(",") for w in words]
    if len(words) > _MAX_SHARED_WORDS or lower.count("and") != 1:
        return [part]
    head = next((h for h in _SHARED_HEADS if tuple(lower[: len(h)]) == h), None)
    if head is None:
        return [part]
    cut = lower.index("and")
    first = words[len(head) : cut]
    rest = cut + 1 + (lower[cut + 1] == "the" if cut + 1 < len(lower) else 0)
    # the second thing runs to the words the two share at the end ("are there"); a
    # question about one thing ("what is the area of ...") keeps its shared tail only
    end = next((i for i in range(rest, len(lower)) if lower[i] in _TAIL_STARTS), len(lower))
    second, tail = words[rest:end], words[end:]
    if head[0] == "what" and tail:  # "what is the A and the B of C": B's own words, not shared
        return [part]
    things = (first, second)
    if first and first[-1].lower() in _ADJECTIVES:
        return [part]
    if any(not 1 <= len(t) <= _MAX_THING_WORDS or {w.lower() for w in t} & _NOT_IN_A_THING for t in things):
        return [part]
    lead = " ".join(words[: len(head)])
    return [" ".join([lead, *t, *tail]) + ("?" if part.rstrip().endswith("?") else "") for t in things]


_OPENS_A_REQUEST = re.compile(rf"\W*(?:please\s+|also\s+|then\s+|now\s+)?(?:{_OPENERS}|find|show|map|measure)\b", re.I)


def _without_statements(part: str) -> str:
    """A part without the statements before its question ('The pixel size is 0.5 m. how
    many new buildings are there'): the agent has read them from the whole message."""
    sentences = re.split(r"(?<=[.!])\s+", part)
    while len(sentences) > 1 and not _OPENS_A_REQUEST.match(sentences[0]) and "?" not in sentences[0]:
        sentences.pop(0)
    return " ".join(sentences)


_ASKS = re.compile(rf"(?:{_OPENERS.split('|count|')[0]})\b", re.I)


def _as_question(part: str) -> str:
    """A part as it reads alone: capitalised; a question ends in a question mark, a
    request ('count the trees') as it was."""
    part = part[0].upper() + part[1:]
    if part.endswith(("?", ".", "!")) or not _ASKS.match(part):
        return part
    return part + "?"


# "How many buildings are there? How big are they?": the second is about the first's result.
_EARLIER = re.compile(r"\b(?:they|them|those|these|their|its)\b|\b(?:is|was|are) that\b", re.I)


def refers_to_earlier(part: str) -> bool:
    """Whether a later question is about an earlier one's objects, so it can only be
    planned once that one has run (as a follow-up in a turn of its own would be)."""
    return bool(_EARLIER.search(part))
