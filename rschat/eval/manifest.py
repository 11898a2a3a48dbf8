"""What every eval shares: reading a manifest, finding its files, reading images as a
session would and running a tool through the registry as a user's request does."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rschat.config import Settings, load_settings
from rschat.geo.errors import InputError
from rschat.geo.raster import Raster
from rschat.geo.windowed import read_for_session


def resolve(manifest: Path, rel: str) -> Path:
    """A manifest path, relative to the manifest's folder; failing that, to the nearest
    ancestor folder that holds it (../shared/data/change/manifest.json is written
    relative to data/)."""
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{manifest.name}: a file path must be a non-empty string, not {rel!r}.")
    if Path(rel).is_absolute():
        if Path(rel).is_file():
            return Path(rel)
        raise InputError(f"{rel} (listed in {manifest.name}) does not exist.")
    for base in [manifest.parent, *manifest.parent.parents]:
        if (base / rel).is_file():
            return base / rel
    raise InputError(f"{rel} (listed in {manifest.name}) was not found next to the manifest.")


def load_entries(manifest: Path, required: Mapping[str, type | tuple[type, ...]]) -> list[dict[str, Any]]:
    """The manifest's entries: a non-empty JSON list of objects, each with the required
    keys of the required types; anything else is refused with the entry's number."""
    try:
        entries = json.loads(Path(manifest).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{manifest} is not a readable JSON manifest ({err}).") from err
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{manifest} must hold a non-empty JSON list of entries.")
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise InputError(f"{manifest.name}: entry {number} is not a JSON object.")
        missing = [key for key in required if key not in entry]
        if missing:
            raise InputError(f"{manifest.name}: entry {number} lacks {', '.join(repr(k) for k in missing)}.")
        for key, kind in required.items():
            if not isinstance(entry[key], kind) or isinstance(entry[key], bool):
                raise InputError(f"{manifest.name}: entry {number}: {key!r} has the wrong type ({entry[key]!r}).")
    return entries


def read_image(path: Path, settings: Settings) -> Raster:
    """An image read under the session's limits, exactly as the app reads an upload."""
    return read_for_session(path, settings)


def run_tool(name: str, args: Mapping[str, Any], rasters: Mapping[str, Raster], settings: Settings) -> Any:
    """One tool call through the registry (validated, defaults filled, as the executor
    does); its files go to a folder that is removed afterwards."""
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    tool = REGISTRY[name]
    with tempfile.TemporaryDirectory() as tmp:
        return tool.run(tool.validate(args), ToolContext(rasters=rasters, out_dir=Path(tmp), settings=settings))


def add_common(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--manifest", required=True, help=f"JSON list of {what}; paths relative to its folder")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run_command(
    name: str, args: argparse.Namespace, evaluate: Callable[..., dict], table: Callable[[dict], str]
) -> int:
    """The shared body of ``rschat eval NAME``: evaluate, print a table or JSON; a bad
    manifest or input is refused with its message (exit 1)."""
    try:
        report = evaluate(Path(args.manifest), load_settings())
    except InputError as err:
        print(f"rschat eval {name}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 1 if report.get("failed") else 0


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
