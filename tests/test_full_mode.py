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
from rschat.backends.vlm import CONVENTIONS, cache_length, effective_decode
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


def greedy(vlm, messages: list[dict], images: list, max_new_tokens: int) -> tuple[list[int], str]:
    """The new token ids of a plain greedy ``model.generate`` (no streamer, no thread) and
    their decoded text: what ``VLMBackend.generate`` must stream."""
    import torch

    text = vlm.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = vlm.processor(text=[text], images=images, return_tensors="pt").to(vlm.model.device)
    with torch.inference_mode():
        out = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    return new, vlm.processor.tokenizer.decode(new, skip_special_tokens=True)


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
    images = [image(), image(64, 64)]
    chunks = list(vlm.generate(messages, images, max_new_tokens=12))
    _, expected = greedy(vlm, messages, images, 12)
    assert expected.strip() and len(chunks) >= 2  # streamed in pieces
    assert "".join(chunks) == expected  # the pieces are exactly the greedy answer


def test_4bit_nf4_load_on_cpu_generates(models, tmp_path):
    import bitsandbytes as bnb

    vlm = loading.load_vlm(Settings(vlm=str(models["qwen2_vl"]), vlm_quant="4bit", device="cpu", work_dir=tmp_path))
    linear4 = [n for n, m in vlm.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4 and all("visual" not in n for n in linear4)  # the language model is quantised, the vision tower not
    assert vlm.model.config.quantization_config.bnb_4bit_quant_type == "nf4"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    out = vlm.complete(messages, [image()], 6)
    new, expected = greedy(vlm, messages, [image()], 6)
    assert len(new) == 6 and out == expected and out.strip()  # the quantised model decodes real tokens


def test_static_cache_decodes_the_same_tokens_on_one_thread(models, tmp_path):
    """RSCHAT_VLM_DECODE=static preallocates the cache (at a bucketed length) and decodes
    exactly what the dynamic cache does; "compiled" on the CPU runs as static and says so."""
    import threading

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what changed?"}]}]
    dynamic = loading.load_vlm(Settings(vlm=str(models["qwen2_5_vl"]), vlm_quant="none", work_dir=tmp_path))
    expected = dynamic.complete(messages, [image()], 10)
    loading.clear_cache()
    st = Settings(vlm=str(models["qwen2_5_vl"]), vlm_quant="none", vlm_decode="compiled", work_dir=tmp_path)
    vlm = loading.load_vlm(st)
    assert vlm.decode == "static" and "static decoding (RSCHAT_VLM_DECODE=compiled runs as static" in vlm.name
    seen: list[tuple[object, str]] = []
    real = vlm.model.generate

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        seen.append((kwargs.get("max_cache_len"), threading.current_thread().name))
        assert kwargs["cache_implementation"] == "static" and kwargs["disable_compile"]
        return real(**kwargs)

    vlm.model.generate = spy
    assert vlm.complete(messages, [image()], 10) == expected == vlm.complete(messages, [image()], 10)
    assert [length for length, _ in seen] == [1024, 1024] and seen[0][1] == seen[1][1]  # one worker thread
    assert [cache_length(n) for n in (1, 1024, 1025, 3000)] == [1024, 1024, 2048, 4096]
    assert effective_decode("compiled", "cuda", False) == ("compiled", "")
    assert "bitsandbytes" in effective_decode("compiled", "cuda", True)[1]
    assert effective_decode("dynamic", "cpu", True) == ("dynamic", "")
    with pytest.raises(loading.BackendUnavailable, match="RSCHAT_VLM_DECODE=fast is not one of"):
        loading.load_vlm(Settings(vlm=str(models["qwen2_5_vl"]), vlm_decode="fast", work_dir=tmp_path))


def generate_to_the_limit(vlm) -> list[int]:  # type: ignore[no-untyped-def]
    """Make the model never end by itself (min_new_tokens = max_new_tokens); returns the
    list into which each generation's number of new tokens goes."""
    lengths: list[int] = []
    real = vlm.model.generate

    def counted(**kwargs):  # type: ignore[no-untyped-def]
        out = real(**kwargs, min_new_tokens=kwargs["max_new_tokens"])
        lengths.append(int(out.shape[1] - kwargs["input_ids"].shape[1]))
        return out

    vlm.model.generate = counted
    return lengths


def test_a_stream_closed_early_stops_the_model_at_its_next_token(models, tmp_path):
    """Stop in the chat (the reader closes the stream): generation ends at once instead of
    running to max_new_tokens while the next question waits on the worker."""
    vlm = loading.load_vlm(Settings(vlm=str(models["qwen2_5_vl"]), vlm_quant="none", work_dir=tmp_path))
    lengths = generate_to_the_limit(vlm)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}]
    stream = vlm.generate(messages, [image()], max_new_tokens=400)
    next(stream)
    stream.close()
    assert vlm.complete(messages, [image()], 5) is not None  # the next call runs after the stopped one
    assert lengths[0] < 100 and lengths[1] == 5, lengths


def test_cancel_while_the_model_writes_ends_the_model_too(models, tmp_path):
    """The chat's Cancel (or the turn's time limit) during the model's answer closes the
    stream, so the model stops at its next token; the answer says it was stopped."""
    from rschat.agent.executor import TurnControl

    st = Settings(vlm=str(models["qwen2_vl"]), vlm_quant="none", work_dir=tmp_path)
    vlm = loading.load_vlm(st)
    lengths = generate_to_the_limit(vlm)
    ws, control = Workspace(st), TurnControl()
    steps = []
    for step in turn(ws, "describe this image in detail", uploads=[NEON], control=control):
        steps.append(step)
        if step.kind == "delta":
            control.stop()
    vlm._worker.submit(lambda: None).result()  # the stopped generation has returned
    assert lengths and lengths[-1] < 100, lengths  # of max_new_tokens=400
    assert "Stopped, as you asked" in steps[-1].text


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

    rows = backends(ws)
    failure = "RSCHAT_VLM failed to load: RSCHAT_VLM=/nonexistent/model could not be loaded"
    assert rows["planner"].startswith(f"rules (lite); {failure}")
    assert rows["answers"].startswith(f"template responder (lite); {failure}")
    assert rows["visual_questions"].startswith(f"unavailable: {failure}")
    assert "vision-language model" not in rows["planner"] + rows["answers"]


def test_failed_models_are_named_in_backends_and_banner(tmp_path):
    from rschat.agent import backends
    from rschat.ui.app import banner_text

    st = Settings(
        vlm="/nonexistent/model",
        sam="vit_x:/nonexistent/sam.pth",
        clip="no-such-arch:/nonexistent/clip.pt",
        generator="/nonexistent/sd",
        work_dir=tmp_path,
    )
    ws = Workspace(st)
    assert banner_text(ws).startswith("**Full mode: VLM, SAM, CLIP, generator configured**")  # nothing tried yet
    with pytest.raises(loading.BackendUnavailable):
        loading.load_vlm(st)
    head = banner_text(ws).split("\n")[0]
    assert head.startswith(
        "**Full mode configured, but VLM failed to load: lite mode answers** (SAM, CLIP, generator still configured)"
    )
    for load in (loading.load_sam, loading.load_clip, loading.load_generator):
        with pytest.raises(loading.BackendUnavailable):
            load(st)
    head = banner_text(ws).split("\n")[0]
    assert head.startswith(
        "**Full mode configured, but VLM, SAM, CLIP, generator failed to load: lite mode answers; "
        "lite mode segmentation; lite scene classes; no image generation**"
    )
    assert "Full mode:" not in head and "still configured" not in head
    rows = backends(ws)
    sam_failed = "RSCHAT_SAM failed to load: RSCHAT_SAM=vit_x:/nonexistent/sam.pth could not be loaded (ValueError"
    clip_failed = "RSCHAT_CLIP failed to load: RSCHAT_CLIP=no-such-arch:/nonexistent/clip.pt could not be loaded"
    assert rows["segmentation"].startswith("spectral/colour rules on superpixels (lite)")
    assert f"; prompts unavailable: {sam_failed}" in rows["segmentation"]
    assert f"other objects unavailable: {sam_failed}" in rows["counting"] and clip_failed in rows["counting"]
    assert clip_failed in rows["scene_classification"]  # the lite scene model (if shipped) serves instead
    assert rows["image_generation"].startswith(
        "unavailable: RSCHAT_GENERATOR failed to load: RSCHAT_GENERATOR=/nonexistent"
    )
    assert "SAM + CLIP (" not in rows["counting"] and "SAM vit_x" not in rows["segmentation"]


def test_one_loader_checks_the_setting_wraps_errors_and_caches(models, tmp_path, monkeypatch):
    from rschat.backends import clip as clip_backend

    unset = Settings(work_dir=tmp_path)
    for load, setting in (
        (loading.load_vlm, "RSCHAT_VLM"),
        (loading.load_sam, "RSCHAT_SAM"),
        (loading.load_clip, "RSCHAT_CLIP"),
        (loading.load_generator, "RSCHAT_GENERATOR"),
    ):
        with pytest.raises(loading.BackendUnavailable, match=f"set {setting}"):
            load(unset)
    assert all(loading.status(kind) is None for kind in ("vlm", "sam", "clip", "generator"))  # unset is not a failure
    st = Settings(clip=f"{tiny.CLIP_NAME}:{models['clip']}", work_dir=tmp_path)
    assert loading.load_clip(st) is loading.load_clip(st) and loading.status("clip") == f"loaded: {st.clip}"
    calls = []

    def broken(name: str, weights: str | None):
        calls.append(name)
        raise OSError("disk on fire")

    monkeypatch.setattr(clip_backend, "build_clip_model", broken)
    bad = Settings(clip="ViT-B-32:/w/x.pt", work_dir=tmp_path)
    for _ in range(2):  # the failure is remembered: built once, the same message twice
        with pytest.raises(
            loading.BackendUnavailable,
            match=r"^RSCHAT_CLIP=ViT-B-32:/w/x\.pt could not be loaded \(OSError: disk on fire\)\. Use an open_clip",
        ):
            loading.load_clip(bad)
    assert calls == ["ViT-B-32"]


def test_sam_prompt_everything_and_tiling(models, tmp_path):
    st = Settings(sam=f"{tiny.SAM_TYPE}:{models['sam']}", work_dir=tmp_path)
    big = read_raster(NEON)  # 400 x 400 > 2 x the tiny encoder's 64 px: tiled
    ctx = ToolContext({"image": big}, tmp_path, settings=st)
    res = REGISTRY["segment_objects"].run({"mode": "prompt", "points": [[300, 320, 1]]}, ctx)
    assert res.kept.mask.shape == (400, 400) and res.data["objects"] == 1
    assert res.artifact("geotiff").path.exists()
    res = REGISTRY["segment_objects"].run({"mode": "everything"}, ctx)
    assert res.data["objects"] >= 1 and res.data["area_m2"] is not None


def test_sam_encodes_an_image_window_once(models, tmp_path, monkeypatch):
    from segment_anything import SamPredictor

    st = Settings(sam=f"{tiny.SAM_TYPE}:{models['sam']}", work_dir=tmp_path)
    sam = loading.load_sam(st)
    encoder = sam.model.image_encoder
    encoded = []
    forward = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda x: encoded.append(tuple(x.shape)) or forward(x))
    rgb = np.asarray(image(96, 72))
    first = sam.predict(rgb, points=[(20, 30, True)])
    second = sam.predict(rgb.copy(), points=[(70, 40, True)])  # the same pixels in a new array
    assert len(encoded) == 1
    assert np.array_equal(sam.predict(rgb, points=[(20, 30, True)]).mask, first.mask) and len(encoded) == 1
    fresh = SamPredictor(sam.model)  # a predictor that encodes again gives the same mask
    fresh.set_image(rgb)
    masks, scores, _ = fresh.predict(point_coords=np.array([[70.0, 40.0]]), point_labels=np.array([1]))
    assert np.array_equal(second.mask, masks[int(np.argmax(scores))]) and len(encoded) == 2
    sam.predict(255 - rgb, points=[(20, 30, True)])  # another image is encoded
    assert len(encoded) == 3

    big = np.asarray(image(200, 200))  # > 2 x 64 px: prompts are answered in a 128 px window
    sam.predict(big, points=[(20, 20, True)])
    sam.predict(big, box=(5, 10, 40, 30))  # nearby prompt, the same window
    assert len(encoded) == 4
    sam.predict(big, points=[(180, 180, True)])  # another window
    assert len(encoded) == 5

    ctx = ToolContext({"image": read_raster(NEON)}, tmp_path, settings=st)  # through the tool: one encoding
    for point in ([300, 320, 1], [296, 324, 1]):
        assert REGISTRY["segment_objects"].run({"mode": "prompt", "points": [point]}, ctx).data["objects"] == 1
    assert len(encoded) == 6


def test_clip_classifies_scenes_and_names_sam_masks(models, tmp_path, monkeypatch):
    st = Settings(sam=f"{tiny.SAM_TYPE}:{models['sam']}", clip=f"{tiny.CLIP_NAME}:{models['clip']}", work_dir=tmp_path)
    ctx = ToolContext({"image": read_raster(NEON)}, tmp_path, settings=st)
    res = REGISTRY["classify_scene"].run({}, ctx)
    ranked = res.kept.ranked
    assert len(ranked) > 10 and abs(sum(p for _, p in ranked) - 1) < 1e-3 and "looks most like" in res.summary
    res = REGISTRY["segment_objects"].run({"mode": "text", "text": "solar panels", "min_score": 0.0}, ctx)
    assert res.data["objects"] >= 1 and "solar panels" in res.summary
    sam_masks = res.data["objects"]  # min_score 0 keeps every SAM mask
    clip = loading.load_clip(st)
    named = []
    real = clip.crops_match

    def crops_match(rgb, boxes, target, **kw):
        probs = real(rgb, boxes, target, **kw)  # the tiny CLIP's own probabilities, then
        probs[::2] = 0.9  # every other mask named a vehicle, so that some are kept
        named.append((len(boxes), target, probs))
        return probs

    monkeypatch.setattr(clip, "crops_match", crops_match)
    res = REGISTRY["count_objects"].run({"target": "vehicle"}, ctx)  # SAM + CLIP count in full mode
    ((n_masks, target, probs),) = named
    kept = int((probs >= 0.5).sum())
    assert n_masks == sam_masks and target == "vehicles"  # CLIP was asked about every SAM mask
    assert 1 <= kept < n_masks and res.data["count"] == kept  # the masks CLIP kept, no more, no fewer
    assert res.summary.startswith(f"{kept} vehicles") and "CLIP" in res.summary


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


def test_sam_and_clip_without_weights_are_refused_not_random(tmp_path):
    """A SAM or CLIP with random weights would outline and label noise: no weights, no model."""
    with pytest.raises(loading.BackendUnavailable, match="RSCHAT_SAM=vit_b could not be loaded.*no checkpoint"):
        loading.load_sam(Settings(sam="vit_b", work_dir=tmp_path))
    with pytest.raises(loading.BackendUnavailable, match="RSCHAT_CLIP=ViT-B-32 could not be loaded.*no weights"):
        loading.load_clip(Settings(clip="ViT-B-32", work_dir=tmp_path))


def test_full_mode_counting_honours_the_box_and_the_previous_mask(tmp_path, monkeypatch):
    """SAM + CLIP counting goes through the same box, region and previous-mask rules as the
    lite count (the models are replaced by two fixed objects here: the rules are the point)."""
    from types import SimpleNamespace

    import rschat.backends.loading as loading_module
    import rschat.backends.named_objects as named
    from rschat.backends.sam import SamMask
    from rschat.geo.raster import Raster
    from rschat.tools.base import Kept, ToolResult

    def two_objects(sam, clip, rgb, target, min_score=0.5):  # objects at (10-20) and (60-70) of what it sees
        h, w = rgb.shape[:2]
        boxes = [b for b in ((10, 10, 20, 20), (60, 60, 70, 70)) if b[2] <= w and b[3] <= h]
        return [SamMask(np.zeros((h, w), bool), 0.9, b) for b in boxes], [0.9] * len(boxes)

    model = SimpleNamespace(name="fake")
    monkeypatch.setattr(named, "named_objects", two_objects)
    monkeypatch.setattr(loading_module, "load_sam", lambda st: model)
    monkeypatch.setattr(loading_module, "load_clip", lambda st: model)
    raster = Raster(np.full((3, 100, 100), 120, np.uint8), name="tile", gsd_m=0.3)
    st = Settings(sam="fake:x", clip="fake:y", work_dir=tmp_path)
    count = REGISTRY["count_objects"]

    res = count.run({"target": "vehicle"}, ToolContext({"image": raster}, tmp_path, settings=st))
    assert res.data["count"] == 2 and "SAM masks named by CLIP" in res.summary

    res = count.run(
        {"target": "vehicle", "box": [50, 50, 100, 100]}, ToolContext({"image": raster}, tmp_path, settings=st)
    )
    points = json.loads(res.artifact("geojson").path.read_text())["features"]
    assert res.data["count"] == 1 and points[0]["geometry"]["coordinates"] == [65.0, 65.0]  # full-image pixels

    top_left = np.zeros((100, 100), bool)
    top_left[:50, :50] = True
    previous = ToolResult("changed", res.figures, kept=Kept(mask=top_left))
    ctx = ToolContext({"image": raster}, tmp_path, settings=st, previous=previous)
    res = count.run({"target": "vehicle", "within_previous_mask": True}, ctx)
    assert res.data["count"] == 1 and "inside the changed area" in res.summary
