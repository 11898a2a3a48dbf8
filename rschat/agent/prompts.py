"""The text templates in prompts/ (system, planner, answer), filled with str.format-like
placeholders ``{name}``; braces that are not placeholders are kept as they are. The folder is
the checkout's top-level prompts/ or, installed, the package's (``rschat.resources``)."""

from __future__ import annotations

import re
from functools import lru_cache

from rschat.resources import prompts_dir

PROMPTS = prompts_dir()


@lru_cache(maxsize=16)
def template(name: str) -> str:
    return (PROMPTS / f"{name}.txt").read_text()


def fill(name: str, **values: str) -> str:
    """The template with each {key} of ``values`` replaced (JSON braces elsewhere survive)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template(name))
