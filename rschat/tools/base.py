"""What every tool is and returns.

A tool has a name, a description written for a planner (rules or a model), a JSON
schema of its arguments, and ``run(args, ctx) -> ToolResult``. Tools read rasters from
the context (never from the UI), write their files into ``ctx.out_dir``, and report
numbers with their unit in the key (``changed_area_m2``) or ``None`` when unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rschat.geo.raster import Raster


@dataclass
class Artifact:
    """A file a tool produced. ``kind``: 'overlay' | 'mask' | 'geojson' | 'geotiff' | 'plot'."""

    kind: str
    path: Path
    label: str


@dataclass
class ToolResult:
    summary: str  # one line, with units
    data: dict[str, float | int | None]  # numbers with units in their names
    artifacts: list[Artifact] = field(default_factory=list)
    method: str = ""  # how the numbers were computed, for the answer
    limits: list[str] = field(default_factory=list)  # what the reader should keep in mind
    notes: list[str] = field(default_factory=list)  # what was done to the input (reprojection, ...)
    # In-memory values that later turns can reuse (masks, regions); not serialised.
    memory: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Numbers cross into JSON and the UI: plain Python floats and ints only.
        self.data = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.data.items()}

    def artifact(self, kind: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.kind == kind), None)


@dataclass
class ToolContext:
    rasters: Mapping[str, Raster]  # named rasters of the session: "image", "before", "after"
    out_dir: Path
    settings: Any = None
    progress: Callable[[float, str], None] = lambda fraction, text: None
    previous: ToolResult | None = None  # the result of the step before, for chained plans
    region: dict[str, Any] | None = None  # the map region (GeoJSON, EPSG:4326) when the call asks for it

    def raster(self, name: str) -> Raster:
        from rschat.geo.errors import InputError

        if name not in self.rasters:
            have = ", ".join(sorted(self.rasters)) or "none"
            raise InputError(f"This needs an image called '{name}', and the session has {have}.")
        return self.rasters[name]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]  # JSON schema of the arguments (type: object)
    run: Callable[[dict[str, Any], ToolContext], ToolResult]
    # Which named rasters the tool needs, so the planner can ask for missing ones.
    needs: tuple[str, ...] = ()


def to_float_rgb(raster: Raster) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a raster's preview bands (see geo.preview)."""
    from rschat.geo.preview import rgb_preview

    return rgb_preview(raster).astype(np.float32) / 255.0


def scoped_raster(args: dict[str, Any], ctx: ToolContext, default: str = "image") -> tuple[Raster, str]:
    """The raster a tool works on, cropped to ``args['box']`` when one is given.

    Returns (raster, scope text for answers). A box is XYXY in pixels of that raster.
    """
    from rschat.geo.errors import InputError

    name = args.get("image", default)
    raster = ctx.raster(name)
    box = args.get("box")
    if not box:
        return raster, f"the whole image '{raster.name}'"
    try:
        cropped = raster.crop(tuple(box))
    except ValueError as err:
        raise InputError(f"The box cannot be used: {err}.") from err
    return cropped, f"the box x {box[0]}-{box[2]}, y {box[1]}-{box[3]} of '{raster.name}'"


def region_mask_of(args: dict[str, Any], ctx: ToolContext, raster: Raster) -> np.ndarray | None:
    """The drawn map region as a pixel mask on ``raster``, when the call asks for it."""
    if not args.get("region"):
        return None
    from rschat.geo.errors import InputError
    from rschat.geo.region import region_mask

    if ctx.region is None:
        raise InputError("No region is drawn: draw a rectangle or polygon on the map (or pass --region).")
    return region_mask(ctx.region, raster)


REGION_SCHEMA = {"type": "boolean", "description": "restrict to the region drawn on the map"}

BOX_SCHEMA = {
    "type": "array",
    "items": {"type": "integer"},
    "minItems": 4,
    "maxItems": 4,
    "description": "x0, y0, x1, y1 in pixels of the image (optional)",
}
