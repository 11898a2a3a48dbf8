"""open_clip behind rschat's conventions: zero-shot scene labels and names for masks.

Remote-sensing CLIP weights (RemoteCLIP, GeoRSCLIP) are open_clip checkpoints of standard
architectures, so ``RSCHAT_CLIP=ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt`` loads them through
the same path as OpenAI's. Prompts use the remote-sensing template "a satellite image
of {label}".
"""

from __future__ import annotations

from typing import Any

import numpy as np

TEMPLATE = "a satellite image of {}"
SCENE_LABELS = (
    "an airport", "bare land", "a beach", "a bridge", "a commercial area", "a dense residential area", "a desert",
    "farmland", "a forest", "a harbour", "an industrial area", "a meadow", "a mountain", "a parking lot",
    "a river", "a lake", "a sparse residential area", "a stadium", "storage tanks", "a road or highway",
    "a wetland", "a golf course", "a railway station", "a cloud-covered area",
)  # fmt: skip


def build_clip_model(name: str, weights: str | None) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of an open_clip architecture (a built-in name, or one
    added with ``open_clip.add_model_config``); weights from a local file or None."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=weights)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


class ClipBackend:
    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, name: str) -> None:
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def scores(self, images: list[np.ndarray], labels: list[str]) -> np.ndarray:
        """(len(images), len(labels)) softmax probabilities; images are HWC uint8 RGB."""
        import torch
        from PIL import Image

        device = self._device()
        batch = torch.stack([self.preprocess(Image.fromarray(im)) for im in images]).to(device)
        text = self.tokenizer([TEMPLATE.format(label) for label in labels]).to(device)
        with torch.inference_mode():
            img = self.model.encode_image(batch)
            txt = self.model.encode_text(text)
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            logits = self.model.logit_scale.exp() * img @ txt.T
        return logits.softmax(dim=-1).float().cpu().numpy()

    def classify(self, rgb: np.ndarray, labels: list[str] | tuple[str, ...] = SCENE_LABELS) -> list[tuple[str, float]]:
        """Labels ranked by probability for one image."""
        probs = self.scores([rgb], list(labels))[0]
        order = np.argsort(-probs)
        return [(labels[i], float(probs[i])) for i in order]

    def crops_match(
        self,
        rgb: np.ndarray,
        boxes: list[tuple[int, int, int, int]],
        target: str,
        distractors: tuple[str, ...] = ("background", "ground", "trees", "a road", "a roof"),
    ) -> np.ndarray:
        """For each box crop, the probability that it shows ``target`` rather than a distractor."""
        if not boxes:
            return np.zeros(0)
        crops = [rgb[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)] for x0, y0, x1, y1 in boxes]
        labels = [target, *[d for d in distractors if d != target]]
        return self.scores(crops, labels)[:, 0]
