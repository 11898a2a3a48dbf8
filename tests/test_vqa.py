"""Short answers to closed questions, and `rschat eval vqa` on RSVQA-format manifests."""

import json
from pathlib import Path

import pytest

from conftest import ASSETS, SHARED, rschat
from rschat.agent import short_answer
from rschat.eval import vqa

NAIP = str(ASSETS / "naip_2015-09-26.tif")
TREES = str(ASSETS / "OSBS_029.tif")


def _ask(image: str, *questions: str) -> list[dict]:
    proc = rschat("ask", "--image", image, "--json", *questions)
    docs = json.loads(proc.stdout)
    return docs if isinstance(docs, list) else [docs]


def test_closed_questions_get_short_answers_stated_first():
    water, area, kind, worship = _ask(
        NAIP,
        "Is there water?",
        "What is the area covered by buildings?",
        "Is it a rural or an urban area?",
        "Is there a place of worship?",
    )
    assert water["short_answer"] == "yes" and water["answer"].startswith("**Yes")
    assert area["short_answer"].endswith(" m2") and float(area["short_answer"].split()[0]) > 0
    value, unit = area["short_answer"].split()
    assert area["answer"].startswith(f"**{int(value):,} {unit}**")  # thousands separated for reading
    assert kind["short_answer"] in ("rural", "urban") and kind["answer"].startswith(
        f"**{kind['short_answer'].title()}.**"
    )
    # what the tools cannot judge is said plainly, with no short answer
    assert worship["short_answer"] is None and worship["answered"] is False and "cannot" in worship["answer"]


def test_count_question_short_answer_and_stated_pixel_size():
    (count,) = _ask(TREES, "How many buildings are there?")
    assert count["short_answer"] is not None and count["short_answer"].isdigit()
    assert count["answer"].startswith(f"**{count['short_answer']}**")
    noted, area = _ask(TREES, "the pixel size is 0.15 m", "What is the area covered by buildings?")
    assert noted["short_answer"] is None
    assert area["short_answer"] is not None and area["short_answer"].endswith(" m2")


def test_short_answer_parsing_and_model_replies():
    assert short_answer.parse("**Yes.**\n\nwater covers 3%") == "yes"
    assert short_answer.parse("**1,200 m2**\n\nBuilt up covers") == "1200 m2"
    assert short_answer.parse("**Urban.**") == "urban"
    assert short_answer.parse("**Land cover** (`segment`): ...") is None
    assert short_answer.parse("**2 buildings in the image**") is None  # a tool's title, not a short answer
    # a model's own reply is normalised
    assert short_answer.parse("Yes, there is a river in the north.") == "yes"
    assert short_answer.parse("There are 12 buildings.") == "12"
    assert short_answer.parse("It is an urban area with dense housing.") == "urban"
    assert short_answer.parse("The image shows fields.") is None


@pytest.mark.parametrize(
    ("kind", "predicted", "truth", "right"),
    [
        ("presence", "yes", "yes", True),
        ("presence", "Yes", "yes", True),
        ("presence", "no", "yes", False),
        ("presence", None, "no", False),  # no short answer counts as wrong
        ("rural_urban", "urban", "urban", True),
        ("comp", "no", "yes", False),
        ("count", "12", "12", True),
        ("count", "11", "12", False),
        ("count", "12 m2", "12", False),
        ("area", "4693 m2", "4693m2", True),
        ("area", "5600 m2", "4693m2", True),  # within 20%
        ("area", "5700 m2", "4693m2", False),  # 21% off
        ("area", "0 m2", "0m2", True),  # both zero
        ("area", "10 m2", "0m2", False),
        ("area", "30 m2", "between 10m2 and 100m2", True),  # a range: its (log) middle, ~32 m2
        ("area", "yes", "0m2", False),
    ],
)
def test_scoring_rules(kind, predicted, truth, right):
    assert vqa.is_correct(kind, predicted, truth) is right


def test_count_mae_and_majority_baseline():
    rows = [
        ({"type": "count", "answer": "3"}, "5"),
        ({"type": "count", "answer": "0"}, "0"),
        ({"type": "count", "answer": "0"}, None),
        ({"type": "presence", "answer": "no"}, "no"),
    ]
    row = vqa._row(rows)
    assert row["count_mae"] == pytest.approx(1.0)  # |5-3| and |0-0|; the unanswered one is left out of the MAE
    assert row["accuracy"] == pytest.approx(0.5) and row["unanswered"] == 1
    assert row["when_answered"] == pytest.approx(2 / 3)  # a refusal is not a wrong answer here
    assert row["baseline"] == pytest.approx(0.75)  # "0" for counts, "no" for presence


def _small_manifest(tmp_path: Path) -> Path:
    entries = [
        {"image": NAIP, "question": "Is there water?", "answer": "yes", "type": "presence", "set": "a"},
        {"image": NAIP, "question": "Is there a place of worship?", "answer": "no", "type": "presence", "set": "a"},
        {
            "image": NAIP,
            "question": "Is it a rural or an urban area",
            "answer": "rural",
            "type": "rural_urban",
            "set": "a",
        },  # fmt: skip
        {
            "image": TREES,
            "question": "How many buildings are there?",
            "answer": "2",
            "type": "count",
            "pixel_size_m": 0.1,
            "set": "b",
        },  # fmt: skip
        {
            "image": TREES,
            "question": "What is the area covered by buildings?",
            "answer": "0m2",
            "type": "area",
            "pixel_size_m": 0.1,
            "set": "b",
        },  # fmt: skip
    ]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def test_eval_vqa_on_a_small_manifest(tmp_path: Path):
    manifest = _small_manifest(tmp_path)
    proc = rschat("eval", "vqa", "--manifest", str(manifest), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["per_type"]) == {"presence", "rural_urban", "count", "area"}
    assert set(report["per_set"]) == {"a", "b"} and report["images"] == 2
    presence = report["per_type"]["presence"]
    assert presence["questions"] == 2 and presence["unanswered"] >= 1  # the place of worship: no short answer
    assert 0.0 <= report["overall"] <= 0.8
    table = rschat("eval", "vqa", "--manifest", str(manifest), "--set", "b")
    assert table.returncode == 0 and "majority" in table.stdout and "count" in table.stdout


def test_eval_vqa_refuses_a_bad_manifest(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image": "nowhere.png", "question": "Is there water?", "answer": "yes",
                                "type": "presence"}]))  # fmt: skip
    proc = rschat("eval", "vqa", "--manifest", str(bad))
    assert proc.returncode == 1 and "nowhere.png" in proc.stderr
    proc = rschat("eval", "vqa", "--manifest", str(_small_manifest(tmp_path)), "--set", "nope")
    assert proc.returncode == 1 and "nope" in proc.stderr


@pytest.mark.skipif(not (SHARED / "vqa" / "manifest.json").is_file(), reason="../shared/data/vqa is not here")
def test_eval_vqa_on_the_shared_dev_set():
    report = vqa.evaluate_vqa(SHARED / "vqa" / "manifest.json", limit=120)
    assert report["overall_detail"]["questions"] == 120 and report["images"] >= 1
    assert report["runtime_s"] < 60
