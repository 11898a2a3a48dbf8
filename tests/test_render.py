"""Steps to chat messages: pending tools replaced, streamed drafts grown then replaced."""

from rschat.agent.steps import Step
from rschat.ui.render import apply_step


def test_tool_steps_and_streamed_answer():
    h = [{"role": "user", "content": "what changed?"}]
    h = apply_step(h, Step("start", "running", "detect_changes", call_id="c1"))
    assert h[-1]["metadata"]["status"] == "pending"
    h = apply_step(h, Step("progress", "60%: change mask computed", "detect_changes", call_id="c1"))
    assert len(h) == 2 and h[-1]["content"] == "60%: change mask computed"
    h = apply_step(h, Step("done", "22% changed", "detect_changes", duration_s=0.5, call_id="c1"))
    assert len(h) == 2 and h[-1]["metadata"]["status"] == "done" and h[-1]["metadata"]["duration"] == 0.5
    for chunk in ("", "Most ", "change is ", "new."):
        h = apply_step(h, Step("delta", chunk))
    assert h[-1] == {"role": "assistant", "content": "Most change is new."}
    h = apply_step(h, Step("plan", "the model's answer was set aside"))
    h = apply_step(h, Step("answer", "22% changed (detect_changes)."))
    texts = [m["content"] for m in h]
    assert "Most change is new." not in texts and texts[-1] == "22% changed (detect_changes)."


def test_answer_without_stream_is_appended():
    h = apply_step([{"role": "user", "content": "help"}], Step("answer", "Here is what I can do"))
    assert h[-1] == {"role": "assistant", "content": "Here is what I can do"}
