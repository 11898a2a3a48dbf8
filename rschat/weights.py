"""The weights manifest (checkpoints/manifest.json) and fetching weights into checkpoints/
(the checkout's, or ./checkpoints under the current folder for an installed package).

Fetching is the only network access rschat ever makes, and only when a person runs
``rschat weights pull NAME``; on a machine without internet it fails with one message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rschat.resources import checkpoints_dir, manifest_path

MANIFEST = manifest_path()  # ships with the package; pulled weights go to checkpoints_dir() (writable)


def manifest(path: Path | None = None) -> list[dict[str, Any]]:
    return json.loads((path or MANIFEST).read_text())


def entry(name: str) -> dict[str, Any]:
    for item in manifest():
        if item["name"] == name:
            return item
    known = ", ".join(i["name"] for i in manifest())
    raise KeyError(f"no weights called '{name}' in checkpoints/manifest.json (known: {known})")


def table() -> str:
    rows = [f"{'name':<22}{'capability':<11}{'size':>8}  {'memory (4bit/8bit/none)':<24}licence"]
    for i in manifest():
        mem = "/".join(f"{i['memory_gb'].get(q, '-')}" for q in ("4bit", "8bit", "none")) + " GB"
        rows.append(f"{i['name']:<22}{i['capability']:<11}{i['size_gb']:>6.1f} GB  {mem:<24}{i['licence']}")
    return "\n".join(rows)


def pull(name: str, dest: Path | None = None) -> Path:
    """Download the files of a manifest entry into checkpoints/NAME; returns the folder."""
    item = entry(name)
    target = dest or checkpoints_dir() / name
    os.environ["HF_HUB_OFFLINE"] = "0"  # this command, and only this one, may go online
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=item["hub_id"], allow_patterns=item["files"], local_dir=target)
    except Exception as err:
        raise ConnectionError(
            f"could not download {item['hub_id']} ({type(err).__name__}). This machine may have no internet "
            f"access: fetch the files on another machine into {target} and copy them here."
        ) from err
    return target
