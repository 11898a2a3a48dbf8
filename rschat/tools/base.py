"""What every tool is, takes and returns.

One file holds everything about a tool (see ``docs/ARCHITECTURE.md``): its name and a
description written for a planner; its arguments as a pydantic model (the JSON schema
given to a model planner is generated from it, and the executor validates every call
against it, from rules or from a model); its figures as a pydantic model (numbers with
their unit in the name, ``None`` when unknown); ``run(args, ctx) -> ToolResult``; how the
result reads in an answer; the map and export layer it yields; and the phrases that make
the rule planner pick it. The registry test (tests/test_registry.py) checks every part.

Tools read rasters from the context (never from the UI) and write their files into
``ctx.out_dir`` under names that start with their result id, so no later result
overwrites them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rschat.backends.counting_classical import Detection
from rschat.backends.landcover_rules import LandCover
from rschat.geo.area import area_text
from rschat.geo.errors import InputError
from rschat.geo.raster import Raster
from rschat.geo.vector import Region

ArtifactKind = Literal["overlay", "before_preview", "after_preview", "geotiff", "geojson", "plot", "table"]
# What a result's files are for: the image panel shows overlays and plots, the downloads
# list holds the rest, the map draws the GeoJSON.
DOWNLOAD_KINDS: tuple[ArtifactKind, ...] = ("geotiff", "geojson", "table", "plot", "overlay")


@dataclass
class Artifact:
    kind: ArtifactKind
    path: Path
    label: str


class Args(BaseModel):
    """Base of every tool's arguments: unknown arguments are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


# Shared argument types. A box is XYXY in pixels of the image the tool reads.
Box = Annotated[
    list[int] | None,
    Field(min_length=4, max_length=4, description="x0, y0, x1, y1 in pixels of the image (optional)"),
]
UseRegion = Annotated[bool, Field(description="restrict to the region drawn on the map")]
ImageName = Annotated[str, Field(description="name of the session's image to use")]


class Figures(BaseModel):
    """Base of every tool's numbers: units in the names (``_m2``, ``_ha``, ``_percent``),
    ``None`` when unknown (no georeference). Only the figures a run sets are reported."""

    model_config = ConfigDict(extra="forbid")

    def as_dict(self) -> dict[str, float | int | None]:
        # Numbers cross into JSON and the UI: plain Python floats and ints only.
        return {
            k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.model_dump(exclude_unset=True).items()
        }


@dataclass
class Kept:
    """In-memory values of a result that later steps and follow-up questions reuse
    (not serialised). Each field is typed; a tool fills the ones it has."""

    mask: np.ndarray | None = None  # the result's main mask, on the grid of the image it read
    grid: tuple[Any, Any] | None = None  # (CRS, transform) of that grid, where georeferenced
    labels: np.ndarray | None = None  # connected regions of that mask (0 = none)
    regions: list[Region] = field(default_factory=list)  # largest first
    landcover: LandCover | None = None
    target: str | None = None  # the class or object the result is about
    scope: str = ""  # "the whole image", "the box x 0-200, y 0-100 of ..."
    detections: list[Detection] = field(default_factory=list)  # counted objects, pixel boxes
    offset: tuple[int, int] = (0, 0)  # where the analysed crop starts in the full image
    masks: list[np.ndarray] = field(default_factory=list)  # single objects (SAM)
    ranked: list[tuple[str, float]] = field(default_factory=list)  # labels by probability
    rows: list[dict[str, Any]] = field(default_factory=list)  # a per-date table
    caption: str = ""
    shape: tuple[int, ...] | None = None  # (height, width) of the image read, where a place in it is said


@dataclass
class ToolResult:
    summary: str  # one line, with units
    figures: Figures
    artifacts: list[Artifact] = field(default_factory=list)
    method: str = ""  # how the numbers were computed, for the answer
    limits: list[str] = field(default_factory=list)  # what the reader should keep in mind
    notes: list[str] = field(default_factory=list)  # what was done to the input (reprojection, ...)
    kept: Kept = field(default_factory=Kept)

    @property
    def data(self) -> dict[str, float | int | None]:
        """The figures as a flat dict (JSON, the model's prompt, number checks)."""
        return self.figures.as_dict()

    def artifact(self, kind: ArtifactKind) -> Artifact | None:
        return next((a for a in self.artifacts if a.kind == kind), None)


class Cancelled(Exception):  # noqa: N818  # it is not an error: the user or the time limit stopped the turn
    """Raised by ``ToolContext.progress`` once the turn is cancelled (the Cancel button, or
    the turn's time limit): a thread cannot be killed, so a long tool stops at its next
    progress report. Tools let it pass (never catch it as a failure)."""


@dataclass
class ToolContext:
    rasters: Mapping[str, Raster]  # named rasters of the session: "image", "before", "after", "t1".."tN"
    out_dir: Path
    settings: Any = None
    # progress(fraction, "tile 3/12, about 40 s left"): shown in the chat; it raises
    # ``Cancelled`` when the turn was cancelled, so report between chunks of long work.
    progress: Callable[[float, str], None] = lambda fraction, text: None
    previous: ToolResult | None = None  # the result of the step before, for chained plans
    region: dict[str, Any] | None = None  # the map region (GeoJSON, EPSG:4326) when the call asks for it
    result_id: str = "r"  # the id this run's result will be stored under: its files start with it
    # How a tool that reads a large scene tile by tile runs its tiles: None = two local
    # threads (the app); rschat batch passes one that sends them to Dask.
    map_tiles: Any = None

    def raster(self, name: str) -> Raster:
        if name not in self.rasters:
            have = ", ".join(sorted(self.rasters)) or "none"
            raise InputError(f"This needs an image called '{name}', and the session has {have}.")
        return self.rasters[name]

    def path(self, name: str) -> Path:
        """A file in the session folder owned by this result (``r3_change_mask.tif``)."""
        return self.out_dir / f"{self.result_id}_{name}"


@dataclass(frozen=True)
class Reading:
    """What an answer is about: where the result came from, which number the user asked
    for (``focus``: largest, count, area, fraction, point) and a clicked point."""

    source: str  # "`detect_changes`, result r1, 0.4 s"
    focus: str | None = None
    point: tuple[float, float] | None = None


@dataclass(frozen=True)
class Layer:
    """How a result's GeoJSON is drawn on the map and named in exports."""

    name: str  # "changes"
    color: str  # CSS colour for the outline and the legend
    points: bool = False  # draw features as points (counted objects)
    class_colors: Mapping[str, str] | None = None  # per-feature colours by their "class" property


def result_color(layer: Layer, result_id: str) -> str:
    """A colour of its own for each result's layer: the tool's colour for its first
    result (r1), then hues turned by the golden angle, so two change results side by side
    on a map or in a legend are never the same colour."""
    import colorsys

    number = int(result_id.lstrip("r") or 1) if result_id.lstrip("r").isdigit() else 1
    if number <= 1:
        return layer.color
    r, g, b = (int(layer.color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, lum, sat = colorsys.rgb_to_hls(r, g, b)
    h = (h + 0.381966 * (number - 1)) % 1.0
    lum = min(max(lum, 0.35), 0.6)  # keep turned colours visible on imagery
    sat = max(sat, 0.6)
    return "#" + "".join(f"{round(v * 255):02x}" for v in colorsys.hls_to_rgb(h, lum, sat))


@dataclass(frozen=True)
class Phrase:
    """Words that make the rule planner classify a message as ``intent``. Phrases are
    tried in ``order`` (lower first), across all tools and the agent's own intents."""

    intent: str
    pattern: re.Pattern[str]
    order: int


@dataclass(frozen=True)
class Requires:
    """A full-mode model a tool needs: the settings field and what to tell a user without it."""

    setting: str  # a field of rschat.config.Settings: "sam", "clip", "generator"
    missing: str  # "scene classification (it needs CLIP: full mode, RSCHAT_CLIP)"


def covers(name: str) -> str:
    """The verb after a class's name: 'trees cover', 'water covers'."""
    return "cover" if name.endswith("s") else "covers"


def plain_answer(title: str) -> Callable[[ToolResult, Reading], str]:
    """The answer of a tool whose summary says it all: '**Title** (source): summary.'"""

    def answer(result: ToolResult, reading: Reading) -> str:
        return f"**{title}** ({reading.source}): {result.summary}."

    return answer


@dataclass(frozen=True)
class Tool:
    name: str
    description: str  # for a planner: what it does, what it returns
    args: type[Args]
    figures: type[Figures]
    function: Callable[[Any, ToolContext], ToolResult]  # function(args: the tool's Args, ctx); see ``run``
    answer: Callable[[ToolResult, Reading], str]  # how the result reads in the chat
    phrases: tuple[Phrase, ...]  # what the rule planner maps to this tool
    layer: Layer | None  # map and export layer of its GeoJSON; None: it yields no vectors
    # Which named rasters the tool reads (argument name = default raster name), so a result
    # is tied to their versions; empty: it reads the whole session (a time series).
    needs: tuple[str, ...] = ()
    requires: tuple[Requires, ...] = ()  # full-mode models; empty: runs in lite mode
    help: str = ""  # its line in the capability list ("- **counting** trees ... (*how many trees?*)")
    # Arguments the rule planner can read from the message for this tool ("NDWI" -> index),
    # for a tool without a planner of its own; image, box and region are filled for it.
    slots: Callable[[str], dict[str, Any]] | None = None
    # Whether a call's figures depend on which band is red, green and blue (land cover, the
    # learned models), given its arguments: such a call is refused on an image that looks
    # like a false-colour composite with no band names, until the user says the order.
    reads_colours: Callable[[Mapping[str, Any]], bool] = lambda args: True

    def run(self, args: Args | Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        """Run the tool; plain arguments (a dict) are validated first, defaults filled."""
        return self.function(args if isinstance(args, Args) else self.validate(args), ctx)

    def validate(self, raw: Mapping[str, Any]) -> Args:
        """The typed arguments with their defaults, or an InputError that says what is wrong."""
        try:
            return self.args.model_validate(dict(raw))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']} (got {e['input']!r:.60})"
                for e in err.errors()
            )
            raise InputError(f"The call to {self.name} does not fit its schema ({problems}).") from err

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (for a model planner's prompt)."""
        return self.args.model_json_schema()

    def unavailable(self, settings: Any) -> Requires | None:
        """The first full-mode requirement the settings do not meet, or None."""
        for need in self.requires:
            if settings is None or not getattr(settings, need.setting, ""):
                return need
        return None


# -- helpers shared by several tools -------------------------------------------------------


def largest_region_text(result: ToolResult, what: str, source: str, smallest: bool = False) -> str:
    """'The largest <what> region covers ... in the north-west of the image ...' (or the
    smallest: regions are kept largest first)."""
    from rschat.geo.places import place

    word = "smallest" if smallest else "largest"
    regions, mask = result.kept.regions, result.kept.mask
    if not regions or mask is None:
        return f"No {what} region was found, so there is no {word} one ({source})."
    big = regions[-1] if smallest else regions[0]
    where = place(big.centroid[0], big.centroid[1], mask.shape[1], mask.shape[0])
    x0, y0, x1, y1 = big.bbox
    return (
        f"The {word} {what} region covers {area_text(big.area_m2)}, {big.pixels:,} pixels, in {where} of the "
        f"image (pixel box x {x0}-{x1}, y {y0}-{y1}); it is the {'smallest' if smallest else 'biggest'} of "
        f"{len(regions)} ({source})."
    )


def to_float_rgb(raster: Raster) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a raster's preview bands (see geo.preview)."""
    from rschat.geo.preview import rgb_preview

    return rgb_preview(raster).astype(np.float32) / 255.0


def box_scope(box: list[int] | tuple[int, ...]) -> str:
    return f"the box x {box[0]}-{box[2]}, y {box[1]}-{box[3]}"


def clipped_box(box: list[int], raster: Raster) -> tuple[int, int, int, int]:
    """The box put in order and clipped to the raster, or an InputError."""
    from rschat.geo.raster import clip_box

    try:
        return clip_box(box, raster.width, raster.height)
    except ValueError as err:
        raise InputError(f"The box cannot be used: {err}.") from err


def crop_to_box(raster: Raster, box: list[int] | None) -> Raster:
    """The raster cropped to a box (XYXY pixels), or the raster itself without one."""
    if not box:
        return raster
    try:
        return raster.crop((box[0], box[1], box[2], box[3]))
    except ValueError as err:
        raise InputError(f"The box cannot be used: {err}.") from err


def scoped_raster(image: str, box: list[int] | None, ctx: ToolContext) -> tuple[Raster, str]:
    """The raster a tool works on, cropped to the box when one is given, and the scope
    text for answers."""
    raster = ctx.raster(image)
    # A pair's files often share a name (LEVIR's A/ and B/ folders): the role says which date.
    role = f"{image} image " if image in ("before", "after") else ""
    if not box:
        return raster, f"the whole {role or 'image '}'{raster.name}'"
    cropped = crop_to_box(raster, box)
    return cropped, f"{box_scope(clipped_box(box, raster))} of {'the ' + role if role else ''}'{raster.name}'"


def region_mask_of(use_region: bool, ctx: ToolContext, raster: Raster) -> np.ndarray | None:
    """The drawn map region as a pixel mask on ``raster``, when the call asks for it."""
    if not use_region:
        return None
    from rschat.geo.region import region_mask

    if ctx.region is None:
        raise InputError("No region is drawn: draw a rectangle or polygon on the map (or pass --region).")
    return region_mask(ctx.region, raster)


__all__ = [
    "DOWNLOAD_KINDS",
    "Args",
    "Artifact",
    "Box",
    "Figures",
    "ImageName",
    "Kept",
    "Layer",
    "Phrase",
    "Reading",
    "Requires",
    "Tool",
    "ToolContext",
    "ToolResult",
    "UseRegion",
    "area_text",
    "box_scope",
    "clipped_box",
    "crop_to_box",
    "largest_region_text",
    "plain_answer",
    "result_color",
    "region_mask_of",
    "scoped_raster",
    "to_float_rgb",
]
