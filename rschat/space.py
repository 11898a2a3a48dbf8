"""``rschat space``: the files a Hugging Face Space needs, written into a folder and uploaded.

A Space runs ``app.py`` from a copy of this repository, configured by the YAML front matter
of its ``README.md`` (``sdk: gradio``, ``app_file: app.py``, the hardware). Pushing the
repository with git does not work: its example GeoTIFFs and the vendored Leaflet images are
plain git blobs, which the Hub refuses. ``HfApi.upload_folder`` stores them properly
(Xet / LFS), so the Space is published from a folder instead:

- ``README.md`` (with the front matter), ``app.py``, ``requirements.txt`` (what the Space
  installs) and ``pyproject.toml`` (which marks the folder as a source checkout, where
  ``rschat.resources`` finds ``prompts/``, ``assets/`` and ``checkpoints/``);
- the ``rschat`` package (its ``.py`` files and ``py.typed``);
- ``prompts/*.txt``, ``assets/examples`` and ``assets/vendor`` (not the screenshots), and
  ``checkpoints/manifest.json``.

Nothing from ``tests/``, ``scripts/`` or ``docs/``. ``--dry-run`` writes the folder and lists
it (size, binary or text) without touching the network.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from rschat.resources import checkout

TOP_FILES = ("README.md", "app.py", "requirements.txt", "pyproject.toml")
PACKAGE_FILES = ("*.py", "py.typed")
DATA = (
    ("prompts", ("*.txt",)),
    ("assets/examples", ("*",)),
    ("assets/vendor", ("*",)),
    ("checkpoints", ("manifest.json",)),
)


@dataclass(frozen=True)
class SpaceFile:
    path: str  # relative to the Space's root, with forward slashes
    size: int  # bytes
    binary: bool  # stored by the Hub as Xet / LFS, never as a plain git blob


def source_root() -> Path:
    root = checkout()
    if root is None:
        raise FileNotFoundError(
            "rschat space builds the Space from a source checkout (app.py, README.md, pyproject.toml "
            "next to the rschat package); run it from the repository, not from an installed wheel"
        )
    return root


def is_binary(path: Path) -> bool:
    """A NUL byte in the first 8 KiB, or bytes that are not UTF-8: the Hub wants it in Xet / LFS."""
    head = path.read_bytes()[:8192]
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start < len(head) - 4  # a character cut at the 8 KiB boundary is still text
    return False


def space_sources(root: Path | None = None) -> list[tuple[Path, str]]:
    """(source file, path in the Space) for every file the Space needs, sorted."""
    root = root or source_root()
    found: dict[str, Path] = {}
    for name in TOP_FILES:
        found[name] = root / name
    for pattern in PACKAGE_FILES:
        for path in (root / "rschat").rglob(pattern):
            if "__pycache__" not in path.parts:
                found[path.relative_to(root).as_posix()] = path
    for folder, patterns in DATA:
        for pattern in patterns:
            for path in (root / folder).rglob(pattern):
                if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith("."):
                    found[path.relative_to(root).as_posix()] = path
    missing = [rel for rel, path in found.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"the Space needs {', '.join(missing)}, which {root} does not have")
    return sorted(((path, rel) for rel, path in found.items()), key=lambda item: item[1])


def write_space(folder: Path, root: Path | None = None) -> list[SpaceFile]:
    """Write the Space's files into ``folder`` (emptied first when it holds an earlier build)."""
    if folder.exists() and any(folder.iterdir()):
        if not ((folder / "app.py").is_file() and (folder / "rschat").is_dir()):
            raise FileExistsError(
                f"{folder} is not empty and does not look like an earlier Space build; pick another --out"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for source, rel in space_sources(root):
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        files.append(SpaceFile(rel, target.stat().st_size, is_binary(target)))
    return files


def listing(files: list[SpaceFile]) -> str:
    """The file list as printed: size, binary or text, path; then the totals."""
    rows = [f"{f.size:>10,}  {'binary' if f.binary else 'text  '}  {f.path}" for f in files]
    binary = [f for f in files if f.binary]
    total = sum(f.size for f in files)
    rows.append(f"{len(files)} files, {total:,} bytes; {len(binary)} binary (uploaded as Xet / LFS by upload_folder)")
    return "\n".join(rows)


def upload(folder: Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Create the Space if needed (Gradio SDK) and upload ``folder`` to it; returns its URL."""
    os.environ["HF_HUB_OFFLINE"] = "0"  # this command goes online, like `rschat weights pull`
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = False  # type: ignore[attr-defined]
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="space",
        folder_path=str(folder),
        commit_message="Upload rschat (rschat space)",
    )
    return f"https://huggingface.co/spaces/{repo_id}"
