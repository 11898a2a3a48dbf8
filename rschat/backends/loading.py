"""The one place that resolves and loads weights.

Each capability has one setting (see ``rschat.config``): ``RSCHAT_VLM`` (hub id or local
folder), ``RSCHAT_SAM`` (``model_type:checkpoint``), ``RSCHAT_CLIP`` (``model_name`` or
``model_name:weights``), ``RSCHAT_GENERATOR`` (diffusers folder or hub id), plus
``RSCHAT_VLM_QUANT`` (4bit | 8bit | none), ``RSCHAT_VLM_ADAPTER`` (a LoRA adapter folder from
``rschat train vlm``, applied on top of RSCHAT_VLM) and ``RSCHAT_DEVICE`` (cpu | cuda | auto).
Nothing is downloaded implicitly: hub ids resolve only from the local cache (or after
``rschat weights pull``). A missing or broken weight raises ``BackendUnavailable`` with one
message naming the setting; callers then stay in lite mode for that capability.

All four go through ``_load``: check the setting, build inside ``try``, turn any error into
one ``BackendUnavailable`` (setting, value, error, hint), cache the backend or the failure.
The ``load_*`` functions state only what differs. Loaded models are shared by all sessions
of the process (they are read-only) and loaded once, on first use; model libraries are
imported only here and in the backend modules, and only then.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rschat.config import Settings, load_settings

_HUB_ID = re.compile(r"^(?:hf-hub:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name


def names_hub_id(value: str) -> bool:
    """Whether a model setting names a Hugging Face hub id rather than a local path:
    ``Qwen/Qwen2.5-VL-3B-Instruct`` yes, ``checkpoints/qwen2.5-vl-3b`` (an existing folder) no.
    A CLIP setting counts by its model name (``hf-hub:org/name``) or its weights."""
    value = value.strip()
    return bool(value) and _HUB_ID.match(value) is not None and not os.path.exists(value)


def hub_offline(settings: Settings) -> bool:
    """``RSCHAT_OFFLINE``: 1 / 0 as set; ``auto`` (the default): offline unless RSCHAT_VLM,
    RSCHAT_GENERATOR or RSCHAT_CLIP names a hub id (so a Space configured with a hub id
    can fetch its weights, and lite mode never touches the network)."""
    mode = settings.offline.strip().lower()
    if mode in ("1", "true", "yes", "on"):
        return True
    if mode in ("0", "false", "no", "off"):
        return False
    clip = [part for part in split_spec(settings.clip) if part] if settings.clip else []
    return not any(names_hub_id(v) for v in [settings.vlm, settings.generator, *clip])


def apply_offline(settings: Settings) -> bool:
    """Set HF_HUB_OFFLINE from the settings (an explicit RSCHAT_OFFLINE wins; with ``auto`` a
    value already in the environment is kept), also in an already imported huggingface_hub
    (Gradio imports it first, and it reads the variable once). Returns whether offline."""
    if settings.offline.strip().lower() == "auto":
        os.environ.setdefault("HF_HUB_OFFLINE", "1" if hub_offline(settings) else "0")
    else:
        os.environ["HF_HUB_OFFLINE"] = "1" if hub_offline(settings) else "0"
    offline = os.environ["HF_HUB_OFFLINE"].strip().upper() in ("1", "ON", "YES", "TRUE")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = offline  # type: ignore[attr-defined]
    return offline


_cache: dict[tuple[str, ...], Any] = {}
_failures: dict[tuple[str, ...], str] = {}  # a failed load is not retried on every turn
_lock = threading.Lock()


class BackendUnavailable(RuntimeError):
    """A configured model could not be loaded; the message names the setting to change."""


@dataclass(frozen=True)
class Capability:
    """What the loading messages say about one capability."""

    kind: str  # 'vlm', 'sam', 'clip', 'generator': the key of ``status``
    setting: str  # the environment variable that configures it
    unset: str  # the message when the setting is empty
    hint: str  # appended to a failed load: what a working value looks like


VLM = Capability(
    "vlm",
    "RSCHAT_VLM",
    "No vision-language model is configured: set RSCHAT_VLM to a model folder or hub id.",
    "Point RSCHAT_VLM at a local model folder, or fetch it first with `rschat weights pull NAME`.",
)
SAM = Capability(
    "sam",
    "RSCHAT_SAM",
    "SAM is not configured: set RSCHAT_SAM=model_type:checkpoint (e.g. vit_b:/w/sam_vit_b.pth).",
    "Use model_type:checkpoint with a segment_anything model type (vit_h, vit_l, vit_b) and an existing .pth file.",
)
CLIP = Capability(
    "clip",
    "RSCHAT_CLIP",
    "CLIP is not configured: set RSCHAT_CLIP=model_name:weights (e.g. ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt).",
    "Use an open_clip model name and a local weights file, e.g. ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt.",
)
GENERATOR = Capability(
    "generator",
    "RSCHAT_GENERATOR",
    "Image generation is not configured: set RSCHAT_GENERATOR to a diffusers model folder.",
    "Point it at a local diffusers folder (e.g. a Stable Diffusion fine-tuned on remote sensing).",
)


def split_spec(spec: str) -> tuple[str, str | None]:
    """'vit_b:/w/sam.pth' -> ('vit_b', '/w/sam.pth'); 'ViT-B-32' -> ('ViT-B-32', None)."""
    name, sep, path = spec.partition(":")
    return (name.strip(), path.strip() or None) if sep else (spec.strip(), None)


apply_offline(load_settings())  # once, at import: before any model library is imported


def _load(cap: Capability, value: str, key: tuple[str, ...], build: Callable[[], Any]) -> Any:
    """The backend ``build()`` returns for a setting's ``value``, built once per key and
    cached; a failure is remembered and raised again as the same ``BackendUnavailable``."""
    if not value:
        raise BackendUnavailable(cap.unset)
    full_key = (cap.kind, value, *key)
    with _lock:
        if full_key in _failures:
            raise BackendUnavailable(_failures[full_key])
        if full_key not in _cache:
            try:
                _cache[full_key] = build()
            except BackendUnavailable as err:  # already names its setting (RSCHAT_DEVICE, RSCHAT_VLM_QUANT)
                _failures[full_key] = str(err)
                raise
            except Exception as err:
                error = f"{type(err).__name__}: {str(err)[:300]}"
                _failures[full_key] = f"{cap.setting}={value} could not be loaded ({error}). {cap.hint}"
                raise BackendUnavailable(_failures[full_key]) from err
        return _cache[full_key]


def status(kind: str) -> str | None:
    """'loaded: NAME', 'failed: MESSAGE' or None (not tried) for a capability kind
    ('vlm', 'sam', 'clip', 'generator') in this process."""
    with _lock:
        for key, backend in _cache.items():
            if key[0] == kind:
                return f"loaded: {getattr(backend, 'name', key[1])}"
        for key, message in _failures.items():
            if key[0] == kind:
                return f"failed: {message}"
    return None


def torch_device(settings: Settings) -> str:
    import torch

    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(
            f"RSCHAT_DEVICE={settings.device} but no CUDA device is visible; set RSCHAT_DEVICE=cpu."
        )
    return settings.device


def quantised(settings: Settings) -> bool:
    """Whether RSCHAT_VLM_QUANT asks for bitsandbytes weights (4bit, 8bit), not 16/32-bit ones."""
    return settings.vlm_quant.lower() not in ("none", "", "fp16", "bf16", "fp32")


def quantization_config(settings: Settings) -> Any:
    """BitsAndBytesConfig for RSCHAT_VLM_QUANT: 4bit (NF4, double quant) or 8bit; None for none."""
    import torch
    from transformers import BitsAndBytesConfig

    quant = settings.vlm_quant.lower()
    if not quantised(settings):
        return None
    compute = torch.bfloat16
    # The language model holds nearly all the weights; vision towers and projectors are
    # small and lose the most from quantisation, so they stay in 16 bits.
    skip = [r".*\.?visual", r".*vision_tower", r".*vision_model", r".*multi_modal_projector", "lm_head"]
    if quant == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            llm_int8_skip_modules=skip,
        )
    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    raise BackendUnavailable(f"RSCHAT_VLM_QUANT={settings.vlm_quant} is not one of 4bit, 8bit, none.")


def load_vlm(settings: Settings) -> Any:
    """The configured vision-language model as a ``VLMBackend`` (cached)."""

    def build() -> Any:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from rschat.backends.vlm import DECODE_MODES, VLMBackend, effective_decode

        if settings.vlm_decode not in DECODE_MODES:
            raise BackendUnavailable(
                f"RSCHAT_VLM_DECODE={settings.vlm_decode} is not one of {', '.join(DECODE_MODES)}."
            )
        device = torch_device(settings)
        quant = quantization_config(settings)
        dtype = torch.bfloat16 if device != "cpu" or quant is not None else torch.float32
        processor = AutoProcessor.from_pretrained(settings.vlm)
        model = AutoModelForImageTextToText.from_pretrained(
            settings.vlm, quantization_config=quant, device_map=device, dtype=dtype
        )
        adapter = settings.vlm_adapter.strip()
        if adapter:
            model = apply_vlm_adapter(model, adapter, settings.vlm, merge=quant is None)
        name = f"{settings.vlm} + LoRA adapter {adapter}" if adapter else settings.vlm
        decode, why = effective_decode(settings.vlm_decode, device, quant is not None)
        if decode != "dynamic":
            name += f", {decode} decoding" + (f" ({why})" if why else "")
        return VLMBackend(model.eval(), processor, name=name, adapter=adapter or None, decode=decode)

    key = (settings.vlm_quant, settings.device, settings.vlm_adapter, settings.vlm_decode)
    return _load(VLM, settings.vlm, key, build)


def apply_vlm_adapter(model: Any, folder: str, base: str, merge: bool) -> Any:
    """``model`` with the peft adapter in ``folder`` (RSCHAT_VLM_ADAPTER) applied. Merged into
    the weights when the base is not quantised (same outputs, no adapter cost per token); a
    quantised base keeps the adapter beside its 4/8-bit weights. An adapter that is not a
    folder, not a peft adapter, made for another model family, or whose weights do not fit
    the base is refused with a ``BackendUnavailable`` naming RSCHAT_VLM_ADAPTER."""
    import json
    import warnings
    from pathlib import Path

    from peft import PeftModel

    setting = f"RSCHAT_VLM_ADAPTER={folder}"
    path = Path(folder)
    if not path.is_dir():
        raise BackendUnavailable(f"{setting}: no such folder (give the --out folder of `rschat train vlm`).")
    if not (path / "adapter_config.json").is_file():
        raise BackendUnavailable(f"{setting} is not a peft adapter folder (no adapter_config.json).")
    card = path / "training_card.json"
    trained_on = json.loads(card.read_text()).get("model_type") if card.is_file() else None
    if trained_on and trained_on != model.config.model_type:
        raise BackendUnavailable(
            f"{setting} was trained on a {trained_on} model but RSCHAT_VLM={base} is a {model.config.model_type}."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            peft_model = PeftModel.from_pretrained(model, str(path))
    except Exception as err:
        error = f"{type(err).__name__}: {str(err)[:300]}"
        raise BackendUnavailable(f"{setting} does not fit RSCHAT_VLM={base} ({error}).") from err
    missing = [str(w.message)[:300] for w in caught if "missing adapter keys" in str(w.message)]
    if missing:  # peft only warns; an adapter that half-loads would answer as neither model
        raise BackendUnavailable(f"{setting} does not fit RSCHAT_VLM={base} ({missing[0]}).")
    return peft_model.merge_and_unload() if merge else peft_model


def load_sam(settings: Settings) -> Any:
    """The configured segment-anything model as a ``SamBackend`` (cached)."""

    def build() -> Any:
        from rschat.backends.sam import SamBackend, build_sam_model

        model_type, checkpoint = split_spec(settings.sam)
        if not checkpoint:  # a SAM without its weights outlines noise: refuse, never guess
            raise ValueError("no checkpoint is named; give model_type:checkpoint")
        model = build_sam_model(model_type, checkpoint)
        return SamBackend(model.to(torch_device(settings)), name=settings.sam)

    return _load(SAM, settings.sam, (settings.device,), build)


def load_clip(settings: Settings) -> Any:
    """The configured open_clip model as a ``ClipBackend`` (cached)."""

    def build() -> Any:
        from rschat.backends.clip import ClipBackend, build_clip_model

        name, weights = split_spec(settings.clip)
        if not weights:  # random CLIP weights would label scenes at random: refuse
            raise ValueError("no weights are named; give model_name:weights")
        model, preprocess, tokenizer = build_clip_model(name, weights)
        return ClipBackend(model.to(torch_device(settings)), preprocess, tokenizer, name=settings.clip)

    return _load(CLIP, settings.clip, (settings.device,), build)


def load_generator(settings: Settings) -> Any:
    """The configured diffusers pipeline as a ``GeneratorBackend`` (cached)."""

    def build() -> Any:
        import torch
        from diffusers import AutoPipelineForText2Image

        from rschat.backends.generator import GeneratorBackend

        device = torch_device(settings)
        dtype = torch.float16 if device != "cpu" else torch.float32
        pipe = AutoPipelineForText2Image.from_pretrained(settings.generator, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        # RSCHAT_GENERATOR_LORA: a LoRA from `rschat train diffusion`, applied by the backend
        return GeneratorBackend(pipe.to(device), name=settings.generator, lora=settings.generator_lora)

    return _load(GENERATOR, settings.generator, (settings.device, settings.generator_lora), build)


def gpu_task(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap GPU work for a Hugging Face ZeroGPU Space (``spaces.GPU``) when that package is
    present; elsewhere return ``fn`` unchanged."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn)  # type: ignore[no-any-return]


def clear_cache() -> None:
    """Forget loaded models and failures (tests; switching weights at run time)."""
    with _lock:
        _cache.clear()
        _failures.clear()
