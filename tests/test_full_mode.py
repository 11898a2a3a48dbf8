"""Full mode with tiny randomly initialised models of the real architectures, loaded
through the same code that loads real weights (rschat.backends.loading)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS, ROOT, launched, rschat
from fixtures import tiny_models as tiny
from rschat.agent import Workspace, turn
from rschat.backends import loading
from rschat.backends.vlm import CONVENTIONS
from rschat.config import Settings
from rschat.geo import read_raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
NEON = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "qwen2_vl": tiny.build_qwen2_vl(root / "qwen2_vl", "2"),
        "qwen2_5_vl": tiny.build_qwen2_vl(root / "qwen2_5_vl", "2.5"),
        "llava": tiny.build_llava(root / "llava"),
        "sam": tiny.build_sam(root / "sam" / "tiny_sam.pth"),
        "clip": tiny.build_clip(root / "clip" / "tiny_clip.pt"),
        "sd": tiny.build_stable_diffusion(root / "sd"),
    }


@pytest.fixture(autouse=True)
def fresh_cache():
    loading.clear_cache()
    yield
    loading.clear_cache()


def image(w: int = 96, h: int = 72) -> Image.Image:
    return Image.fromarray((np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("family", "config", "scale"),
    [("qwen2_vl", "Qwen2VL", "thousandths"), ("qwen2_5_vl", "Qwen2_5_VL", "pixels"), ("llava", "Llava", "unit")],
)
def test_vlm_families_load_stream_and_take_several_images(models, family, config, scale, tmp_path):
    vlm = loading.load_vlm(Settings(vlm=str(models[family]), vlm_quant="none", work_dir=tmp_path))
    assert vlm.family == config and vlm.convention.scale == scale  # chosen from the config class
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "what changed?"}]}
    ]
    chunks = list(vlm.generate(messages, [image(), image(64, 64)], max_new_tokens=12))
    assert len(chunks) >= 2 and isinstance("".join(chunks), str)  # streamed in pieces


def test_4bit_nf4_load_on_cpu_generates(models, tmp_path):
    import bitsandbytes as bnb

    vlm = loading.load_vlm(Settings(vlm=str(models["qwen2_vl"]), vlm_quant="4bit", device="cpu", work_dir=tmp_path))
    linear4 = [n for n, m in vlm.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4 and all("visual" not in n for n in linear4)  # the language model is quantised, the vision tower not
    assert vlm.model.config.quantization_config.bnb_4bit_quant_type == "nf4"
    out = vlm.complete([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], [image()], 6)
    assert isinstance(out, str)


def test_8bit_config_and_bad_quant_setting():
    assert loading.quantization_config(Settings(vlm_quant="8bit")).load_in_8bit
    assert loading.quantization_config(Settings(vlm_quant="none")) is None
    with pytest.raises(loading.BackendUnavailable, match="RSCHAT_VLM_QUANT"):
        loading.quantization_config(Settings(vlm_quant="3bit"))


@pytest.mark.parametrize("config", list(CONVENTIONS))
def test_box_conventions_round_trip(config):
    conv = CONVENTIONS[config]
    text = conv.to_model((20, 10, 80, 50), 100, 60)
    (box,) = conv.from_model(f"the harbour is at {text}", 100, 60)
    assert np.allclose(box, (20, 10, 80, 50), atol=1.0)


def test_missing_weights_keep_lite_mode_and_say_which_setting(settings):
    ws = Workspace(Settings(vlm="/nonexistent/model", work_dir=settings.work_dir))
    steps = list(turn(ws, "what changed?", uploads=PAIR))
    notes = " ".join(s.text for s in steps if s.kind == "plan")
    assert "RSCHAT_VLM=/nonexistent/model could not be loaded" in notes
    assert "What changed" in steps[-1].text  # the lite answer
    from rschat.agent import backends

    assert "RSCHAT_VLM failed to load" in backends(ws)["planner"] or "rules" in backends(ws)["planner"]


def test_sam_prompt_everything_and_tiling(models, tmp_path):
    st = Settings(sam=f"tiny:{models['sam']}", work_dir=tmp_path)
    big = read_raster(NEON)  # 400 x 400 > 2 x the tiny encoder's 64 px: tiled
    ctx = ToolContext({"image": big}, tmp_path, settings=st)
    res = REGISTRY["segment_objects"].run({"mode": "prompt", "points": [[300, 320, 1]]}, ctx)
    assert res.memory["mask"].shape == (400, 400) and res.data["objects"] == 1
    assert res.artifact("geotiff").path.exists()
    res = REGISTRY["segment_objects"].run({"mode": "everything"}, ctx)
    assert res.data["objects"] >= 1 and res.data["area_m2"] is not None


def test_clip_classifies_scenes_and_names_sam_masks(models, tmp_path):
    st = Settings(sam=f"tiny:{models['sam']}", clip=f"rschat-tiny-clip:{models['clip']}", work_dir=tmp_path)
    ctx = ToolContext({"image": read_raster(NEON)}, tmp_path, settings=st)
    res = REGISTRY["classify_scene"].run({}, ctx)
    ranked = res.memory["ranked"]
    assert len(ranked) > 10 and abs(sum(p for _, p in ranked) - 1) < 1e-3 and "looks most like" in res.summary
    res = REGISTRY["segment_objects"].run({"mode": "text", "text": "solar panels", "min_score": 0.0}, ctx)
    assert res.data["objects"] >= 1 and "solar panels" in res.summary
    res = REGISTRY["count_objects"].run({"target": "vehicle"}, ctx)  # SAM + CLIP count in full mode
    assert res.data["count"] >= 0 and "CLIP" in res.summary


def test_generation_text_and_image_to_image(models, tmp_path):
    st = Settings(generator=str(models["sd"]), work_dir=tmp_path)
    ctx = ToolContext({"image": read_raster(NEON)}, tmp_path, settings=st)
    res = REGISTRY["generate_image"].run({"prompt": "a harbour", "steps": 2, "size": 64}, ctx)
    assert (res.data["width"], res.data["height"]) == (64, 64) and "synthetic" in res.limits[0]
    res = REGISTRY["generate_image"].run({"prompt": "a harbour", "steps": 2, "from_image": True}, ctx)
    assert "image-to-image" in res.summary


def test_lite_mode_generation_says_how_to_enable(settings):
    text = list(turn(Workspace(settings), "generate a harbour scene"))[-1].text
    assert "RSCHAT_GENERATOR" in text


def test_weights_list_and_offline_pull():
    env = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # a closed port: no network
    proc = rschat("weights", "list")
    assert proc.returncode == 0 and "qwen2.5-vl-3b" in proc.stdout and "licence" in proc.stdout
    proc = rschat("weights", "pull", "qwen2-vl-2b", env=env, timeout=120)
    assert proc.returncode == 1 and "no internet" in proc.stderr and proc.stderr.count("\n") <= 2
    manifest = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
    assert {m["capability"] for m in manifest} == {"vlm", "sam", "clip", "generator"}
    assert all({"name", "hub_id", "files", "licence", "size_gb", "memory_gb"} <= set(m) for m in manifest)


def test_ask_json_reports_the_vlm_backend(models, tmp_path):
    env = {
        "RSCHAT_VLM": str(models["qwen2_vl"]),
        "RSCHAT_VLM_QUANT": "none",
        "RSCHAT_WORK_DIR": str(tmp_path),
    }
    proc = rschat(
        "ask", "--image", str(PAIR[0]), "--image", str(PAIR[1]), "--json", "what changed?", env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert str(models["qwen2_vl"]) in doc["backends"]["planner"]
    assert doc["steps"][0]["tool"] == "detect_changes"  # the random model's plan was invalid: rules took over
    assert "%" in doc["answer"]  # and its answer quoted no tool number: the tools' answer was kept


def test_app_end_to_end_with_the_tiny_vlm(models, tmp_path):
    from gradio_client import Client, handle_file

    from rschat.ui.app import banner_text

    st = Settings(vlm=str(models["qwen2_vl"]), vlm_quant="none", work_dir=tmp_path)
    assert "Full mode: VLM configured" in banner_text(Workspace(st))
    with launched(st) as (url, _):
        client = Client(url, verbose=False)
        chat, *_ = client.predict(
            {"text": "what changed?", "files": [handle_file(str(p)) for p in PAIR]}, [], api_name="/chat"
        )
        titles = [(m.get("metadata") or {}).get("title", "") for m in chat]
        assert any(t.startswith("detect_changes") for t in titles)
        assert "What changed" in " ".join(str(c.get("text", "")) for c in chat[-1]["content"])
