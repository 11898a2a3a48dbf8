"""Results computed from an image's pixels, kept while that image lives.

A chat asks several questions about one image ("is there water?", "how many large water
areas?", "are there more ponds than buildings?"); each runs a tool with other arguments,
and each would classify the same pixels again (SLIC and the building model: about 0.5 s
for a 512 px tile, seconds for a large one). The cache is keyed on the pixel array itself
(checked through a weak reference, so a new array that reuses a freed one's id is never
mistaken for it) and on what else the result depends on, and is small and bounded in
pixels, so that sessions never share entries and memory stays flat.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
MAX_ENTRIES = 8
MAX_PIXELS = 16_000_000  # larger images are not kept (their class maps alone are large)

_ENTRIES: OrderedDict[tuple[int, Hashable], tuple[weakref.ref[np.ndarray], Any]] = OrderedDict()
_LOCK = threading.Lock()


def per_image(data: np.ndarray, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``'s result for these pixels and this key, computed once while the
    array lives (and while it stays among the last MAX_ENTRIES kept)."""
    if data.shape[-1] * data.shape[-2] > MAX_PIXELS:
        return compute()
    slot = (id(data), key)
    with _LOCK:
        found = _ENTRIES.get(slot)
        if found is not None and found[0]() is data:
            _ENTRIES.move_to_end(slot)
            return found[1]  # type: ignore[no-any-return]
    value = compute()
    with _LOCK:
        for dead in [k for k, (ref, _) in _ENTRIES.items() if ref() is None]:
            del _ENTRIES[dead]  # images gone with their sessions: free their results now
        _ENTRIES[slot] = (weakref.ref(data), value)
        _ENTRIES.move_to_end(slot)
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
    return value


def clear() -> None:
    with _LOCK:
        _ENTRIES.clear()
