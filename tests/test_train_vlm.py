"""`rschat train vlm` end to end on tiny Qwen2-VL and LLaVA models with real example
tiles: the loss is taken on the assistant's tokens only, training runs and resumes exactly,
and the app loads the adapter (RSCHAT_VLM_ADAPTER) through its real loader, answers a
question with it and names it in the backends."""

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS
from fixtures import tiny_models as tiny
from rschat.agent import Workspace, backends, turn
from rschat.backends import loading
from rschat.cli import main
from rschat.config import Settings
from rschat.geo import read_raster, rgb_preview
from rschat.train import vlm as train_vlm
from rschat.train.common import file_sha256, load_checkpoint

NEON = ASSETS / "OSBS_029.tif"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train_vlm")


@pytest.fixture(scope="module")
def bases(root) -> dict[str, Path]:
    return {"qwen2_vl": tiny.build_qwen2_vl(root / "qwen2_vl", "2"), "llava": tiny.build_llava(root / "llava")}


@pytest.fixture(scope="module")
def data(root) -> Path:
    """Six conversations on the example tiles: GeoTIFFs referenced relative to the JSON's
    folder (in another folder), and a PNG written from a real tile beside the JSON."""
    folder = root / "data"
    folder.mkdir()
    Image.fromarray(rgb_preview(read_raster(ASSETS / "pucallpa_2020.tif"))).save(folder / "pucallpa_2020.png")
    rel = {p: os.path.relpath(ASSETS / p, folder) for p in ("naip_2009-08-18.tif", "naip_2015-09-26.tif")}
    rel["neon"] = os.path.relpath(NEON, folder)
    ask = [
        ("neon", "How many trees are in this image?", "About 30 trees."),
        ("naip_2009-08-18.tif", "Is there water?", "no"),
        ("naip_2015-09-26.tif", "Is it a rural or an urban area?", "rural"),
        ("pucallpa_2020.png", "Describe the scene.", "A river beside cleared fields and forest."),
    ]
    items: list[dict] = [
        {
            "id": f"q{i}",
            "image": rel.get(image, image),
            "conversations": [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}],
        }
        for i, (image, q, a) in enumerate(ask)
    ]
    items.append(
        {
            "id": "change",
            "images": [rel["naip_2009-08-18.tif"], rel["naip_2015-09-26.tif"]],
            "conversations": [
                {"from": "human", "value": "<image>\n<image>\nWhat changed between the images?"},
                {"from": "gpt", "value": "New buildings in the north-east."},
                {"from": "human", "value": "How many?"},
                {"from": "gpt", "value": "3"},
            ],
        }
    )
    items.append({**items[1], "id": "again"})
    path = folder / "data.json"
    path.write_text(json.dumps(items, indent=1))
    return path


def train(base: Path, data: Path, out: Path, *extra: str) -> int:
    argv = ["train", "vlm", "--base", str(base), "--data", str(data), "--out", str(out), "--quant", "none"]
    return main([*argv, "--lr", "1e-3", "--val-fraction", "0.2", "--save-every", "2", *extra])


@pytest.fixture(scope="module")
def trained(bases, data, root) -> Path:
    """A Qwen2-VL adapter: LoRA on the language model and the projector in full, 4 steps."""
    out = root / "qwen_adapter"
    assert train(bases["qwen2_vl"], data, out, "--max-steps", "4", "--train", "both", "--batch-size", "2") == 0
    return out


@pytest.fixture(autouse=True)
def fresh_cache():
    loading.clear_cache()
    yield
    loading.clear_cache()


def test_the_loss_is_on_the_assistant_tokens_only(bases, data):
    from transformers import AutoProcessor

    record = next(r for r in train_vlm.read_records(data) if r["id"] == "change")
    for family, end in (("qwen2_vl", "<|im_end|>"), ("llava", "</s>")):
        processor = AutoProcessor.from_pretrained(bases[family])
        example = train_vlm.encode(processor, record, max_length=4096)
        ids, labels = example["input_ids"][0], example["labels"][0]
        learned = processor.tokenizer.decode(ids[labels != -100])
        assert learned.replace("\n", "").replace(" ", "") == f"Newbuildingsinthenorth-east.{end}3{end}"
        assert "What changed" not in learned and len(example["pixel_values"]) > 0  # two images encoded


def test_training_writes_the_adapter_card_and_checkpoint(trained, data):
    assert (trained / "adapter_config.json").is_file() and (trained / "adapter_model.safetensors").is_file()
    card = json.loads((trained / "training_card.json").read_text())
    assert card["model_type"] == "qwen2_vl" and card["train"] == "both" and card["steps"] == 4
    assert card["data_sha256"] == file_sha256(data) and card["conversations"] == {"train": 5, "validation": 1, "all": 6}
    assert len(card["losses"]) == 4 and all(math.isfinite(x) and x > 0 for x in card["losses"])
    assert [v["step"] for v in card["val_losses"]] == [2, 4] and math.isfinite(card["final_val_loss"])
    assert card["time_s"] > 0 and card["peak_memory_mb"]["cpu_rss"] > 0
    assert 0 < card["step_time_s"] < card["time_s"] and card["first_step_time_s"] > 0 and card["tokens_per_s"] > 0
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["merger"] and config["r"] == 16
    assert load_checkpoint(trained / "checkpoint")["step"] == 4


def test_resume_continues_from_the_checkpoint_exactly(bases, data, root, trained, monkeypatch, capsys):
    """Stopped after the step-2 checkpoint, then resumed: the same losses as the run that was
    never stopped (same batches, same dropout draws, same optimiser state)."""
    out = root / "interrupted"
    save = train_vlm._validate_and_save

    def save_then_stop(run_, optimizer, val, step, bar):  # type: ignore[no-untyped-def]
        save(run_, optimizer, val, step, bar)
        if step == 2:
            raise KeyboardInterrupt  # as Ctrl-C would stop it

    monkeypatch.setattr(train_vlm, "_validate_and_save", save_then_stop)
    args = ("--max-steps", "4", "--train", "both", "--batch-size", "2")
    with pytest.raises(KeyboardInterrupt):
        train(bases["qwen2_vl"], data, out, *args)
    monkeypatch.undo()
    assert load_checkpoint(out / "checkpoint")["step"] == 2 and not (out / "adapter_config.json").exists()
    assert train(bases["qwen2_vl"], data, out, *args) == 1  # an existing checkpoint needs --resume
    assert "pass --resume" in capsys.readouterr().err
    assert train(bases["qwen2_vl"], data, out, *args, "--resume") == 0
    assert "resumed from" in capsys.readouterr().err
    card = json.loads((out / "training_card.json").read_text())
    first = json.loads((trained / "training_card.json").read_text())
    assert card["resumed_from_step"] == 2
    assert card["losses"] == pytest.approx(first["losses"], abs=1e-4)
    assert [v["step"] for v in card["val_losses"]] == [2, 4]
    assert [v["loss"] for v in card["val_losses"]] == pytest.approx([v["loss"] for v in first["val_losses"]], abs=1e-4)


def test_the_app_answers_with_the_adapter_and_names_it(bases, trained, tmp_path):
    st = Settings(vlm=str(bases["qwen2_vl"]), vlm_quant="none", vlm_adapter=str(trained), work_dir=tmp_path)
    ws = Workspace(st)
    steps = list(turn(ws, "how many trees are there?", uploads=[NEON]))
    assert steps[-1].kind == "answer" and steps[-1].text.strip()
    assert "model" in " ".join(s.text for s in steps if s.kind == "plan")  # the VLM planned (or tried to)
    vlm = loading.load_vlm(st)  # the cached backend the turn used
    assert vlm.adapter == str(trained) and vlm.family == "Qwen2VL"
    rows = backends(ws)
    assert f"LoRA adapter {trained}" in rows["planner"] and str(bases["qwen2_vl"]) in rows["planner"]
    assert (loading.status("vlm") or "").startswith("loaded:")
    # The adapter changed the weights: the merged q_proj differs from the base's.
    base = loading.load_vlm(Settings(vlm=str(bases["qwen2_vl"]), vlm_quant="none", work_dir=tmp_path))
    key = "model.language_model.layers.0.self_attn.q_proj.weight"
    merged, plain = vlm.model.state_dict()[key], base.model.state_dict()[key]
    assert not np.allclose(merged.numpy(), plain.numpy())


def test_llava_trains_and_a_wrong_or_missing_adapter_is_named(bases, data, root, trained, tmp_path):
    out = root / "llava_adapter"
    assert train(bases["llava"], data, out, "--max-steps", "2", "--train", "projector", "--val-fraction", "0") == 0
    card = json.loads((out / "training_card.json").read_text())
    assert card["model_type"] == "llava" and card["val_losses"] == [] and all(map(math.isfinite, card["losses"]))
    vlm = loading.load_vlm(Settings(vlm=str(bases["llava"]), vlm_quant="none", vlm_adapter=str(out), work_dir=tmp_path))
    assert vlm.family == "Llava" and vlm.complete(
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None, 4
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (out, "trained on a llava model"),  # a LLaVA adapter on the Qwen2-VL base
        (tmp_path / "missing", "no such folder"),
        (empty, "not a peft adapter folder"),
    ]
    for adapter, why in cases:
        st = Settings(vlm=str(bases["qwen2_vl"]), vlm_quant="none", vlm_adapter=str(adapter), work_dir=tmp_path)
        with pytest.raises(loading.BackendUnavailable, match=f"RSCHAT_VLM_ADAPTER={adapter}.*{why}"):
            loading.load_vlm(st)
    # An adapter whose weights do not fit (its card removed, so only peft can tell).
    stray = tmp_path / "stray"
    shutil.copytree(out, stray, ignore=shutil.ignore_patterns("training_card.json", "checkpoint"))
    st = Settings(vlm=str(bases["qwen2_vl"]), vlm_quant="none", vlm_adapter=str(stray), work_dir=tmp_path)
    with pytest.raises(loading.BackendUnavailable, match=f"RSCHAT_VLM_ADAPTER={stray} does not fit"):
        loading.load_vlm(st)


def test_quantised_training_on_cpu_and_bad_input_are_refused(bases, data, tmp_path, capsys):
    argv = ["train", "vlm", "--base", str(bases["qwen2_vl"]), "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*argv, "--quant", "4bit", "--device", "cpu"]) == 1
    assert "--quant 4bit needs a CUDA GPU" in capsys.readouterr().err
    assert main([*argv[:5], str(tmp_path / "nope.json"), *argv[6:], "--quant", "none"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "image": "gone.png", "conversations": []}]))
    assert main([*argv[:5], str(bad), *argv[6:], "--quant", "none"]) == 1
    assert "image not found" in capsys.readouterr().err


def test_step_timing_leaves_out_the_first_step():
    assert train_vlm.step_timing([5.0, 1.0, 2.0, 3.0], [10, 10, 10, 10]) == {
        "step_time_s": 2.0,
        "first_step_time_s": 5.0,
        "tokens_per_s": 5.0,
    }
    assert (
        train_vlm.step_timing([4.0], [8])["tokens_per_s"] == 2.0
        and train_vlm.step_timing([], [])["step_time_s"] is None
    )
