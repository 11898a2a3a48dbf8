"""The one place that resolves and loads weights.

Each capability has one setting (see ``rschat.config``): ``RSCHAT_VLM`` (hub id or local
folder), ``RSCHAT_SAM`` (``model_type:checkpoint``), ``RSCHAT_CLIP`` (``model_name`` or
``model_name:weights``), ``RSCHAT_GENERATOR`` (diffusers folder or hub id), plus
``RSCHAT_VLM_QUANT`` (4bit | 8bit | none) and ``RSCHAT_DEVICE`` (cpu | cuda | auto).
Nothing is downloaded implicitly: hub ids resolve only from the local cache (or after
``rschat weights pull``). A missing or broken weight raises ``BackendUnavailable`` with one
message naming the setting; callers then stay in lite mode for that capability.

Loaded models are shared by all sessions of the process (they are read-only) and loaded
once, on first use; model libraries are imported only here and only then.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from rschat.config import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read once when huggingface_hub is imported

_cache: dict[tuple[str, ...], Any] = {}
_failures: dict[tuple[str, ...], str] = {}  # a failed load is not retried on every turn
_lock = threading.Lock()


class BackendUnavailable(RuntimeError):
    """A configured model could not be loaded; the message names the setting to change."""


def split_spec(spec: str) -> tuple[str, str | None]:
    """'vit_b:/w/sam.pth' -> ('vit_b', '/w/sam.pth'); 'ViT-B-32' -> ('ViT-B-32', None)."""
    name, sep, path = spec.partition(":")
    return (name.strip(), path.strip() or None) if sep else (spec.strip(), None)


def _cached(key: tuple[str, ...], load: Callable[[], Any]) -> Any:
    with _lock:
        if key in _failures:
            raise BackendUnavailable(_failures[key])
        if key not in _cache:
            try:
                _cache[key] = load()
            except BackendUnavailable as err:
                _failures[key] = str(err)
                raise
        return _cache[key]


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


def quantization_config(settings: Settings) -> Any:
    """BitsAndBytesConfig for RSCHAT_VLM_QUANT: 4bit (NF4, double quant) or 8bit; None for none."""
    import torch
    from transformers import BitsAndBytesConfig

    quant = settings.vlm_quant.lower()
    if quant in ("none", "", "fp16", "bf16", "fp32"):
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
    if not settings.vlm:
        raise BackendUnavailable("No vision-language model is configured: set RSCHAT_VLM to a model folder or hub id.")

    def load() -> Any:
        from rschat.backends.vlm import VLMBackend

        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            device = torch_device(settings)
            quant = quantization_config(settings)
            dtype = torch.bfloat16 if device != "cpu" or quant is not None else torch.float32
            processor = AutoProcessor.from_pretrained(settings.vlm)
            model = AutoModelForImageTextToText.from_pretrained(
                settings.vlm, quantization_config=quant, device_map=device, dtype=dtype
            )
        except BackendUnavailable:
            raise
        except Exception as err:
            raise BackendUnavailable(
                f"RSCHAT_VLM={settings.vlm} could not be loaded ({type(err).__name__}: {str(err)[:300]}). Point "
                "RSCHAT_VLM at a local model folder, or fetch it first with `rschat weights pull NAME`."
            ) from err
        model.eval()
        return VLMBackend(model, processor, name=settings.vlm)

    return _cached(("vlm", settings.vlm, settings.vlm_quant, settings.device), load)


def load_sam(settings: Settings) -> Any:
    """The configured segment-anything model as a ``SamBackend`` (cached)."""
    if not settings.sam:
        raise BackendUnavailable(
            "SAM is not configured: set RSCHAT_SAM=model_type:checkpoint (e.g. vit_b:/w/sam_vit_b.pth)."
        )

    def load() -> Any:
        from rschat.backends.sam import SamBackend, build_sam_model

        model_type, checkpoint = split_spec(settings.sam)
        try:
            model = build_sam_model(model_type, checkpoint)
            model.to(torch_device(settings))
        except BackendUnavailable:
            raise
        except Exception as err:
            raise BackendUnavailable(
                f"RSCHAT_SAM={settings.sam} could not be loaded ({type(err).__name__}: {str(err)[:300]}). Use "
                "model_type:checkpoint with a type of vit_h, vit_l, vit_b (or tiny) and an existing .pth file."
            ) from err
        return SamBackend(model, name=settings.sam)

    return _cached(("sam", settings.sam, settings.device), load)


def load_clip(settings: Settings) -> Any:
    """The configured open_clip model as a ``ClipBackend`` (cached)."""
    if not settings.clip:
        raise BackendUnavailable(
            "CLIP is not configured: set RSCHAT_CLIP=model_name:weights (e.g. ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt)."
        )

    def load() -> Any:
        from rschat.backends.clip import ClipBackend, build_clip_model

        name, weights = split_spec(settings.clip)
        try:
            model, preprocess, tokenizer = build_clip_model(name, weights)
            model.to(torch_device(settings))
        except BackendUnavailable:
            raise
        except Exception as err:
            raise BackendUnavailable(
                f"RSCHAT_CLIP={settings.clip} could not be loaded ({type(err).__name__}: {str(err)[:300]}). Use an "
                "open_clip model name and a local weights file, e.g. ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt."
            ) from err
        return ClipBackend(model, preprocess, tokenizer, name=settings.clip)

    return _cached(("clip", settings.clip, settings.device), load)


def load_generator(settings: Settings) -> Any:
    """The configured diffusers pipeline as a ``GeneratorBackend`` (cached)."""
    if not settings.generator:
        raise BackendUnavailable(
            "Image generation is not configured: set RSCHAT_GENERATOR to a diffusers model folder."
        )

    def load() -> Any:
        from rschat.backends.generator import GeneratorBackend

        try:
            import torch
            from diffusers import AutoPipelineForText2Image

            device = torch_device(settings)
            dtype = torch.float16 if device != "cpu" else torch.float32
            pipe = AutoPipelineForText2Image.from_pretrained(settings.generator, dtype=dtype)
            pipe.set_progress_bar_config(disable=True)
            pipe.to(device)
        except BackendUnavailable:
            raise
        except Exception as err:
            raise BackendUnavailable(
                f"RSCHAT_GENERATOR={settings.generator} could not be loaded ({type(err).__name__}: {str(err)[:300]}). "
                "Point it at a local diffusers folder (e.g. a Stable Diffusion fine-tuned on remote sensing)."
            ) from err
        return GeneratorBackend(pipe, name=settings.generator)

    return _cached(("generator", settings.generator, settings.device), load)


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
