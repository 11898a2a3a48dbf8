"""A diffusers pipeline behind one interface: text to image, or image to image when the
session holds an image (the same weights, reused through ``from_pipe``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LORA_FILE = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes


def apply_lora(pipe: Any, lora: str) -> None:
    """Load LoRA weights in diffusers' format (from ``rschat train diffusion``, or any LoRA
    file ``load_lora_weights`` reads) into the pipeline: a folder holding
    pytorch_lora_weights.safetensors, or the .safetensors file itself (RSCHAT_GENERATOR_LORA)."""
    path = Path(lora)
    if path.is_dir() and not (path / LORA_FILE).is_file():
        raise FileNotFoundError(f"RSCHAT_GENERATOR_LORA={lora}: no {LORA_FILE} in that folder")
    if not path.exists():
        raise FileNotFoundError(f"RSCHAT_GENERATOR_LORA={lora}: no such folder or file")
    if path.is_file():
        pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    else:
        pipe.load_lora_weights(str(path))


class GeneratorBackend:
    def __init__(self, pipe: Any, name: str, lora: str = "") -> None:
        self.pipe = pipe
        self.name = name
        if lora:
            apply_lora(pipe, lora)
            self.name = f"{name} + LoRA {lora}"

    def text_to_image(self, prompt: str, steps: int = 25, size: int = 512, seed: int = 0) -> np.ndarray:
        """(H, W, 3) uint8 image for a prompt."""
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        out = self.pipe(
            prompt=prompt, num_inference_steps=steps, height=size, width=size, generator=generator, output_type="np"
        )
        return (np.clip(out.images[0], 0, 1) * 255).astype(np.uint8)

    def image_to_image(
        self, prompt: str, image: np.ndarray, strength: float = 0.6, steps: int = 25, seed: int = 0
    ) -> np.ndarray:
        """(H, W, 3) uint8 variation of an (H, W, 3) uint8 image following the prompt."""
        import torch
        from diffusers import AutoPipelineForImage2Image
        from PIL import Image

        pipe = AutoPipelineForImage2Image.from_pipe(self.pipe)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        out = pipe(
            prompt=prompt,
            image=Image.fromarray(image),
            strength=strength,
            num_inference_steps=steps,
            generator=generator,
            output_type="np",
        )
        return (np.clip(out.images[0], 0, 1) * 255).astype(np.uint8)
