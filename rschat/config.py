"""One settings object for the whole app.

Values come from, in increasing priority: the defaults below, an optional TOML file
(``RSCHAT_CONFIG`` or ``./rschat.toml``) with the same keys in lower case, and
environment variables ``RSCHAT_<KEY>``. Nothing here imports a model library.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    # Largest image accepted, in pixels (width x height). Checked from the file header
    # before any pixel is decoded, so a decompression bomb is refused cheaply.
    max_pixels: int = 64_000_000
    # Largest upload accepted, in bytes.
    max_file_bytes: int = 512 * 1024 * 1024
    # Longest chat message read, in characters. A question is a sentence or two; a cap keeps
    # a pasted megabyte from holding the planner (and every other user's turn) hostage.
    max_message_chars: int = 4000
    # Where per-session artifacts (overlays, GeoTIFFs, GeoJSON) are written.
    work_dir: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / "rschat")
    # Full-mode backends (issue "Full mode"); empty means lite mode for that capability.
    vlm: str = ""
    vlm_quant: str = "4bit"
    device: str = "cpu"
    sam: str = ""
    clip: str = ""
    generator: str = ""
    # Whether Hugging Face libraries may download (sets HF_HUB_OFFLINE): "1" offline, "0"
    # online, "auto" (default) offline unless a model setting names a hub id (a value that is
    # not an existing local path, e.g. RSCHAT_VLM=Qwen/Qwen2.5-VL-3B-Instruct on a Space).
    offline: str = "auto"
    # Empty host / port 0: Gradio's own defaults, which honour GRADIO_SERVER_NAME and
    # GRADIO_SERVER_PORT (a Hugging Face Space sets them to serve on 0.0.0.0:7860).
    host: str = ""
    port: int = 0


def _coerce(name: str, raw: object) -> object:
    kind = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    if kind == "int":
        return int(str(raw))
    if kind == "Path":
        return Path(str(raw))
    return str(raw)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build the settings from the TOML file (if any) and ``RSCHAT_*`` variables."""
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    toml_path = Path(env.get("RSCHAT_CONFIG", "rschat.toml"))
    if toml_path.is_file():
        with toml_path.open("rb") as fh:
            for key, raw in tomllib.load(fh).items():
                if key in {f.name for f in dataclasses.fields(Settings)}:
                    values[key] = _coerce(key, raw)
    for f in dataclasses.fields(Settings):
        raw = env.get(f"RSCHAT_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = _coerce(f.name, raw)
    return Settings(**values)  # type: ignore[arg-type]
