"""``rschat batch``: a tool over many scenes, or one huge scene, on Dask.

Each scene (``segment``, ``count_objects``) or pair (``detect_changes``) goes through the
same code as a chat request, read tile by tile, but its tiles run as Dask tasks: on local threads by default, on local
worker processes with ``--scheduler processes``, or on a dask.distributed cluster with
``--scheduler tcp://HOST:8786``. The statistics every tile shares are estimated once on
the machine that runs the command; tiles then travel to the workers as small, picklable
values and their masks come back to be written, so the workers need to read the input
files (a shared file system, or GDAL paths such as /vsis3/... that every worker reaches)
and nothing else. Each item's folder gets the tool's files (full-resolution COG masks or
class maps, GeoJSON, previews) and ``summary.json``; ``batch.json`` lists all.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from rschat.config import Settings


def _client(scheduler: str, workers: int) -> Any:
    """A dask.distributed client: in-process threads, local processes or a cluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # the batch extra is not installed
        raise RuntimeError("rschat batch needs Dask: pip install 'rschat[batch]'") from err
    if scheduler == "threads":
        return Client(LocalCluster(processes=False, n_workers=1, threads_per_worker=workers, dashboard_address=":0"))
    if scheduler == "processes":
        return Client(LocalCluster(processes=True, n_workers=workers, threads_per_worker=1, dashboard_address=":0"))
    return Client(scheduler)


def dask_map(client: Any, in_flight: int) -> Callable[[Callable[[Any], Any], list[Any]], Iterator[Any]]:
    """A ``map_tiles`` (see backends.change_tiled) that runs tiles as Dask tasks, at most
    ``in_flight`` at a time so results never pile up on the workers or here."""
    from distributed import as_completed

    def map_tiles(fn: Callable[[Any], Any], tiles: list[Any]) -> Iterator[Any]:
        queue = iter(tiles)
        running = as_completed([client.submit(fn, t, pure=False) for t in islice(queue, in_flight)])
        for future in running:
            result = future.result()
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                running.add(client.submit(fn, nxt, pure=False))
            yield result

    return map_tiles


# Each tool: the names its inputs take, in order (one scene, or a before/after pair).
BATCH_TOOLS = {"detect_changes": ("before", "after"), "segment": ("image",), "count_objects": ("image",)}


def item_name(paths: list[Path]) -> str:
    """A folder name for one item: its file stems, made safe."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(p.stem for p in paths))[:120]


def run_item(
    tool: str, paths: list[Path], args: dict[str, Any], out_dir: Path, settings: Settings, map_tiles: Any
) -> dict[str, Any]:
    """One tool call on one item (a scene or a pair), its tiles through ``map_tiles``,
    exactly as a chat request would run it; its summary, also written to summary.json."""
    from rschat.geo.windowed import read_for_session
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    # tile_above=0: every scene goes through the tiles, whatever its size
    rasters = {
        name: read_for_session(path, settings, tile_above=0)
        for name, path in zip(BATCH_TOOLS[tool], paths, strict=True)
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ToolContext(rasters=rasters, out_dir=out_dir, settings=settings, map_tiles=map_tiles)
    start = time.perf_counter()
    result = REGISTRY[tool].run(args, ctx)
    summary = {
        "inputs": [str(p) for p in paths],
        "seconds": round(time.perf_counter() - start, 2),
        "summary": result.summary,
        "figures": result.figures.as_dict(),
        "files": {a.kind: a.path.name for a in result.artifacts},
        "method": result.method,
        "notes": result.notes,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_batch(
    tool: str,
    items: list[list[Path]],
    out: Path,
    settings: Settings,
    scheduler: str = "threads",
    workers: int = 2,
    args: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run ``tool`` on every item; returns (and writes to out/batch.json) one summary each.
    A failed item is reported and skipped, so one bad scene does not stop the batch."""
    from rschat.geo.errors import InputError

    if tool not in BATCH_TOOLS:
        raise ValueError(f"rschat batch runs {', '.join(BATCH_TOOLS)}; not {tool}")
    from rschat.tools import REGISTRY

    try:
        REGISTRY[tool].validate(args or {})
    except InputError as err:
        raise ValueError(str(err)) from err
    wanted = len(BATCH_TOOLS[tool])
    for paths in items:
        if len(paths) != wanted:
            raise ValueError(
                f"{tool} takes {wanted} file(s) per --input, got {len(paths)}: {' '.join(map(str, paths))}"
            )
    client = _client(scheduler, workers)
    try:
        map_tiles = dask_map(client, in_flight=2 * max(1, sum(client.nthreads().values())))
        summaries = []
        for i, paths in enumerate(items, start=1):
            name = item_name(paths)
            log(f"[{i}/{len(items)}] {name}")
            try:
                summaries.append(run_item(tool, paths, args or {}, out / name, settings, map_tiles))
                log(f"    {summaries[-1]['summary']} ({summaries[-1]['seconds']} s)")
            except InputError as err:
                summaries.append({"inputs": [str(p) for p in paths], "error": str(err)})
                log(f"    failed: {err}")
    finally:
        client.close()
    (out / "batch.json").write_text(json.dumps(summaries, indent=2))
    return summaries
