"""A session's dated stack: rasters named t1..tN, in date order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stack_names(rasters: Mapping[str, Any]) -> list[str]:
    """Names of the dated stack t1..tN in order (empty without one)."""
    names = [n for n in rasters if n.startswith("t") and n[1:].isdigit()]
    return sorted(names, key=lambda n: int(n[1:]))
