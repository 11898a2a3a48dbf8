"""The launched app, driven through gradio_client as a remote user would."""

import json
import subprocess
import sys
import textwrap

from gradio_client import Client, handle_file

from conftest import ASSETS
from rschat.config import Settings

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]


def resend(history: list[dict]) -> list[dict]:
    """The history as gradio_client must send it back: file paths wrapped by handle_file."""
    out = []
    for m in history:
        content = [
            {**c, "file": handle_file(c["file"])} if isinstance(c, dict) and c.get("type") == "file" else c
            for c in m["content"]
        ]
        out.append({**m, "content": content})
    return out


def text_of(message: dict) -> str:
    content = message["content"]
    return " ".join(c.get("text", "") for c in content) if isinstance(content, list) else str(content)


def test_pair_in_one_message_gets_a_change_answer_with_overlay_and_downloads(app):
    url, demo = app
    client = Client(url, verbose=False)
    chat, _, overlay, slider, files, map_json, legend, _status = client.predict(
        {"text": "what changed?", "files": [handle_file(str(p)) for p in PAIR]}, [], api_name="/chat"
    )
    answer = text_of(chat[-1])
    assert "What changed" in answer and "ha" in answer
    tool_msgs = [m for m in chat if (m.get("metadata") or {}).get("title", "").startswith("detect_changes")]
    assert tool_msgs and tool_msgs[0]["metadata"]["status"] == "done" and tool_msgs[0]["metadata"]["duration"] > 0
    assert overlay.endswith("_overlay.png") and len(slider) == 2
    assert {f.rsplit(".", 1)[-1] for f in files} >= {"tif", "geojson"}
    layers = [layer["name"] for layer in json.loads(map_json)["layers"]]
    assert layers[:2] == ["image footprint", "changes (r1)"]  # the map got the footprint and the change polygons
    assert "changed" in legend  # the image panel says what the overlay's colours mean

    # A follow-up in the same session is answered from the stored result.
    pictures = [m for m in chat if isinstance(m["content"], list) and m["content"][0].get("type") == "file"]
    picture = [m for m in pictures if m["role"] == "assistant"]
    assert picture and picture[0]["content"][0]["file"].endswith("_overlay.png")  # shown inline in the chat
    previews = [m["content"][0] for m in pictures if m["role"] == "user"]  # PNG previews of the uploaded TIFFs
    assert [p["alt_text"] for p in previews] == [f.name for f in PAIR] and previews[0]["file"].endswith(".png")
    chat, *_ = client.predict({"text": "how big is the largest change?", "files": []}, resend(chat), api_name="/chat")
    assert "largest change region" in text_of(chat[-1]) and "not recomputed" in text_of(chat[-1])


def test_before_after_slots_and_bad_files(app, tmp_path):
    url, _ = app
    client = Client(url, verbose=False)
    status, *_ = client.predict(handle_file(str(PAIR[0])), api_name="/load_before")
    assert "EPSG:26914" in status
    bad = tmp_path / "bad.png"
    bad.write_text("no image here")
    status, *_ = client.predict(handle_file(str(bad)), api_name="/load_after")
    assert "not loaded" in status and "bad.png" in status


def test_sessions_are_separate(app):
    url, demo = app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    a.predict({"text": "what changed?", "files": [handle_file(str(p)) for p in PAIR]}, [], api_name="/chat")
    chat, *_ = b.predict({"text": "what changed?", "files": []}, [], api_name="/chat")
    assert "two images" in text_of(chat[-1])


def test_ask_endpoint_answers_as_json_with_the_session_kept_per_client(app):
    """/ask is the turn for programs: no chat history to send back, the answer as JSON."""
    url, _ = app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    got = a.predict("what changed?", [handle_file(str(p)) for p in PAIR], api_name="/ask")
    assert got["answered"] and "ha" in got["answer"]
    (step,) = [s for s in got["steps"] if s["tool"] == "detect_changes"]
    assert step["data"]["changed_area_m2"] > 0 and any(f.endswith(".geojson") for f in step["files"])
    follow = a.predict("how big is the largest change?", api_name="/ask")  # the same session
    assert "largest change region" in follow["answer"] and follow["short_answer"].endswith((" m2", " ha"))
    other = b.predict("how big is the largest change?", api_name="/ask")  # another client's session
    assert not other["answered"]
    files = a.predict(api_name="/export")[0]
    assert any(str(f).endswith(".gpkg") for f in files)


def test_ask_reads_no_file_on_the_server_named_in_a_request(app, tmp_path):
    """gr.api hands /ask the paths a request names (Gradio checks only components' files):
    a server image named by a raw FileData must not be read, nor show up in /export."""
    import httpx

    url, _ = app
    server_file = tmp_path / "private.png"
    server_file.write_bytes(PAIR[0].with_suffix(".tif").read_bytes())
    call = httpx.post(f"{url}gradio_api/call/ask", json={"data": ["what is this?", [{"path": str(server_file)}]]})
    events = httpx.get(f"{url}gradio_api/call/ask/{call.json()['event_id']}", timeout=120).text
    got = json.loads(events.split("data: ", 1)[1].splitlines()[0])[0]
    assert not got["answered"] and not got["steps"] and "never a path on the server" in got["answer"]


def test_serving_and_a_lite_turn_import_no_model_library():
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from rschat.ui.app import build_demo
        from rschat.agent import Workspace, turn
        from rschat.config import Settings
        demo = build_demo()
        ws = Workspace(Settings())
        list(turn(ws, "what changed?", uploads=[Path({str(PAIR[0])!r}), Path({str(PAIR[1])!r})]))
        heavy = [m for m in ("torch", "transformers", "diffusers", "open_clip", "segment_anything") if m in sys.modules]
        print("HEAVY", heavy)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_clicks_add_points_and_two_clicks_make_a_box(tmp_path):
    import gradio as gr

    from rschat.ui import panels
    from rschat.ui.session import SessionStore

    store = SessionStore(Settings(work_dir=tmp_path))

    class Req:
        session_hash = "abc"

    session = store.get(Req())
    session.ws.load("image", PAIR[0])
    panels.refresh(session)
    evt = gr.SelectData(None, {"index": [10, 20], "value": None})  # what Gradio passes on a click
    assert "added" in session.click("point +", *evt.index)
    session.click("point -", 30, 30)
    assert "corner" in session.click("box (two clicks)", 40, 30)
    assert "added" in session.click("box (two clicks)", 5, 5)
    drawn = panels.with_prompts(session)
    assert drawn != session.base_image and drawn.endswith(".png")
    assert session.ws.current_box() == (5, 5, 40, 30) and session.ws.current_point() == (10.0, 20.0)
    assert session.ws.points[-1] == (30.0, 30.0, False)
    store.drop(Req())
    assert len(store) == 0
