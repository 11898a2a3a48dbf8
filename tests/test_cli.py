"""The rschat command, run as a user runs it (a subprocess)."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import ASSETS, rschat

PAIR = [str(ASSETS / "naip_2009-08-18.tif"), str(ASSETS / "naip_2015-09-26.tif")]


def test_ask_json_with_before_and_after(tmp_path: Path):
    out = tmp_path / "out"
    proc = rschat("ask", "--before", PAIR[0], "--after", PAIR[1], "--out", str(out), "--json", "what changed?")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"answer", "answered", "short_answer", "backends", "steps"} and doc["answered"] is True
    step = doc["steps"][0]
    assert step["tool"] == "detect_changes" and step["data"]["changed_area_m2"] > 0
    assert all(Path(p).is_file() and Path(p).parent == out for p in step["artifacts"])
    assert any(p.endswith(".tif") for p in step["artifacts"]) and any(p.endswith(".geojson") for p in step["artifacts"])
    assert doc["backends"]["change_detection"].startswith("classical")


def test_ask_with_two_images_and_plain_text():
    proc = rschat("ask", "--image", PAIR[0], "--image", PAIR[1], "what changed?")
    assert proc.returncode == 0 and "What changed" in proc.stdout and "ha" in proc.stdout


def test_bad_input_exits_non_zero_with_the_message(tmp_path: Path):
    (tmp_path / "x.png").write_text("not an image")
    proc = rschat("ask", "--before", str(tmp_path / "x.png"), "--after", PAIR[1], "what changed?")
    assert proc.returncode == 1 and "x.png" in proc.stderr + proc.stdout
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((31, 30, 3), np.uint8)).save(tmp_path / "b.png")
    proc = rschat("ask", "--image", str(tmp_path / "a.png"), "--image", str(tmp_path / "b.png"), "what changed?")
    assert proc.returncode == 1 and "line up" in proc.stderr


def test_eval_change_on_a_small_manifest(tmp_path: Path):
    from conftest import make_pair

    before, after, truth = make_pair(crs=None)
    for name, r in (("a.png", before), ("b.png", after)):
        Image.fromarray(np.moveaxis(r.data, 0, -1)).save(tmp_path / name)
    Image.fromarray((truth * 255).astype(np.uint8)).save(tmp_path / "label.png")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps([{"dataset": "synthetic", "before": "a.png", "after": "b.png", "label": "label.png"}])
    )
    proc = rschat("eval", "change", "--manifest", str(manifest), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc["pooled"]) >= {"precision", "recall", "f1", "iou"}
    assert doc["per_dataset"]["synthetic"]["f1"] > 0.7
    assert "pooled" in rschat("eval", "change", "--manifest", str(manifest)).stdout
    # What is asked of each set: a per-dataset target, named in the report; a bad one refused.
    doc = json.loads(
        rschat("eval", "change", "--manifest", str(manifest), "--target", "synthetic=any", "--json").stdout
    )
    assert doc["targets"] == {"synthetic": "any"}
    bad = rschat("eval", "change", "--manifest", str(manifest), "--target", "synthetic=roads")
    assert bad.returncode != 0 and "must be one of any, building" in bad.stderr


def test_ask_with_box_and_point_flags():
    neon = str(ASSETS.parents[1] / "tests" / "data" / "neon" / "OSBS_029.tif")
    proc = rschat("ask", "--image", neon, "--box", "0,0,200,200", "--json", "how many trees in this box?")
    assert proc.returncode == 0, proc.stderr
    step = json.loads(proc.stdout)["steps"][0]
    assert step["tool"] == "count_objects" and step["args"]["box"] == [0, 0, 200, 200] and step["data"]["count"] > 0
    proc = rschat("ask", "--image", neon, "--point", "50,50,+", "--json", "is this vegetation?")
    assert proc.returncode == 0 and "the point (50, 50)" in json.loads(proc.stdout)["answer"]
    assert rschat("ask", "--image", neon, "--point", "oops", "x").returncode == 2


def test_follow_up_questions_in_one_call_reuse_the_result():
    proc = rschat(
        "ask", "--before", PAIR[0], "--after", PAIR[1], "--json", "what changed?", "how big is the largest change?"
    )
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads(proc.stdout)
    assert first["steps"][0]["tool"] == "detect_changes"
    assert "largest change region" in second["answer"] and "not recomputed" in second["answer"]
