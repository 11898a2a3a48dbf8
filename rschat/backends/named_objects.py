"""Objects named in text, found by SAM and named by CLIP: SAM proposes every object
(``SamBackend.everything``), CLIP keeps the crops it judges to show the target. Shared by
the tools that outline named objects and that count them, so neither calls the other."""

from __future__ import annotations

from typing import Any

import numpy as np


def named_objects(
    sam: Any, clip: Any, rgb: np.ndarray, target: str, min_score: float = 0.5
) -> tuple[list[Any], list[float]]:
    """(SAM masks CLIP names ``target``, their CLIP probabilities) on an HWC uint8 image."""
    candidates = sam.everything(rgb)
    probs = clip.crops_match(rgb, [m.box for m in candidates], target)
    keep = [i for i, p in enumerate(probs) if p >= min_score]
    return [candidates[i] for i in keep], [float(probs[i]) for i in keep]
