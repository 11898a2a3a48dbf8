"""``rschat train diffusion``: LoRA fine-tuning of a diffusers text-to-image model (Stable
Diffusion 1.x / 2.x) on image-caption pairs, as diffusers' ``train_text_to_image_lora``
example does: LoRA (peft) on the UNet's attention projections, everything else frozen, the
noise-prediction MSE loss on latents noised by the scheduler's ``add_noise`` (or the
v-prediction target for v-models).

The result is ``OUT/pytorch_lora_weights.safetensors`` in diffusers' LoRA format
(``save_lora_weights``); the app applies it on top of ``RSCHAT_GENERATOR`` with
``RSCHAT_GENERATOR_LORA=OUT`` (``pipe.load_lora_weights``). Validation: the same loss on
held-out images at fixed noise and timesteps, before and after training.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

from rschat.geo.errors import InputError
from rschat.train.clip import (
    Pair,
    add_common_arguments,
    check_common,
    existing_checkpoint,
    load_rgb,
    map_images,
    pick_device,
    read_captions,
    rs_augment,
    split_pairs,
)

HELP = "LoRA fine-tuning of a Stable Diffusion model on image-caption pairs; load with RSCHAT_GENERATOR_LORA"
LORA_FILE = "pytorch_lora_weights.safetensors"  # the name load_lora_weights looks for in a folder
TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]  # the UNet attention projections, as the example
VAL_SEED = 1234  # fixed noise and timesteps for the validation loss, so before and after compare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="diffusers folder or hub id, as RSCHAT_GENERATOR")
    add_common_arguments(parser, lr=1e-4, save_every=100, max_steps=1000)
    parser.set_defaults(batch_size=1)
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4)")
    parser.add_argument("--resolution", type=int, default=512, help="training side in pixels, 64-1024 (default 512)")


def run(args: argparse.Namespace) -> int:
    error = check_common(args)
    if args.rank < 1:
        error = "--rank must be at least 1."
    if not 64 <= args.resolution <= 1024 or args.resolution % 8:
        error = f"--resolution must be a multiple of 8 between 64 and 1024 px, not {args.resolution}."
    if error:
        print(f"rschat train diffusion: {error}", file=sys.stderr)
        return 2
    if existing_checkpoint(args, "train diffusion"):
        return 1
    pairs = read_captions(args.data)
    train, val = split_pairs(pairs, args.val_fraction, args.seed)
    return _train(args, train, val)


def _load_base(base: str, device: str) -> Any:
    """The base pipeline, loaded as the app loads RSCHAT_GENERATOR; only single-text-encoder
    Stable Diffusion (1.x, 2.x) is trained here."""
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(base)
    parts = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    if any(getattr(pipe, part, None) is None for part in parts) or getattr(pipe, "text_encoder_2", None) is not None:
        raise InputError(f"{base}: {type(pipe).__name__} is not a Stable Diffusion 1.x/2.x pipeline (needs {parts}).")
    for part in ("unet", "vae", "text_encoder"):
        getattr(pipe, part).requires_grad_(False).to(device)
    return pipe


def _add_lora(unet: Any, rank: int) -> list[Any]:
    """LoRA adapters on the UNet's attention projections (gaussian A, zero B: the model
    starts exactly as the base); returns the trainable parameters."""
    from peft import LoraConfig

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES))
    return [p for p in unet.parameters() if p.requires_grad]


def _train(args: argparse.Namespace, train: list[Pair], val: list[Pair]) -> int:
    """Long on purpose: the training run reads best as one sequence (set up, resume, loop, save)."""
    import torch
    from diffusers import DDPMScheduler
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import get_cosine_schedule_with_warmup

    from rschat.train.common import ProgressBar, load_checkpoint, save_checkpoint, seed_everything

    seed_everything(args.seed)
    out, device = Path(args.out), pick_device(args.device)
    pipe = _load_base(args.base, device)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # the training schedule, as the example
    params = _add_lora(pipe.unet, args.rank)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(500, args.max_steps // 20), args.max_steps)
    state = load_checkpoint(out / "checkpoint") if args.resume else None
    if args.resume and state is None:
        print(f"rschat train diffusion: no checkpoint in {out / 'checkpoint'}; starting from step 0", file=sys.stderr)
    start, losses = 0, []
    if state is not None:
        set_peft_model_state_dict(pipe.unet, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], list(state["losses"])
    before = state["val_before"] if state is not None else _val_loss(pipe, noise_scheduler, val, args, device)
    started = time.monotonic()
    with ProgressBar(total=args.max_steps, desc="train diffusion", initial=start) as bar:
        for step in range(start, args.max_steps):
            pipe.unet.train()
            batch = _batch(train, step, args)
            loss = _loss(pipe, noise_scheduler, batch, args, device, torch.Generator().manual_seed(args.seed + step))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(round(float(loss.item()), 6))
            if not torch.isfinite(loss):
                raise RuntimeError(f"the loss is {losses[-1]} at step {step + 1}: lower --lr")
            bar.update(loss=losses[-1])
            if (step + 1) % args.save_every == 0 or step + 1 == args.max_steps:
                lora = {k: v.detach().cpu() for k, v in get_peft_model_state_dict(pipe.unet).items()}
                save_checkpoint(
                    out / "checkpoint",
                    step + 1,
                    lora=lora,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    losses=losses,
                    val_before=before,
                )
    after = _val_loss(pipe, noise_scheduler, val, args, device)
    _save_lora(pipe, out)
    _write_outputs(args, out, losses, before, after, (len(train), len(val)), time.monotonic() - started)
    return 0


def _batch(train: list[Pair], step: int, args: argparse.Namespace) -> list[tuple[Pair, str]]:
    """The step's (image, caption) pairs: a seeded pass over the images per epoch, one
    caption drawn at random for each."""
    per_epoch = max(1, len(train) // args.batch_size)
    epoch, index = divmod(step, per_epoch)
    rng = random.Random(f"{args.seed}:{epoch}")
    order = list(range(len(train)))
    rng.shuffle(order)
    order = (order * args.batch_size)[: per_epoch * args.batch_size]  # fewer images than a batch: repeat
    chosen = order[index * args.batch_size : (index + 1) * args.batch_size]
    return [(train[i], rng.choice(train[i].captions)) for i in chosen]


def _pixels(image: Any, size: int, rng: random.Random | None) -> Any:
    """(3, size, size) float tensor in [-1, 1]: the shorter side resized to ``size``, then a
    random crop with a flip and right-angle turn (``rng``), or the centre crop (None)."""
    import numpy as np
    import torch
    from PIL import Image

    scale = size / min(image.size)
    image = image.resize(
        (max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.BICUBIC
    )
    x = (image.width - size) // 2 if rng is None else rng.randint(0, image.width - size)
    y = (image.height - size) // 2 if rng is None else rng.randint(0, image.height - size)
    image = image.crop((x, y, x + size, y + size))
    if rng is not None:
        image = rs_augment(image, rng)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _loss(pipe: Any, noise_scheduler: Any, batch: list, args: argparse.Namespace, device: str, gen: Any) -> Any:
    """The denoising loss of one batch: encode to latents, noise them at random timesteps
    (drawn from ``gen``, so a resumed or validation run draws the same), predict the noise
    (or v) from the noisy latents and the caption, mean squared error."""
    import torch
    import torch.nn.functional as F

    rng = random.Random(int(torch.randint(0, 2**31, (1,), generator=gen)))
    jobs = [(pair.image, random.Random(rng.randrange(2**31)) if pipe.unet.training else None) for pair, _ in batch]
    pixels = torch.stack(map_images(lambda job: _pixels(load_rgb(job[0]), args.resolution, job[1]), jobs)).to(device)
    ids = pipe.tokenizer(
        [caption for _, caption in batch],
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(device)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        with torch.no_grad():
            latents = pipe.vae.encode(pixels).latent_dist.sample(generator=gen) * pipe.vae.config.scaling_factor
            text = pipe.text_encoder(ids)[0]
        noise = torch.randn(latents.shape, generator=gen).to(device, latents.dtype)
        steps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=gen).to(device)
        noisy = noise_scheduler.add_noise(latents, noise, steps)
        if noise_scheduler.config.prediction_type == "v_prediction":
            target = noise_scheduler.get_velocity(latents, noise, steps)
        else:
            target = noise
        pred = pipe.unet(noisy, steps, text).sample
    return F.mse_loss(pred.float(), target.float())


def _val_loss(pipe: Any, noise_scheduler: Any, val: list[Pair], args: argparse.Namespace, device: str) -> float | None:
    """Mean denoising loss on the validation images, each with its first caption, at noise
    and timesteps fixed by ``VAL_SEED``; None without validation images."""
    import torch

    if not val:
        return None
    pipe.unet.eval()
    gen = torch.Generator().manual_seed(VAL_SEED)
    with torch.no_grad():
        total = sum(float(_loss(pipe, noise_scheduler, [(p, p.captions[0])], args, device, gen)) for p in val)
    return round(total / len(val), 6)


def _save_lora(pipe: Any, out: Path) -> None:
    """The UNet LoRA in diffusers' format (what ``load_lora_weights`` reads)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=layers, safe_serialization=True)


def _write_outputs(
    args: argparse.Namespace,
    out: Path,
    losses: list[float],
    before: float | None,
    after: float | None,
    sizes: tuple[int, int],
    seconds: float,
) -> None:
    from rschat.train.common import file_sha256, write_card

    load = f"RSCHAT_GENERATOR={args.base} RSCHAT_GENERATOR_LORA={out.resolve()}"
    write_card(
        out,
        kind="diffusion_lora",
        base=args.base,
        data=str(Path(args.data).resolve()),
        data_sha256=file_sha256(args.data),
        train_images=sizes[0],
        val_images=sizes[1],
        steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        rank=args.rank,
        resolution_px=args.resolution,
        seed=args.seed,
        target_modules=TARGET_MODULES,
        loss="noise-prediction MSE (DDPM add_noise)",
        losses=losses,
        final_loss=losses[-1] if losses else None,
        val_loss_before=before,
        val_loss_after=after,
        seconds_this_run=round(seconds, 1),
        load=load,
    )
    print(f"validation loss (fixed noise): {before} before, {after} after")
    print(f"wrote {out / LORA_FILE}; load it with {load}")
