"""A vision-language model behind one small interface: messages + images in, text out.

Works with any transformers model loaded by ``AutoModelForImageTextToText`` whose
processor has a chat template (Qwen2-VL, Qwen2.5-VL, LLaVA, ...). What differs between
families is only how boxes are written in and out of text; a ``BoxConvention`` per
family handles that, chosen from the model's config class (never from its name).

Messages follow the chat-template format: ``{"role", "content": [{"type": "image"} |
{"type": "text", "text": ...}]}``; images are passed separately, in the order of their
placeholders. Boxes are XYXY in pixels of the original image unless stated otherwise.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

_NUM = r"-?\d+(?:\.\d+)?"
_PAIR_BOX = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_LIST_BOX = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")


@dataclass(frozen=True)
class BoxConvention:
    """How a model family writes boxes: in 'pixels' of the image it saw, in 'thousandths'
    of the image (0-1000), or as a 'unit' fraction (0-1)."""

    scale: str
    template: str  # how a box is written into a prompt, with {x0} {y0} {x1} {y1}

    def _factor(self, width: int, height: int) -> tuple[float, float]:
        return {"pixels": (1.0, 1.0), "thousandths": (1000 / width, 1000 / height), "unit": (1 / width, 1 / height)}[
            self.scale
        ]

    def to_model(self, box: tuple[float, float, float, float], width: int, height: int) -> str:
        """Write a pixel box of a width x height image (as the model sees it) into text."""
        fx, fy = self._factor(width, height)
        vals = [box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy]
        fmt = (lambda v: f"{v:.2f}") if self.scale == "unit" else (lambda v: str(round(v)))
        return self.template.format(x0=fmt(vals[0]), y0=fmt(vals[1]), x1=fmt(vals[2]), y1=fmt(vals[3]))

    def from_model(self, text: str, width: int, height: int) -> list[tuple[float, float, float, float]]:
        """Boxes found in a model's text, back in pixels of a width x height image."""
        fx, fy = self._factor(width, height)
        boxes = []
        for m in [*_PAIR_BOX.finditer(text), *_LIST_BOX.finditer(text)]:
            x0, y0, x1, y1 = (float(v) for v in m.groups())
            box = (x0 / fx, y0 / fy, x1 / fx, y1 / fy)
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append(tuple(min(max(v, 0.0), lim) for v, lim in zip(box, (width, height) * 2, strict=True)))
        return boxes  # type: ignore[return-value]


# Chosen by the config class name of the loaded model (transformers' own class names).
CONVENTIONS: dict[str, BoxConvention] = {
    "Qwen2VLConfig": BoxConvention("thousandths", "<|box_start|>({x0},{y0}),({x1},{y1})<|box_end|>"),
    "Qwen2_5_VLConfig": BoxConvention("pixels", '{{"bbox_2d": [{x0}, {y0}, {x1}, {y1}]}}'),
    "LlavaConfig": BoxConvention("unit", "[{x0}, {y0}, {x1}, {y1}]"),
    "LlavaNextConfig": BoxConvention("unit", "[{x0}, {y0}, {x1}, {y1}]"),
}
DEFAULT_CONVENTION = BoxConvention("thousandths", "[{x0}, {y0}, {x1}, {y1}]")
DECODE_MODES = ("dynamic", "static", "compiled")  # RSCHAT_VLM_DECODE


def cache_length(tokens: int) -> int:
    """The static cache's length for a prompt plus its new tokens: a power of two of at
    least 1024, so a compiled decode step is rebuilt for few distinct lengths."""
    return max(1024, 1 << (tokens - 1).bit_length())


def effective_decode(requested: str, device: str, quantised: bool) -> tuple[str, str]:
    """(mode that runs, why it differs from the one requested, or "")."""
    if requested != "compiled" or (device.startswith("cuda") and not quantised):
        return requested, ""
    why = "bitsandbytes layers do not compile (RSCHAT_VLM_QUANT=none does)" if quantised else "compiling needs CUDA"
    return "static", f"RSCHAT_VLM_DECODE=compiled runs as static: {why}"


def _cancelled_criterion(event: threading.Event) -> Any:
    """A transformers StoppingCriteria that ends generation once ``event`` is set (built
    lazily so that importing this module never imports transformers)."""
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return Cancelled()


class VLMBackend:
    """A loaded model and processor. ``generate`` yields text as it is produced."""

    def __init__(
        self, model: Any, processor: Any, name: str, adapter: str | None = None, decode: str = "dynamic"
    ) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self.adapter = adapter  # the LoRA adapter folder applied on top of the base (RSCHAT_VLM_ADAPTER)
        self.decode = decode  # one of DECODE_MODES, as it runs (effective_decode)
        self.convention = CONVENTIONS.get(type(model.config).__name__, DEFAULT_CONVENTION)
        # One generation at a time per loaded model, always on the same thread: a compiled
        # decode step's CUDA graphs are recorded per thread, so a new thread per turn would
        # record them again.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlm-generate")

    @property
    def family(self) -> str:
        return type(self.model.config).__name__.removesuffix("Config")

    def seen_size(self, image: Any) -> tuple[int, int]:
        """(width, height) of an image as the model sees it after the processor's resize,
        the frame in which 'pixels' boxes are written (Qwen2.5-VL)."""
        if self.convention.scale != "pixels":
            return image.size
        grid = self.processor.image_processor(images=[image], return_tensors="np")["image_grid_thw"][0]
        patch = getattr(self.processor.image_processor, "patch_size", 14)
        return int(grid[2] * patch), int(grid[1] * patch)

    def generate(
        self, messages: list[dict], images: list[Any] | None = None, max_new_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Stream the reply to a chat (HF chat-template messages), images in placeholder order."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt").to(self.model.device)
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs: dict[str, Any] = dict(**inputs, max_new_tokens=max_new_tokens, streamer=streamer)
        kwargs.update(do_sample=True, temperature=temperature) if temperature > 0 else kwargs.update(do_sample=False)
        if self.decode != "dynamic":
            length = cache_length(int(inputs["input_ids"].shape[1]) + max_new_tokens)
            kwargs.update(
                cache_implementation="static", max_cache_len=length, disable_compile=self.decode != "compiled"
            )

        # A reader that stops early (the user pressed Stop, or a caller took what it needed)
        # sets ``cancelled``; the model then ends at its next token instead of running to
        # max_new_tokens while the next question waits on the worker.
        cancelled = threading.Event()
        kwargs["stopping_criteria"] = StoppingCriteriaList([_cancelled_criterion(cancelled)])

        def work() -> None:
            try:
                self.model.generate(**kwargs)
            except BaseException:  # re-raised to the caller by result() below
                streamer.end()
                raise

        done = self._worker.submit(work)
        finished = False
        try:
            yield from streamer
            finished = True
        finally:
            if not finished:
                cancelled.set()
        done.result()

    def complete(self, messages: list[dict], images: list[Any] | None = None, max_new_tokens: int = 256) -> str:
        return "".join(self.generate(messages, images, max_new_tokens=max_new_tokens))
