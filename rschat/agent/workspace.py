"""One chat session's state: its images, visual prompts, region and earlier results.

A ``Workspace`` belongs to exactly one session (a browser tab, a CLI run); nothing in
it is shared. Results are stored under ids (``r1``, ``r2``, ...) with the identity of
the rasters they were computed from, so a follow-up question reuses them instead of
recomputing, and a new upload makes them stale automatically.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rschat.config import Settings
from rschat.geo.io import read_raster
from rschat.geo.raster import Raster
from rschat.tools.base import ToolResult

_uids = itertools.count(1)


@dataclass
class StoredResult:
    id: str
    tool: str
    args: dict[str, Any]
    inputs: tuple[tuple[str, int], ...]  # (raster name, raster uid) it was computed from
    result: ToolResult


@dataclass
class Workspace:
    settings: Settings
    out_dir: Path = field(default=Path())
    rasters: dict[str, Raster] = field(default_factory=dict)
    raster_uids: dict[str, int] = field(default_factory=dict)
    results: list[StoredResult] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)  # {"role", "content"}

    def __post_init__(self) -> None:
        if self.out_dir == Path():
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
            self.out_dir = Path(tempfile.mkdtemp(prefix="session-", dir=self.settings.work_dir))

    # -- images -------------------------------------------------------------------------
    def add_raster(self, name: str, raster: Raster) -> None:
        raster.name = raster.name or name
        self.rasters[name] = raster
        self.raster_uids[name] = next(_uids)

    def load(self, name: str, path: str | Path) -> Raster:
        """Read a file (checked against the size limits) and store it under ``name``."""
        raster = read_raster(path, max_pixels=self.settings.max_pixels, max_bytes=self.settings.max_file_bytes)
        self.add_raster(name, raster)
        return raster

    def load_uploads(self, paths: list[Path]) -> list[str]:
        """Name a turn's uploads: one -> image; two -> before/after (by date when both
        have one, else in upload order); more -> a dated stack t1..tN. Returns the names."""
        rasters = [
            read_raster(p, max_pixels=self.settings.max_pixels, max_bytes=self.settings.max_file_bytes) for p in paths
        ]
        if len(rasters) == 1:
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

    # -- results ------------------------------------------------------------------------
    def _inputs_key(self, names: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        return tuple((n, self.raster_uids.get(n, -1)) for n in names)

    def find_result(self, tool: str, args: dict[str, Any], needs: tuple[str, ...]) -> StoredResult | None:
        key = self._inputs_key(tuple(args.get(n, n) for n in needs))
        for stored in reversed(self.results):
            if (
                stored.tool == tool
                and stored.inputs == key
                and json.dumps(stored.args, sort_keys=True) == json.dumps(args, sort_keys=True)
            ):
                return stored
        return None

    def store_result(self, tool: str, args: dict[str, Any], needs: tuple[str, ...], result: ToolResult) -> StoredResult:
        stored = StoredResult(
            id=f"r{len(self.results) + 1}",
            tool=tool,
            args=dict(args),
            inputs=self._inputs_key(tuple(args.get(n, n) for n in needs)),
            result=result,
        )
        self.results.append(stored)
        return stored

    def last_result(self) -> StoredResult | None:
        return self.results[-1] if self.results else None

    def close(self) -> None:
        """Delete the session's files (called when the session ends)."""
        shutil.rmtree(self.out_dir, ignore_errors=True)
