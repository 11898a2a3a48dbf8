"""Many users at once (issue 12, items 3 and 5): one user never stalls another, a turn is
stopped by its time limit or the Cancel button, a failure is answered in the chat and
never poisons the session, and sessions (their memory, folders and uploads) end.

The app is launched in this process and driven through gradio_client, as a remote user
(REST, gradio_client: no heartbeat) drives it.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from conftest import ASSETS, launched, make_pair
from rschat.agent import planner_rules
from rschat.agent.agent import stated_gsd
from rschat.agent.vocabulary import intent_of
from rschat.agent.workspace import Workspace
from rschat.config import Settings
from rschat.geo.bands import parse_band_order
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext, ToolResult
from rschat.ui.session import SessionStore

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
TREES = ASSETS / "OSBS_029.tif"
HOSTILE = ["clear ", "clear points ", "segment ", "find all the ", "a ", " ", "1 ", "bands are ", "pixel size ",
           "is this ", "how many ", "1999 ", "how big is the largest ", "(", "x",
           # the planner's follow-ups of 2026-12-07: years, 'when', shares, exports
           "how much ", ". ", "which year ", "give me ", "when ", "and in "]  # fmt: skip


def text_of(message: dict) -> str:
    content = message["content"]
    return " ".join(c.get("text", "") for c in content) if isinstance(content, list) else str(content)


def ask(client: Client, text: str, files: list[Path] | None = None) -> list[dict]:
    """One chat turn (the server keeps the session; the history sent back is not needed)."""
    message = {"text": text, "files": [handle_file(str(f)) for f in files or []]}
    chat, *_ = client.predict(message, [], api_name="/chat")
    return chat


def answer(chat: list[dict]) -> str:
    return text_of(chat[-1])


# -- one user never stalls another -------------------------------------------------------


def test_the_planner_reads_hostile_messages_in_linear_time():
    """No user text reaches a super-linear regular expression: 100 kB and 300 kB of repeated
    words (past the chat's cap: the CLI reads what it is given) plan in well under a few
    seconds each; "clear " x 50,000 took minutes with the old clear pattern."""
    before, after, _ = make_pair()
    ws = Workspace(Settings(work_dir=Path("/nonexistent")))
    for name, raster in (("before", before), ("after", after), ("image", after)):
        ws.add_raster(name, raster)
    started = time.perf_counter()
    assert intent_of("clear " * 50_000) is None
    assert time.perf_counter() - started < 1.0
    for size in (100_000, 300_000):
        for word in HOSTILE:
            message = (word * (size // len(word) + 1))[:size]
            started = time.perf_counter()
            planner_rules.plan(message, ws)
            stated_gsd(message)
            parse_band_order(message)
            took = time.perf_counter() - started
            assert took < 6.0, f"{size:,} characters of {word!r} took {took:.1f} s to plan"
    # A band list followed by a long run of spaces (4,000 spaces after "red, green" held the
    # server 14 s: two free \s* in a row in the band-name token).
    for lead in ("the bands are red, green", "bands: red green and", "a composite of nir /"):
        message = lead + " " * 100_000 + "x"
        started = time.perf_counter()
        planner_rules.plan(message, ws)
        parse_band_order(message)
        assert time.perf_counter() - started < 6.0, f"{lead!r} + spaces took too long"
    assert intent_of("please clear the points") == "clear" and intent_of("clear\nall boxes") == "clear"


@pytest.fixture(scope="module")
def busy_app(tmp_path_factory):
    """An app with a short turn time limit, for the time-limit, cancel and failure tests."""
    settings = Settings(work_dir=tmp_path_factory.mktemp("work"), turn_timeout_s=4)
    with launched(settings) as running:
        yield running


def test_a_hostile_message_does_not_stall_another_session(busy_app):
    url, _ = busy_app
    other = Client(url, verbose=False)
    ask(other, "what changed?", PAIR)
    started = time.perf_counter()
    assert "change regions" in answer(ask(other, "how many regions are there?"))
    alone = time.perf_counter() - started

    hostile = Client(url, verbose=False)
    replies: list[str] = []

    def flood() -> None:
        for text in ("clear " * 50_000, "clear " * 666, ("clear " * 666)[:3990] + "points"):
            replies.append(answer(ask(hostile, text)))

    flooder = threading.Thread(target=flood)
    flooder.start()
    time.sleep(0.3)  # the 300 kB message is on its way
    started = time.perf_counter()
    follow_up = answer(ask(other, "how big is the largest one?"))
    loaded = time.perf_counter() - started
    flooder.join(60)
    print(f"follow-up alone {alone:.2f} s, during the hostile messages {loaded:.2f} s")
    assert "largest change region" in follow_up
    assert loaded < alone + 2.0, f"another session's follow-up took {loaded:.1f} s (alone {alone:.1f} s)"
    assert "characters long" in replies[0] and len(replies) == 3  # the cap answers the 300 kB message


def _slow_tool(monkeypatch, tiles: int, seconds_per_tile: float) -> list[int]:
    """Make describe_scene a tiled job that reports each tile; returns the tiles done."""
    done: list[int] = []

    def slow(args, ctx: ToolContext) -> ToolResult:  # type: ignore[no-untyped-def]
        for i in range(tiles):
            ctx.progress(i / tiles, f"tile {i + 1}/{tiles}, about {(tiles - i) * seconds_per_tile:.0f} s left")
            time.sleep(seconds_per_tile)
            done.append(i)
        raise AssertionError("the slow tool was never stopped")

    tool = REGISTRY["describe_scene"]
    monkeypatch.setitem(REGISTRY, "describe_scene", dataclasses.replace(tool, function=slow))
    return done


def test_a_turn_past_its_time_limit_says_so_and_stops_its_tool(busy_app, monkeypatch):
    url, _ = busy_app
    done = _slow_tool(monkeypatch, tiles=100, seconds_per_tile=0.1)
    client = Client(url, verbose=False)
    ask(client, "", [TREES])
    job = client.submit({"text": "describe this scene", "files": []}, [], api_name="/chat")
    started = time.perf_counter()
    chat, *_ = job.result(timeout=30)
    took = time.perf_counter() - started
    assert "took too long (limit 4 s" in answer(chat) and took < 9
    steps = [text_of(m) for m in chat if (m.get("metadata") or {}).get("title", "").startswith("describe_scene")]
    assert steps and "took too long" in steps[-1]  # the step itself says why it stopped
    shown = [text_of(o[0][-1]) for o in job.outputs() if o and o[0]]
    assert any("tile" in s and "s left" in s for s in shown)  # progress reached the chat
    stopped_at = len(done)
    time.sleep(0.5)
    assert len(done) <= stopped_at + 1 < 100  # the tool's thread stopped at its next report
    monkeypatch.undo()
    assert "trees" in answer(ask(client, "how many trees are there?"))  # the session lives on


def test_cancel_stops_the_running_turn(busy_app, monkeypatch):
    url, _ = busy_app
    done = _slow_tool(monkeypatch, tiles=100, seconds_per_tile=0.1)
    client = Client(url, verbose=False)
    ask(client, "", [TREES])
    assert "nothing is running" in client.predict(api_name="/cancel")
    job = client.submit({"text": "describe this scene", "files": []}, [], api_name="/chat")
    while len(done) < 3:
        time.sleep(0.05)
    assert "cancelling" in client.predict(api_name="/cancel")
    chat, *_ = job.result(timeout=10)
    assert "Stopped, as you asked" in answer(chat) and len(done) < 30
    monkeypatch.undo()
    assert "trees" in answer(ask(client, "how many trees are there?"))


def test_failures_are_answered_in_the_chat_and_never_poison_the_session(busy_app, monkeypatch, tmp_path):
    url, demo = busy_app
    client = Client(url, verbose=False)
    bad = {
        "trunc.tif": PAIR[0].read_bytes()[:5000],
        "text.tif": b"not a tiff at all",
        "empty.tif": b"",
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    Image.new("L", (12000, 12000)).save(tmp_path / "bomb.png", optimize=True)  # 144 MP over 64 MP
    for name in [*bad, "bomb.png"]:
        reply = answer(ask(client, "what changed?", [tmp_path / name]))
        assert reply.startswith("I could not use that upload") and name in reply, reply
    uploads = {p for s in demo.store._by_session.values() for p in s.uploads}
    assert not any(p.name in bad or p.name == "bomb.png" for p in uploads)  # refused: not kept

    # A bug in the turn or in the map: a plain answer, and the next turn works.
    import rschat.ui.map_state as map_state
    import rschat.ui.turns as turns

    real_turn, real_build = turns.turn, map_state.build

    def broken_turn(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    def broken_map(ws, *args, **kwargs):  # type: ignore[no-untyped-def]
        if ws.rasters:
            raise ValueError("a footprint across 180 degrees")
        return real_build(ws, *args, **kwargs)

    monkeypatch.setattr(turns, "turn", broken_turn)
    assert "Something went wrong on my side" in answer(ask(client, "what changed?"))
    monkeypatch.setattr(turns, "turn", real_turn)
    monkeypatch.setattr(map_state, "build", broken_map)
    chat = ask(client, "what changed?", PAIR)
    assert "What changed" in answer(chat)
    monkeypatch.undo()
    for question, expected in (
        ("how big is the largest one?", "largest change region"),
        ("how many regions are there?", "15 separate change regions"),
        ("how many of them look dead?", "change regions"),
    ):
        assert expected in answer(ask(client, question))


# -- sessions end ---------------------------------------------------------------------------


class _Request:
    def __init__(self, key: str) -> None:
        self.session_hash = key


def test_idle_sessions_and_stale_folders_are_swept(tmp_path):
    work = tmp_path / "work"
    (work / "session-from-an-earlier-run").mkdir(parents=True)
    (work / "session-from-an-earlier-run" / "r1_overlay.png").write_bytes(b"x")
    old = time.time() - 10
    os.utime(work / "session-from-an-earlier-run", (old, old))
    (work / "not-a-session").mkdir()
    store = SessionStore(Settings(work_dir=work, session_max_idle_s=2))
    session = store.get(_Request("api-client"))
    folder = session.ws.out_dir
    assert len(folder.name) > 30  # "session-" and 24 random characters: not guessable
    store.start_sweeper()
    time.sleep(0.3)
    assert not (work / "session-from-an-earlier-run").exists() and (work / "not-a-session").exists()
    assert folder.exists() and len(store) == 1  # still fresh
    deadline = time.monotonic() + 8
    while len(store) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(store) == 0 and not folder.exists()


def _client_run(client: Client, kind: str, turns: int) -> dict:
    """One user's turns, ending with "New session"; returns what it saw (answers, and the
    session folders its map shows files from)."""
    seen: dict = {"answers": [], "folders": set(), "kind": kind}

    def note(outputs: tuple) -> str:
        chat, map_json = outputs[0], outputs[5]
        seen["answers"].append(answer(chat))
        seen["folders"].update(re.findall(r"session-[\w-]+", map_json or ""))
        return answer(chat)

    def ask(text: str, files: list[Path] | None = None) -> tuple:
        message = {"text": text, "files": [handle_file(str(f)) for f in files or []]}
        return client.predict(message, [], api_name="/chat")

    if kind == "pair":
        note(ask("what changed?", PAIR))
        questions = ["how many regions are there?", "how big is the largest one?", "how many of them look dead?"]
    elif kind == "trees":
        note(ask("how many trees are there?", [TREES]))
        questions = ["how big is the largest one?", "how many of them look dead?", "how many trees are there?"]
    elif kind == "example":
        client.predict(api_name="/load_example")
        note(ask("how much of it is water?"))
        questions = ["how many regions are there?", "how much of it is water?", "help"]
    else:
        questions = ["what changed?", "how many trees are there?", "help"]
    for i in range(turns - 2):
        note(ask(questions[i % len(questions)]))
    client.predict(api_name="/new_session")
    note(ask("how many regions are there?"))  # a new session has no results
    return seen


def test_twenty_concurrent_sessions_stay_apart_and_end(tmp_path):
    """20 API clients, 200 turns: each sees only its own numbers and files, nothing ends in
    a bare error, the server's memory stays level, and every folder is gone at the end."""
    settings = Settings(work_dir=tmp_path / "work", session_max_idle_s=600)
    kinds = ["pair", "trees", "example", "none"] * 5
    with launched(settings) as (url, demo):

        def rss_mb() -> float:
            gc.collect()
            fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
            return int(fields[0]) / 1024

        rss = [rss_mb()]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=20) as pool:
            clients = list(pool.map(lambda _: Client(url, verbose=False), kinds))
            first = list(pool.map(lambda c, k: _client_run(c, k, 5), clients, kinds))
            rss.append(rss_mb())
            second = list(pool.map(lambda c, k: _client_run(c, k, 5), clients, kinds))
        rss.append(rss_mb())
        took = time.perf_counter() - started
        print(f"200 turns by 20 clients in {took:.0f} s; RSS MB start/middle/end {[round(r) for r in rss]}")
        for seen in first + second:
            texts = seen["answers"]
            assert not any("Something went wrong" in t or t.strip() in ("", "Error") for t in texts), texts
            assert len(seen["folders"]) <= 2  # its own folder (and its new session's), never another's
            if seen["kind"] == "pair":
                assert "15 separate change regions" in texts[1] and not any("trees in" in t for t in texts)
            elif seen["kind"] == "trees":
                assert "trees in the whole image" in texts[0] and not any("change region" in t for t in texts[:-1])
            elif seen["kind"] == "none":
                assert "two images" in texts[0]
        folders = [f for seen in first + second for f in seen["folders"]]
        assert len(folders) == len(set(folders))  # no folder seen by two clients
        # RSS is the process's (server and clients), and glibc keeps freed memory in per-thread
        # arenas, so the bound is generous; what must not grow is the sessions' state, checked
        # exactly below: no Workspace outlives its session.
        assert rss[2] - rss[1] < 400, f"memory grew by {rss[2] - rss[1]:.0f} MB over the last 100 turns"
        store = demo.store  # type: ignore[attr-defined]
        assert len(store) == 20  # each client's current (new) session; the first ones were dropped
        store.settings = dataclasses.replace(store.settings, session_max_idle_s=0)  # every client has left
        store.sweep()
        assert len(store) == 0
        assert not list(settings.work_dir.glob("session-*"))
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, Workspace) and o.rasters]
        assert not alive, f"{len(alive)} workspaces with images outlived their sessions"


def test_uploads_over_the_size_limit_are_refused_and_not_kept(tmp_path):
    settings = Settings(work_dir=tmp_path / "work", max_file_bytes=200_000)
    big = tmp_path / "big.tif"
    big.write_bytes(np.random.default_rng(0).integers(0, 255, 400_000, dtype=np.uint8).tobytes())
    with launched(settings) as (url, _):
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="(?i)size|413|exceed"):
            ask(client, "what is this?", [big])
        import gradio.utils

        kept = [p for p in Path(gradio.utils.get_upload_folder()).rglob("big.tif")]
        assert not kept


def test_requests_without_a_session_hash_never_share_a_session_and_sessions_are_capped(tmp_path):
    """One shared 'anonymous' session let any REST caller export another caller's images;
    each such request now gets its own, and past max_sessions the longest idle one ends."""
    import time as clock
    from types import SimpleNamespace

    store = SessionStore(Settings(work_dir=tmp_path, max_sessions=3))
    a, b = store.get(SimpleNamespace(session_hash=None)), store.get(SimpleNamespace(session_hash=None))
    assert a is not b
    kept = store.get(SimpleNamespace(session_hash="tab"))
    kept.ws.add_raster("image", make_pair()[0])
    store.get(SimpleNamespace(session_hash="another"))  # nobody idle for 2 minutes: no one ends
    assert len(store) == 4
    for session in (a, b, kept):
        session.last_seen = clock.monotonic() - 600
    store.get(SimpleNamespace(session_hash="fifth"))  # an empty idle session ends, not a user's work
    assert len(store) == 4 and store.get(SimpleNamespace(session_hash="tab")) is kept


def test_turns_computing_at_once_stay_bounded_after_a_cancel(tmp_path):
    """A stopped turn frees Gradio's slot at once but its thread computes on: new turns wait
    for a computing slot (and stop waiting when they are stopped), so cancel-and-ask-again
    cannot run more turns at once than RSCHAT_MAX_CONCURRENT_TURNS."""
    from types import SimpleNamespace

    from rschat.ui import turns

    store = SessionStore(Settings(work_dir=tmp_path, max_concurrent_turns=1))
    session = store.get(SimpleNamespace(session_hash="a"))
    slots = turns._computing(1)
    slots.acquire()  # the thread of a cancelled turn, still computing
    try:
        steps = list(turns.run_turn(session, "help", [], limit_s=1))
        assert [s.kind for s in steps] == ["answer"] and not steps[-1].answered
    finally:
        slots.release()
    steps = list(turns.run_turn(session, "help", [], limit_s=30))
    assert steps[-1].kind == "answer" and steps[-1].answered
