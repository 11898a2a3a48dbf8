"""``rschat eval caption``: captions against reference captions (BLEU-4, ROUGE-L).

Manifest: a JSON list of ``{"image", "captions": ["...", ...]}`` (one or more reference
captions per image, as in RSICD, UCM-Captions and Sydney-Captions). The caption is what
a user asking "describe this image" gets: the describe_scene tool in lite mode; in full
mode (RSCHAT_VLM set) the vision-language model, with the app's system prompt and the
same question. Metrics come from torchmetrics (the ``full`` extra): corpus BLEU-4 (no
smoothing, as captioning papers report it) and ROUGE-L F1 (best over the references,
averaged over images). CIDEr and METEOR are not reported: torchmetrics has neither, and
the reference implementation (pycocoevalcap) is unmaintained and needs Java for its
tokeniser and METEOR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rschat.config import Settings
from rschat.eval.manifest import add_common, fmt, load_entries, read_image, resolve, run_command, run_tool
from rschat.geo.errors import InputError
from rschat.geo.raster import Raster

HELP = "captions against reference captions: BLEU-4 and ROUGE-L (torchmetrics; pip install -e '.[full]')"
QUESTION = "Describe this image."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, '{"image", "captions": [...]} entries')


def run(args: argparse.Namespace) -> int:
    try:
        import torchmetrics  # noqa: F401  # the metrics; a lite install lacks them
    except ModuleNotFoundError:
        print("rschat eval caption needs torchmetrics: pip install -e '.[full]'", file=sys.stderr)
        return 1
    return run_command("caption", args, evaluate_caption, table)


def caption_metrics(preds: list[str], refs: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU-4 and mean ROUGE-L F1 (best reference per image), lower-cased."""
    from torchmetrics.text import BLEUScore, ROUGEScore

    preds = [p.lower() for p in preds]
    refs = [[r.lower() for r in rs] for rs in refs]
    bleu = BLEUScore(n_gram=4)(preds, refs)
    rouge = ROUGEScore(rouge_keys="rougeL", accumulate="best")(preds, refs)
    return {"bleu4": float(bleu), "rouge_l": float(rouge["rougeL_fmeasure"])}


def describe(raster: Raster, settings: Settings) -> tuple[str, str]:
    """(caption, who wrote it) for one image, as the app would answer 'describe this image'."""
    if settings.vlm:
        return _vlm_caption(raster, settings), "vlm"
    result = run_tool("describe_scene", {}, {"image": raster}, settings)
    return result.summary + ".", "describe_scene"


def _vlm_caption(raster: Raster, settings: Settings) -> str:
    from PIL import Image

    from rschat.backends.loading import BackendUnavailable, load_vlm
    from rschat.geo.preview import rgb_preview
    from rschat.resources import prompts_dir

    try:
        model = load_vlm(settings)
    except BackendUnavailable as err:
        raise InputError(f"full-mode captions need the VLM: {err}") from err
    system = (prompts_dir() / "system.txt").read_text()
    messages = [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "text", "text": "Image 1 (image):"}, {"type": "image"},
                                     {"type": "text", "text": QUESTION}]},
    ]  # fmt: skip
    return model.complete(messages, [Image.fromarray(rgb_preview(raster))], max_new_tokens=120).strip()


def evaluate_caption(manifest: Path, settings: Settings) -> dict[str, Any]:
    entries = load_entries(manifest, {"image": str, "captions": list})
    rows = []
    for number, entry in enumerate(entries, start=1):
        refs = entry["captions"]
        if not refs or not all(isinstance(c, str) and c.strip() for c in refs):
            raise InputError(f"{manifest.name}: entry {number}: 'captions' must be a list of non-empty strings.")
        caption, source = describe(read_image(resolve(manifest, entry["image"]), settings), settings)
        rows.append({"image": entry["image"], "caption": caption, "references": refs, "source": source})
    for row in rows:
        row |= caption_metrics([row["caption"]], [row["references"]])
    overall = caption_metrics([r["caption"] for r in rows], [r["references"] for r in rows])
    return {"manifest": str(manifest), "rows": rows, "overall": overall, "images": len(rows)}


def table(report: dict[str, Any]) -> str:
    lines = [
        f"captions on {report['images']} images ({report['manifest']})",
        f"{'image':<32}{'BLEU-4':>8}{'ROUGE-L':>9}  caption",
    ]
    for r in report["rows"]:
        lines.append(f"{Path(r['image']).name[:31]:<32}{fmt(r['bleu4']):>8}{fmt(r['rouge_l']):>9}  {r['caption'][:90]}")
    o = report["overall"]
    lines.append(f"{'corpus':<32}{fmt(o['bleu4']):>8}{fmt(o['rouge_l']):>9}")
    return "\n".join(lines)
