"""One chat session's state: its images, visual prompts, region and earlier results.

A ``Workspace`` belongs to exactly one session (a browser tab, a CLI run); nothing in
it is shared. Results are stored under ids (``r1``, ``r2``, ...) with the identity of
the rasters they were computed from, so a follow-up question reuses them instead of
recomputing, and a new upload makes them stale automatically.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rschat.config import Settings
from rschat.geo.bands import band_doubt
from rschat.geo.raster import Raster
from rschat.geo.stack import stack_names
from rschat.geo.windowed import read_for_session
from rschat.tools.base import ToolResult

_uids = itertools.count(1)
SESSION_PREFIX = "session-"  # session folders under RSCHAT_WORK_DIR (swept when stale)


def uses_region(args: dict[str, Any]) -> bool:
    """Whether a call reads the drawn map region (restricted to it, or measuring it)."""
    return bool(args.get("region")) or args.get("what") == "region"


@dataclass
class StoredResult:
    id: str
    tool: str
    args: dict[str, Any]
    inputs: tuple[tuple[str, int], ...]  # (raster name, raster uid) it was computed from
    result: ToolResult
    # The CRS of the image it came from, as it was then (a later upload may take the name):
    # its exported layers are written in it.
    crs: Any = None


@dataclass
class Workspace:
    settings: Settings
    _out_dir: Path | None = field(default=None, repr=False)
    rasters: dict[str, Raster] = field(default_factory=dict)
    raster_uids: dict[str, int] = field(default_factory=dict)
    results: list[StoredResult] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)  # {"role", "content"}
    # Visual prompts in pixel coordinates of the image shown (the "image", else "after"):
    # points (x, y, positive?) and boxes (x0, y0, x1, y1). They stay until cleared.
    points: list[tuple[float, float, bool]] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    # The region drawn on the map (GeoJSON, EPSG:4326); restricts the tools until cleared.
    region: dict[str, Any] | None = None
    last_focus: str | None = None  # the figure the last question that ran tools asked for
    # Whether the last question went unanswered: "and in acres?" then has no figure of its
    # own to convert (it converted an older result's, the whole image's area once).
    last_unanswered: bool = False
    # The results the last turn that used tools answered from (run or reused), in order: the
    # panels show their files and overlay, not whichever result happens to be newest.
    answered_from: list[str] = field(default_factory=list)
    # What the user told us about the images: pixel size (m), band order.
    stated_gsd_m: float | None = None
    stated_bands: tuple[str, ...] | None = None

    @property
    def out_dir(self) -> Path:
        """The session's own folder for its files, made on first use (under RSCHAT_WORK_DIR)."""
        if self._out_dir is None:
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
            # The app serves this folder's files to whoever has their URL (Gradio has no
            # per-session file access), so the name is a secret: 144 random bits.
            folder = self.settings.work_dir / f"{SESSION_PREFIX}{secrets.token_urlsafe(18)}"
            folder.mkdir(mode=0o700)
            self._out_dir = folder
        return self._out_dir

    @property
    def folder(self) -> Path | None:
        """The session's folder if one was made (without making one)."""
        return self._out_dir

    # -- images -------------------------------------------------------------------------
    def add_raster(self, name: str, raster: Raster) -> None:
        raster.name = raster.name or name
        self._apply_statements(raster)
        self.rasters[name] = raster
        self.raster_uids[name] = next(_uids)

    def _apply_statements(self, raster: Raster) -> None:
        if self.stated_gsd_m and not raster.georeferenced:
            # An overview's pixels cover more ground than the file's, by its decimation.
            scale = raster.source.width / raster.width if raster.source is not None else 1.0
            raster.gsd_m = self.stated_gsd_m * scale
        if self.stated_bands and len(self.stated_bands) == raster.count:
            raster.band_names = self.stated_bands
            # the loader's advice to state the band order has been followed
            raster.notes = [n for n in raster.notes if "band order" not in n.lower() and "unnamed bands" not in n]

    def state(self, gsd_m: float | None = None, bands: list[str] | None = None) -> list[str]:
        """Record what the user said about the images and apply it to those loaded.
        Returns what changed, for the chat."""
        said = []
        if gsd_m:
            self.stated_gsd_m = gsd_m
            said.append(f"pixel size {gsd_m} m (used where an image has no georeference)")
        if bands:
            self.stated_bands = tuple(bands)
            said.append("band order " + ", ".join(bands))
        for name in list(self.rasters):
            before = (self.rasters[name].gsd_m, self.rasters[name].band_names)
            self._apply_statements(self.rasters[name])
            if (self.rasters[name].gsd_m, self.rasters[name].band_names) != before:
                self.raster_uids[name] = next(_uids)  # earlier results no longer apply
        return said

    # -- visual prompts -----------------------------------------------------------------
    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        self.points.append((float(x), float(y), positive))

    def add_box(self, box: tuple[int, int, int, int] | list[int]) -> None:
        x0, x1 = sorted((int(box[0]), int(box[2])))
        y0, y1 = sorted((int(box[1]), int(box[3])))
        self.boxes.append((x0, y0, x1, y1))

    def clear_prompts(self) -> None:
        self.points.clear()
        self.boxes.clear()
        self.region = None

    def set_region(self, region: dict[str, Any] | None) -> None:
        """Store the map region (validated GeoJSON polygons in EPSG:4326), or clear it."""
        if region is not None:
            from rschat.geo.region import region_geometry

            region_geometry(region)  # raises InputError for anything that is not a lon/lat polygon
        self.region = region

    @contextmanager
    def prompts_set_aside(self) -> Iterator[None]:
        """Plan without the user's boxes and region ('in the whole image'); they stay for
        the questions after."""
        boxes, region = self.boxes, self.region
        self.boxes, self.region = [], None
        try:
            yield
        finally:
            self.boxes, self.region = boxes, region

    @contextmanager
    def box_for_question(self, box: tuple[int, int, int, int]) -> Iterator[None]:
        """Plan with a box the question named in words ('the north half'), in place of the
        user's own prompts, which stay for the questions after."""
        boxes = self.boxes
        self.boxes = [box]
        try:
            yield
        finally:
            self.boxes = boxes

    def remember_focus(self, focus: str | None) -> None:
        """The figure the last question that ran tools asked for ('count', 'area'), so that
        'and in the box?' asks for it again."""
        self.last_focus = focus

    def current_box(self) -> tuple[int, int, int, int] | None:
        return self.boxes[-1] if self.boxes else None

    def current_point(self) -> tuple[float, float] | None:
        positive = [(x, y) for x, y, pos in self.points if pos]
        return positive[-1] if positive else None

    def read(self, path: str | Path) -> Raster:
        """A file read under the session's limits; a large GeoTIFF keeps its file for tiled
        tools and holds only an overview in memory (geo.windowed.read_scene)."""
        return read_for_session(path, self.settings)

    def load(self, name: str, path: str | Path) -> Raster:
        """Read a file (checked against the size limits) and store it under ``name``."""
        raster = self.read(path)
        self.add_raster(name, raster)
        return raster

    def load_uploads(self, paths: list[Path]) -> list[str]:
        """Name a turn's uploads: one -> image; two -> before/after (by date when both
        have one, else in upload order); more -> a dated stack t1..tN. Returns the names."""
        rasters = [self.read(p) for p in paths]
        if len(rasters) == 1:
            self._pair_with_previous(rasters[0])
            names = ["image"]
        elif len(rasters) == 2:
            if all(r.date for r in rasters) and rasters[0].date > rasters[1].date:  # type: ignore[operator]
                rasters.reverse()
            names = ["before", "after"]
        else:
            if all(r.date for r in rasters):
                rasters.sort(key=lambda r: r.date)  # type: ignore[arg-type, return-value]
            names = [f"t{i + 1}" for i in range(len(rasters))]
            # The first and last dates are also the default pair for change questions.
            self.add_raster("before", rasters[0])
            self.add_raster("after", rasters[-1])
        for name, raster in zip(names, rasters, strict=True):
            self.add_raster(name, raster)
        return names

    def _pair_with_previous(self, new: Raster) -> None:
        """An image uploaded on its own after another ("here is the 2020 image. what
        changed?") forms a before/after pair with it (ordered by date when both have one),
        so the earlier image stays reachable ("the first image") and comparable; it was
        replaced. A pair that does not line up is refused by change detection as any is."""
        previous = self.rasters.get("image")
        # Only the image uploaded last: after 'A' alone then a pair P1+P2, 'C' must not pair
        # with the older A (and drop the pair).
        if previous is None or max(self.raster_uids.values()) != self.raster_uids["image"]:
            return
        pair = [previous, new]
        if previous.date and new.date and previous.date > new.date:
            pair.reverse()
        self.add_raster("before", pair[0])
        self.add_raster("after", pair[1])

    def reversed_pair_note(self) -> str | None:
        """A note when the before image is dated after the after image (slots filled the
        wrong way round): every gain then reads as a loss, and nothing said so."""
        before, after = self.rasters.get("before"), self.rasters.get("after")
        if before is None or after is None or not (before.date and after.date) or before.date <= after.date:
            return None
        return (
            f"the before image '{before.name}' ({before.date}) is dated after the after image '{after.name}' "
            f"({after.date}): changes are read from {before.date} to {after.date}, gains as losses. Swap the two if "
            "that is not what you meant."
        )

    def paired_by_upload(self) -> tuple[str, str] | None:
        """(before, after) raster names when the single image was paired with the one
        uploaded before it (``_pair_with_previous``), else None."""
        image, before, after = (self.rasters.get(n) for n in ("image", "before", "after"))
        if image is None or before is None or after is None or all(image is not r for r in (before, after)):
            return None
        return before.name, after.name

    # -- results ------------------------------------------------------------------------
    def inputs_key(self, args: dict[str, Any], needs: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        """Which rasters (name, version) a call reads: those its arguments name, or all of
        them for tools that read the whole session (a time series)."""
        names = tuple(args.get(n, n) for n in needs) if needs else tuple(sorted(self.rasters))
        key = tuple((n, self.raster_uids.get(n, -1)) for n in names)
        if uses_region(args) and self.region is not None:  # a redrawn region is a new input
            key += (("region", hash(json.dumps(self.region, sort_keys=True))),)
        return key

    def band_notes(self, inputs: tuple[tuple[str, int], ...]) -> list[str]:
        """What was assumed about the bands of a call's input images (an unnamed fourth band
        read as NIR, a false-colour composite): every answer from them says so, since the
        numbers depend on it."""
        rasters = [self.rasters[name] for name, _ in inputs if name in self.rasters]
        notes = [n for r in rasters for n in r.notes if "unnamed bands" in n or "band order" in n.lower()]
        return list(dict.fromkeys(notes))  # a raster named twice (t1 and before) says it once

    def band_doubt(self, inputs: tuple[tuple[str, int], ...]) -> str | None:
        """Why the band order of one of a call's input images is in doubt, or None."""
        return next((d for name, _ in inputs if name in self.rasters and (d := band_doubt(self.rasters[name]))), None)

    def find_result(self, tool: str, args: dict[str, Any], inputs: tuple[tuple[str, int], ...]) -> StoredResult | None:
        wanted = json.dumps(args, sort_keys=True)
        for stored in reversed(self.results):
            if stored.tool == tool and stored.inputs == inputs and json.dumps(stored.args, sort_keys=True) == wanted:
                return stored
        return None

    def next_result_id(self) -> str:
        """The id the next stored result gets; a tool names its files with it."""
        return f"r{len(self.results) + 1}"

    def store_result(
        self, tool: str, args: dict[str, Any], inputs: tuple[tuple[str, int], ...], result: ToolResult
    ) -> StoredResult:
        source = next((self.rasters[n] for n, _ in inputs if n in self.rasters), None)
        crs = source.crs if source is not None else None
        stored = StoredResult(
            id=self.next_result_id(), tool=tool, args=dict(args), inputs=inputs, result=result, crs=crs
        )
        self.results.append(stored)
        return stored

    def stack(self) -> list[str]:
        """Names of the dated stack t1..tN, in date order (empty without one)."""
        return stack_names(self.rasters)

    def last_result(self) -> StoredResult | None:
        return self.results[-1] if self.results else None

    def shown_results(self) -> list[StoredResult]:
        """The results the last turn answered from that still hold for the images loaded
        (else the newest current one): what the downloads and the image panel show."""
        by_id = {s.id: s for s in self.results}
        shown = [by_id[i] for i in self.answered_from if i in by_id and self.is_current(by_id[i])]
        last = self.last_result()
        return shown or ([last] if last is not None and self.is_current(last) else [])

    def close(self) -> None:
        """Delete the session's files (called when the session ends)."""
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)

    # -- what the map shows ---------------------------------------------------------------
    def newest_names(self) -> list[str]:
        """The rasters of the latest upload: the dated stack (with its before/after), the
        pair, or the single image, whichever holds the raster loaded last (empty without)."""
        if not self.raster_uids:
            return []
        newest = max(self.raster_uids, key=lambda n: self.raster_uids[n])
        stack = self.stack()
        if newest in stack:
            return [*stack, *(n for n in ("before", "after") if n in self.rasters)]
        if newest in ("before", "after") or self.paired_by_upload():
            return [n for n in ("before", "after") if n in self.rasters]
        return [newest]

    def is_current(self, stored: StoredResult) -> bool:
        """Whether a stored result was computed from the rasters loaded now (a new upload
        under one of its input names makes it stale)."""
        return all(self.raster_uids.get(name) == uid for name, uid in stored.inputs if name != "region")

    def region_outside(self, names: list[str]) -> bool:
        """Whether the drawn region misses every one of these rasters (a region drawn for
        earlier images, or images that cannot be placed on the map)."""
        if self.region is None or not names:
            return False
        from shapely.geometry import shape

        from rschat.geo.region import footprint_wgs84, region_geometry

        geom = region_geometry(self.region)
        placed = [self.rasters[n] for n in names if n in self.rasters and self.rasters[n].georeferenced]
        return not any(geom.intersects(shape(footprint_wgs84(r))) for r in placed)


def remove_stale_folders(work_dir: Path, max_age_s: float, keep: set[Path] | frozenset[Path] = frozenset()) -> int:
    """Delete session folders under ``work_dir`` untouched for ``max_age_s`` seconds, except
    ``keep`` (live sessions): folders of sessions that ended without ``close`` (a server
    that stopped, an API client that never came back). Returns how many were deleted."""
    import time

    removed = 0
    cutoff = time.time() - max_age_s
    for folder in work_dir.glob(f"{SESSION_PREFIX}*") if work_dir.is_dir() else ():
        try:
            stale = folder.is_dir() and folder not in keep and folder.stat().st_mtime < cutoff
        except OSError:  # removed meanwhile
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


_NAMED_NOTE = re.compile(r"'(?P<name>[^']{1,200})' has (?P<rest>.+)", re.S)


def merged_notes(notes: list[str]) -> list[str]:
    """Notes that differ only in the image they name, said once for all of them: five
    dates of a NAIP series each read as red, green, blue, NIR is one note naming five."""
    groups: dict[str, list[str]] = {}
    out: list[str | tuple[str, str]] = []
    for note in notes:
        m = _NAMED_NOTE.fullmatch(note)
        if m is None:
            out.append(note)
            continue
        if m["rest"] not in groups:
            groups[m["rest"]] = []
            out.append(("group", m["rest"]))
        groups[m["rest"]].append(m["name"])
    merged = []
    for item in out:
        if isinstance(item, str):
            merged.append(item)
            continue
        names = groups[item[1]]
        if len(names) == 1:
            merged.append(f"'{names[0]}' has {item[1]}")
        else:
            listed = ", ".join(f"'{n}'" for n in names[:-1]) + f" and '{names[-1]}'"
            merged.append(f"{listed} have {item[1]}")
    return merged
