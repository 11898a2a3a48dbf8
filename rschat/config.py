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
    # Largest image held in memory, in bytes: the decoded pixels (width x height x bands x
    # bytes per sample) plus the float32 working copy the tools make of them, checked from
    # the header before decoding. The pixel limit alone ignores bands and data type (a
    # 156 KB sparse GeoTIFF of 2000x2000x300 float64 is 4 MP and 14 GB). 2 GiB admits a
    # full 64 MP RGB (0.96 GB) or 4-band uint16 (1.5 GB) image; the tools' own planes
    # then add about as much again, which a 16 GB host can give two turns at once.
    max_decoded_bytes: int = 2 * 1024**3
    # Longest chat message read, in characters. A question is a sentence or two; a cap keeps
    # a pasted megabyte from holding the planner (and every other user's turn) hostage.
    max_message_chars: int = 4000
    # GeoTIFFs larger than this (pixels) are read by windows, tile by tile, by the tools
    # that can (change detection), so memory is bounded by the tile, not the scene.
    tile_above_pixels: int = 16_000_000
    # Largest GeoTIFF scene accepted for tiled processing (pixels); the other tools work on
    # an overview of it (at most ``overview_side`` pixels on its longer side).
    max_scene_pixels: int = 4_000_000_000
    overview_side: int = 2048
    # Tile side (pixels) for tiled processing; 0 = each tool's own (1024-2048).
    tile_px: int = 0
    # One turn's time limit, in seconds: past it the turn is stopped (at the tool's next
    # progress report) and the chat says it took too long, instead of hanging.
    turn_timeout_s: int = 300
    # Gradio's queue: chat turns run at once (the rest wait, with their place shown), and
    # how many events may wait before new ones are refused ("queue is full").
    max_concurrent_turns: int = 4
    queue_max_size: int = 64
    # A session (its images, results and folder) is dropped after this many seconds without
    # an event, and folders left by earlier runs are removed at start: API clients (REST,
    # gradio_client) send no heartbeat, so closing a tab is not the only way a session ends.
    session_max_idle_s: int = 3600
    # Most sessions held at once; a new one past it ends an empty session, else the one idle
    # longest, and only one idle for 2 minutes with no turn running (else the cap is exceeded
    # rather than a user's work lost). Each holds its images in memory until it ends.
    max_sessions: int = 200
    # Where per-session artifacts (overlays, GeoTIFFs, GeoJSON) are written.
    work_dir: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / "rschat")
    # Full-mode backends (issue "Full mode"); empty means lite mode for that capability.
    vlm: str = ""
    vlm_quant: str = "4bit"
    # A peft LoRA adapter folder (``rschat train vlm --out``) applied on top of RSCHAT_VLM;
    # empty: the base model as it is.
    vlm_adapter: str = ""
    # How the VLM decodes: "dynamic" (transformers' default cache), "static" (a preallocated
    # cache), or "compiled" (static cache + torch.compile of the decode step, CUDA graphs):
    # 7.6x the dynamic cache's tokens/s for Qwen2.5-VL-3B in bf16 on an H200 (README), at the
    # cost of compiling on the first turn (about 40 s) and per new cache length. Compilation
    # needs CUDA and RSCHAT_VLM_QUANT=none (bitsandbytes layers do not compile); elsewhere
    # "compiled" runs as "static" and the backends JSON says so.
    vlm_decode: str = "dynamic"
    device: str = "cpu"
    sam: str = ""
    clip: str = ""
    generator: str = ""
    # LoRA weights in diffusers' format applied on top of ``generator`` (a folder written by
    # ``rschat train diffusion``, or its .safetensors file); empty: the base model as is.
    generator_lora: str = ""
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
