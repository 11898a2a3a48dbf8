"""`rschat train clip` and `rschat train diffusion` end to end on tiny models of the real
architectures and real images: run through the CLI, finite losses, a resumed run that
draws exactly what the uninterrupted one does, and results that load in the app through
the real loading code and serve a tool."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ASSETS
from fixtures import tiny_models as tiny
from rschat.agent import Workspace
from rschat.agent.agent import backends
from rschat.backends import loading
from rschat.cli import main
from rschat.config import Settings, load_settings
from rschat.geo import read_raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext
from rschat.train import common

CAPTIONS = {
    "OSBS_029.tif": ["an open pine forest with scattered tree crowns", "trees on sandy ground"],
    "naip_2009-08-18.tif": ["farmland fields crossed by a road"],
    "naip_2015-09-26.tif": ["farmland with a few new buildings"],
    "pucallpa_1985.tif": ["a winding river through rainforest"],
    "pucallpa_2000.tif": ["a river beside a growing town"],
    "pucallpa_2020.tif": ["a city spreading along a river"],
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    (root / "images").mkdir()
    entries = []
    for i, (name, captions) in enumerate(CAPTIONS.items()):
        shutil.copy(ASSETS / name, root / "images" / name)
        # both forms of the format: a list of captions, and a single caption
        entries.append({"image": f"images/{name}", **({"captions": captions} if i % 2 else {"caption": captions[0]})})
    (root / "captions.json").write_text(json.dumps(entries))
    return {
        "root": root,
        "data": root / "captions.json",
        "clip": tiny.build_clip(root / "clip" / "tiny_clip.pt"),
        "sd": tiny.build_stable_diffusion(root / "sd"),
    }


@pytest.fixture(autouse=True)
def fresh_cache():
    loading.clear_cache()
    yield
    loading.clear_cache()


def steps_run(monkeypatch, stop_after: int | None = None) -> list[int]:
    """The steps the progress bar sees (a list that grows); with ``stop_after``, it raises
    after that many, as a killed run would stop."""
    real = common.ProgressBar.update
    seen: list[int] = []

    def update(self, n=1, **metrics):
        real(self, n, **metrics)
        seen.append(n)
        if len(seen) == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(common.ProgressBar, "update", update)
    return seen


def card(out: Path) -> dict:
    return json.loads((out / "training_card.json").read_text())


def clip_args(setup, out: Path, *extra: str) -> list[str]:
    base = f"{tiny.CLIP_NAME}:{setup['clip']}"
    return ["train", "clip", "--base", base, "--data", str(setup["data"]), "--out", str(out), "--batch-size", "4"] + [
        "--lr", "1e-3", "--val-fraction", "0.34", *extra
    ]  # fmt: skip


def test_clip_fine_tunes_reports_retrieval_and_loads_in_the_app(setup, tmp_path, capsys):
    import torch

    out = tmp_path / "clip_out"
    assert main(clip_args(setup, out, "--max-steps", "4")) == 0
    info = card(out)
    assert len(info["losses"]) == info["steps"] == 4 and all(math.isfinite(x) for x in info["losses"])
    assert info["train_images"] == 4 and info["val_images"] == 2  # split by image
    for key in ("val_before", "val_after"):
        assert 0 <= info[key]["image_to_text_top1"] <= 1
    assert "image->text top-1" in capsys.readouterr().out
    trained = torch.load(out / "clip.pt", map_location="cpu", weights_only=True)
    base = torch.load(setup["clip"], map_location="cpu", weights_only=True)
    assert any(not torch.equal(trained[k], base[k]) for k in base)  # it learned something
    spec = info["load"].removeprefix("RSCHAT_CLIP=")
    st = Settings(clip=spec, work_dir=tmp_path)
    model = loading.load_clip(st)  # the app's own loader, unchanged
    assert all(torch.equal(v, trained[k]) for k, v in model.model.state_dict().items())
    ctx = ToolContext({"image": read_raster(ASSETS / "OSBS_029.tif")}, tmp_path, settings=st)
    res = REGISTRY["classify_scene"].run({}, ctx)
    assert abs(sum(p for _, p in res.kept.ranked) - 1) < 1e-3 and "looks most like" in res.summary


def test_clip_resume_continues_as_the_uninterrupted_run(setup, tmp_path, monkeypatch, capsys):
    import torch

    assert main(clip_args(setup, tmp_path / "whole", "--max-steps", "4")) == 0
    with monkeypatch.context() as patch:
        steps_run(patch, stop_after=3)  # stopped in step 3, after the checkpoint of step 2
        with pytest.raises(KeyboardInterrupt):
            main(clip_args(setup, tmp_path / "cut", "--max-steps", "4", "--save-every", "2"))
    assert json.loads((tmp_path / "cut" / "checkpoint" / "checkpoint.json").read_text())["step"] == 2
    assert main(clip_args(setup, tmp_path / "cut", "--max-steps", "4")) == 1  # not overwritten without --resume
    assert "add --resume" in capsys.readouterr().err
    seen = steps_run(monkeypatch)
    assert main(clip_args(setup, tmp_path / "cut", "--max-steps", "4", "--save-every", "2", "--resume")) == 0
    assert len(seen) == 2  # steps 3 and 4 only
    whole, cut = card(tmp_path / "whole"), card(tmp_path / "cut")
    assert cut["losses"] == whole["losses"] and cut["val_after"] == whole["val_after"]
    a, b = (torch.load(tmp_path / d / "clip.pt", weights_only=True) for d in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_caption_data_and_usage_are_refused(setup, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image": "missing.tif", "captions": ["x"]}]))
    base = f"{tiny.CLIP_NAME}:{setup['clip']}"
    assert main(["train", "clip", "--base", base, "--data", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "entry 0: image missing.tif not found" in capsys.readouterr().err
    bad.write_text(json.dumps([{"image": "x.tif"}]))
    assert main(["train", "diffusion", "--base", str(setup["sd"]), "--data", str(bad), "--out", str(tmp_path)]) == 1
    assert "no caption" in capsys.readouterr().err
    assert main(sd_args(setup, tmp_path, "--resolution", "60")) == 2
    assert main(["train", "clip", "--base", tiny.CLIP_NAME, "--data", str(setup["data"]), "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.glob("*.safetensors")) and not (tmp_path / "checkpoint").exists()


def sd_args(setup, out: Path, *extra: str) -> list[str]:
    return ["train", "diffusion", "--base", str(setup["sd"]), "--data", str(setup["data"]), "--out", str(out)] + [
        "--resolution", "64", "--batch-size", "2", "--lr", "1e-2", "--val-fraction", "0.34", *extra
    ]  # fmt: skip


def test_diffusion_lora_trains_resumes_and_generates_in_the_app(setup, tmp_path, monkeypatch):
    out = tmp_path / "lora"
    assert main(sd_args(setup, out, "--max-steps", "3")) == 0
    info = card(out)
    assert len(info["losses"]) == 3 and all(math.isfinite(x) for x in info["losses"])
    assert math.isfinite(info["val_loss_before"]) and math.isfinite(info["val_loss_after"])
    assert (out / "pytorch_lora_weights.safetensors").is_file()

    with monkeypatch.context() as patch:
        steps_run(patch, stop_after=2)  # stopped in step 2, after the checkpoint of step 1
        with pytest.raises(KeyboardInterrupt):
            main(sd_args(setup, tmp_path / "cut", "--max-steps", "3", "--save-every", "1"))
    seen = steps_run(monkeypatch)
    assert main(sd_args(setup, tmp_path / "cut", "--max-steps", "3", "--resume")) == 0
    assert len(seen) == 2  # steps 2 and 3 only
    assert card(tmp_path / "cut")["losses"] == info["losses"]  # the same draws as the uninterrupted run

    monkeypatch.setenv("RSCHAT_GENERATOR", str(setup["sd"]))
    monkeypatch.setenv("RSCHAT_GENERATOR_LORA", str(out))
    st = load_settings()
    assert st.generator_lora == str(out)
    assert "RSCHAT_GENERATOR_LORA" in backends(Workspace(st))["image_generation"]
    ctx = ToolContext({}, tmp_path, settings=st)
    res = REGISTRY["generate_image"].run({"prompt": "a river beside a town", "steps": 2, "size": 64}, ctx)
    assert (res.data["width"], res.data["height"]) == (64, 64) and "LoRA" in res.method
    with_lora = read_raster(res.artifact("overlay").path).data
    assert f"LoRA {out}" in backends(Workspace(st))["image_generation"]  # loaded, and named
    plain = Settings(generator=str(setup["sd"]), work_dir=tmp_path)
    res = REGISTRY["generate_image"].run(
        {"prompt": "a river beside a town", "steps": 2, "size": 64}, ToolContext({}, tmp_path, settings=plain)
    )
    without = read_raster(res.artifact("overlay").path).data
    assert np.abs(with_lora.astype(int) - without).mean() > 0.1  # the LoRA changes what is drawn


def test_a_missing_lora_is_a_clear_failure(setup, tmp_path):
    st = Settings(generator=str(setup["sd"]), generator_lora=str(tmp_path / "nowhere"), work_dir=tmp_path)
    with pytest.raises(loading.BackendUnavailable, match="RSCHAT_GENERATOR_LORA=.*nowhere: no such folder or file"):
        loading.load_generator(st)
