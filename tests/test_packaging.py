"""Packaging: the Space's requirements.txt and the package's dependencies stay the same list,
and a built wheel, installed away from the checkout, serves the app and answers a turn."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requirements_txt_matches_pyproject():
    deps = PYPROJECT["project"]["dependencies"]
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [ln for ln in lines if ln and not ln.startswith("#")] == deps


def test_top_level_matches_the_design_card():
    for name in ("pyproject.toml", "app.py", "rschat", "assets", "prompts", "tests", "checkpoints", "README.md"):
        assert (ROOT / name).exists(), name


def test_every_package_is_in_the_wheel_list():
    """pyproject.toml lists the packages (the data folders are mapped in): a new subpackage
    must be added there, or the wheel would leave it out."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rschat").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapped == {"rschat.prompts": "prompts", "rschat.assets": "assets", "rschat.checkpoints": "checkpoints"}
    assert (ROOT / "rschat" / "py.typed").is_file()


# Run from an empty folder with only the installed wheel on the path: the page, the vendored
# Leaflet and one turn on the packaged example pair. Sockets other than local ones fail, as in
# conftest.
INSTALLED_RUN = r"""
import json, os, socket, sys, urllib.request
from pathlib import Path

_connect = socket.socket.connect
def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") and not host.startswith("/"):
        raise OSError(f"network disabled in tests (tried {address})")
    return _connect(self, address)
socket.socket.connect = _local_only

import rschat
from rschat import resources
from rschat.agent import Workspace, turn
from rschat.agent.prompts import fill, template
from rschat.config import Settings
from rschat.ui import map_panel
from rschat.ui.app import EXAMPLE_AFTER, EXAMPLE_BEFORE, build_demo, launch_options
from rschat.weights import manifest

out = {"file": rschat.__file__, "checkout": str(resources.checkout()), "prompts": str(resources.prompts_dir()),
       "pull_to": str(resources.checkpoints_dir()), "vendor": str(map_panel.VENDOR)}
out["system"] = template("system")
out["filled"] = fill("answer", message="what changed?", results="(none)")
out["manifest"] = [m["name"] for m in manifest()]
out["leaflet"] = (map_panel.LEAFLET / "leaflet.js").is_file() and (map_panel.LEAFLET_DRAW / "leaflet.draw.js").is_file()
out["examples"] = [str(EXAMPLE_BEFORE), str(EXAMPLE_AFTER), EXAMPLE_BEFORE.is_file() and EXAMPLE_AFTER.is_file()]

settings = Settings(work_dir=Path("work").resolve())
demo = build_demo(settings)
demo.queue()
_, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options(settings))
try:
    with urllib.request.urlopen(url, timeout=30) as page:
        out["page"] = [page.status, "gradio" in page.read().decode("utf-8", "replace").lower()]
    script = f"{url.rstrip('/')}/gradio_api/file={map_panel.LEAFLET / 'leaflet.js'}"
    with urllib.request.urlopen(script, timeout=30) as js:
        out["leaflet_served"] = [js.status, len(js.read())]
finally:
    demo.close()

steps = list(turn(Workspace(settings), "what changed?", named={"before": EXAMPLE_BEFORE, "after": EXAMPLE_AFTER}))
out["steps"] = [[s.kind, s.text[:400]] for s in steps]
out["answer"] = steps[-1].text
print("RESULT " + json.dumps(out))
"""


def _source_tree(dest: Path) -> Path:
    """What goes into a build, copied out of the checkout (so no build/ or egg-info lands in it,
    and no stale build/lib leaks into the wheel); checkpoints/ only as git keeps it."""
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("rschat", "prompts", "assets"):
        shutil.copytree(ROOT / name, dest / name, ignore=junk)
    (dest / "checkpoints").mkdir()
    for name in ("README.md", "manifest.json"):
        shutil.copy2(ROOT / "checkpoints" / name, dest / "checkpoints" / name)
    if (ROOT / "checkpoints" / "lite").is_dir():
        shutil.copytree(ROOT / "checkpoints" / "lite", dest / "checkpoints" / "lite")
    return dest


@pytest.mark.slow
def test_built_wheel_installs_serves_the_page_and_answers(tmp_path):
    began = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RSCHAT_", "PYTHONPATH"))}
    env |= {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    src = _source_tree(tmp_path / "src")
    dist, target, run_dir = tmp_path / "dist", tmp_path / "target", tmp_path / "run"
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("rschat-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"rschat/py.typed", "rschat/checkpoints/manifest.json", "rschat/assets/examples/naip_2009-08-18.tif",
                "rschat/assets/examples/naip_2015-09-26.tif", "rschat/assets/vendor/leaflet-1.9.4/leaflet.js",
                "rschat/assets/vendor/leaflet-1.9.4/images/marker-icon.png",
                "rschat/assets/vendor/leaflet-draw-1.0.4/leaflet.draw.js",
                "rschat/assets/vendor/leaflet-draw-1.0.4/images/spritesheet.svg"}  # fmt: skip
    expected |= {f"rschat/prompts/{p.name}" for p in (ROOT / "prompts").glob("*.txt")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "rschat").rglob("*.py")}
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith("rschat/assets/screenshot")]
    lite = {f"rschat/checkpoints/lite/{p.name}" for p in (ROOT / "checkpoints" / "lite").glob("*.*")}
    assert lite <= names, sorted(lite - names)  # the learned lite models ship in the wheel
    lite_mb = sum(p.stat().st_size for p in (ROOT / "checkpoints" / "lite").glob("*.onnx"))
    assert wheel.stat().st_size < 4_000_000 + lite_mb, wheel.stat().st_size

    install = subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]

    run_dir.mkdir()
    env |= {"PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(INSTALLED_RUN)],
                          capture_output=True, text=True, env=env, cwd=run_dir, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT ") :])

    assert Path(out["file"]).is_relative_to(target), out["file"]  # the wheel, not the checkout
    assert out["checkout"] == "None" and Path(out["prompts"]).is_relative_to(target)
    assert Path(out["vendor"]).is_relative_to(target) and out["leaflet"]
    assert out["pull_to"] == str(run_dir / "checkpoints")  # writable, where the app runs
    assert out["system"] == (ROOT / "prompts" / "system.txt").read_text()
    assert "Request: what changed?" in out["filled"] and "{" not in out["filled"]
    assert out["manifest"] == [m["name"] for m in json.loads((ROOT / "checkpoints" / "manifest.json").read_text())]
    assert all(Path(p).is_relative_to(target) for p in out["examples"][:2]) and out["examples"][2]
    assert out["page"] == [200, True]
    assert out["leaflet_served"][0] == 200 and out["leaflet_served"][1] > 100_000
    kinds = [kind for kind, _ in out["steps"]]
    assert "done" in kinds and "error" not in kinds and kinds[-1] == "answer", out["steps"]
    assert out["answer"].strip() and "%" in out["answer"], out["answer"]
    assert time.monotonic() - began < 120
