"""The agent with a scripted fake model: plans from valid tool calls, retries and falls back
on bad JSON or unknown tools, rejects answers with numbers no tool computed, keeps the
conversation, and draws the boxes of grounded answers."""

from collections.abc import Iterator

import pytest

from conftest import ASSETS, ROOT
from rschat.agent import Workspace, agent, planner_vlm, turn
from rschat.backends.vlm import CONVENTIONS
from rschat.config import Settings

NEON = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"


class ScriptedModel:
    """Replies from a script, in order; records what it was asked."""

    convention = CONVENTIONS["Qwen2VLConfig"]
    name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict]] = []

    def seen_size(self, image):  # type: ignore[no-untyped-def]
        return image.size

    def generate(self, messages, images=None, max_new_tokens=512, temperature=0.0) -> Iterator[str]:  # type: ignore[no-untyped-def]
        self.calls.append(messages)
        reply = self.replies.pop(0)
        for i in range(0, len(reply), 7):  # stream in pieces, as a real model does
            yield reply[i : i + 7]

    def complete(self, messages, images=None, max_new_tokens=256) -> str:  # type: ignore[no-untyped-def]
        return "".join(self.generate(messages, images, max_new_tokens))


@pytest.fixture
def ws_model(settings, monkeypatch):
    def use(replies: list[str]) -> tuple[Workspace, ScriptedModel]:
        model = ScriptedModel(replies)
        monkeypatch.setattr(agent.loading, "load_vlm", lambda st: model)
        ws = Workspace(Settings(vlm="scripted", work_dir=settings.work_dir))
        return ws, model

    return use


def texts(steps, kind):  # type: ignore[no-untyped-def]
    return [s.text for s in steps if s.kind == kind]


def test_valid_tool_calls_are_planned_and_the_grounded_answer_is_kept(ws_model):
    ws, model = ws_model(
        [
            '{"task": "segment"}',
            'Sure: {"calls": [{"tool": "segment", "args": {"image": "image", "target": "trees"}}]}',
            "PLACEHOLDER",
        ]
    )
    ws.load("image", NEON)
    # The answer quotes the tool's own number, which the test reads from a lite run.
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    pct = REGISTRY["segment"].run({"target": "trees"}, ToolContext(ws.rasters, ws.out_dir)).data["trees_percent"]
    model.replies[-1] = f"Trees cover {pct:.1f}% of the image (segment, result r1)."
    steps = list(turn(ws, "how much is forest?"))
    done = [s for s in steps if s.kind == "done"]
    assert done[0].tool == "segment" and done[0].args["target"] == "trees"
    assert "the model classified the request as 'segment'" in texts(steps, "plan")
    assert texts(steps, "delta")  # streamed
    assert steps[-1].text == f"Trees cover {pct:.1f}% of the image (segment, result r1)."


def test_invalid_json_is_retried_then_the_rules_take_over(ws_model):
    ws, model = ws_model(["no idea", "still no json", "Changes are everywhere."])
    steps = list(turn(ws, "what changed?", uploads=[ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]))
    notes = " ".join(texts(steps, "plan"))
    assert "try 1" in notes and "try 2" in notes and "falling back to the rule planner" in notes
    assert [s.tool for s in steps if s.kind == "done"] == ["detect_changes"]
    assert "quoted none of the tools' numbers" in notes and "What changed" in steps[-1].text
    assert "could not be used" in model.calls[1][-1]["content"][0]["text"]  # the retry carried the error


def test_unknown_tool_then_a_valid_call(ws_model):
    ws, _ = ws_model(
        [
            '{"task": "count"}',
            '{"calls": [{"tool": "count_cars_magic", "args": {}}]}',
            '{"calls": [{"tool": "count_objects", "args": {"target": "tree", "image": "image"}}]}',
            "I counted them.",
        ]
    )
    ws.load("image", NEON)
    steps = list(turn(ws, "how many trees?"))
    assert "unknown tool 'count_cars_magic'" in " ".join(texts(steps, "plan"))
    assert [s.tool for s in steps if s.kind == "done"] == ["count_objects"]


def test_schema_violation_is_caught(ws_model):
    ws, _ = ws_model(
        [
            '{"task": "count"}',
            '{"calls": [{"tool": "count_objects", "args": {"target": "unicorn"}}]}',
            '{"calls": [{"tool": "count_objects", "args": {"target": 5}}]}',
            "x",
        ]
    )
    ws.load("image", NEON)
    steps = list(turn(ws, "how many trees?"))
    notes = " ".join(texts(steps, "plan"))
    assert (
        "target: Input should be 'tree'" in notes
        and "(got 'unicorn')" in notes
        and "falling back to the rule planner" in notes
    )
    assert [s.tool for s in steps if s.kind == "done"] == ["count_objects"]  # the rules' plan


def test_a_hallucinated_number_replaces_the_answer_with_the_tools(ws_model):
    ws, _ = ws_model(
        [
            '{"task": "count"}',
            '{"calls": [{"tool": "count_objects", "args": {"target": "tree"}}]}',
            "There are exactly 4321 trees, covering 98.7 ha.",
        ]
    )
    ws.load("image", NEON)
    steps = list(turn(ws, "how many trees?"))
    assert "4321" in " ".join(texts(steps, "plan")) and "no tool computed" in " ".join(texts(steps, "plan"))
    assert "4321" not in steps[-1].text and "trees in the whole image" in steps[-1].text


def test_questions_go_to_the_model_with_images_history_and_boxes(ws_model):
    ws, model = ws_model(
        [
            '{"task": "question"}',
            "The harbour is at <|box_start|>(100,200),(500,600)<|box_end|>.",
            '{"task": "question"}',
            "It looks calm.",
        ]
    )
    ws.load("image", NEON)
    ws.add_box((40, 40, 200, 200))
    first = list(turn(ws, "where is the harbour?"))
    grounding = [s for s in first if s.tool == "grounding"]
    assert grounding and grounding[0].result.data["boxes"] == 1
    assert grounding[0].result.artifacts[0].path.exists()
    asked = model.calls[1][-1]["content"]
    assert asked[1] == {"type": "image"}
    assert any("(100,100),(500,500)" in c.get("text", "") for c in asked)  # the user's box, in 0-1000 units
    assert "no tool measured this" in first[-1].text
    second = list(turn(ws, "and is the water calm?"))
    history = [m["content"][0]["text"] for m in model.calls[3][1:-1]]
    assert "where is the harbour?" in history and any("harbour is at" in h for h in history)  # earlier turns kept
    assert second[-1].text.startswith("It looks calm.")


def test_first_json_finds_objects_in_prose_and_fences():
    assert planner_vlm.first_json('Here:\n```json\n{"task": "count"}\n```') == {"task": "count"}
    assert planner_vlm.first_json('{broken {"a": {"b": 1}} tail') == {"a": {"b": 1}}
    with pytest.raises(ValueError):
        planner_vlm.first_json("nothing")


def test_help_classified_by_the_model_lists_capabilities(ws_model):
    ws, _ = ws_model(['{"task": "help"}'])
    assert "change detection" in list(turn(ws, "what are you good for?"))[-1].text


def test_a_model_that_crashes_leaves_the_rules_in_charge(ws_model):
    ws, model = ws_model([])

    def broken(*args, **kwargs):  # e.g. a processor without a chat template
        raise ValueError("Cannot use chat template functions because tokenizer.chat_template is not set")

    model.generate = broken
    steps = list(turn(ws, "what changed?", uploads=[ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]))
    assert "could not plan" in " ".join(texts(steps, "plan"))
    assert [s.tool for s in steps if s.kind == "done"] == ["detect_changes"] and "What changed" in steps[-1].text


def test_noise_with_only_trivial_numbers_is_not_an_answer(ws_model):
    ws, _ = ws_model(
        ['{"task": "count"}', '{"calls": [{"tool": "count_objects", "args": {"target": "tree"}}]}', "0@f 0@f 0@f 1 2"]
    )
    ws.load("image", NEON)
    steps = list(turn(ws, "how many trees?"))
    assert "quoted none of the tools' numbers" in " ".join(texts(steps, "plan"))
    assert "trees in the whole image" in steps[-1].text
