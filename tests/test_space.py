"""Issue 9.7: a Hugging Face Space that runs as configured. The README's front matter is a
free CPU Space in lite mode; `rschat space` writes the Space's files into a folder (dry run:
no network) and uploads them with HfApi.upload_folder; HF_HUB_OFFLINE follows RSCHAT_OFFLINE
(offline unless a model setting names a hub id)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, rschat
from rschat import cli
from rschat.backends import loading
from rschat.config import Settings, load_settings


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_readme_front_matter_is_a_free_cpu_space_in_lite_mode():
    meta = front_matter(ROOT / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta.get("suggested_hardware", "cpu-basic") == "cpu-basic"  # was t4-small: a paid GPU
    assert "## Hugging Face Space" in (ROOT / "README.md").read_text()


def test_dry_run_writes_the_space_folder_and_lists_it(tmp_path):
    out = tmp_path / "space"
    proc = rschat("space", "--dry-run", "--out", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}

    assert {"README.md", "app.py", "requirements.txt", "pyproject.toml", "checkpoints/manifest.json"} <= written
    assert {"rschat/__init__.py", "rschat/cli.py", "rschat/space.py", "rschat/py.typed"} <= written
    assert {f"prompts/{p.name}" for p in (ROOT / "prompts").glob("*.txt")} <= written
    assert {"assets/examples/naip_2009-08-18.tif", "assets/vendor/leaflet-1.9.4/leaflet.js",
            "assets/vendor/leaflet-1.9.4/images/marker-icon.png"} <= written  # fmt: skip
    assert not [p for p in written if p.startswith(("tests/", "scripts/", "docs/")) or "screenshot" in p]
    assert not [p for p in written if "__pycache__" in p or p.endswith(".pyc")]

    meta = front_matter(out / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert (out / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()

    rows = {line.split()[-1]: line for line in proc.stdout.splitlines() if line.strip().split()[-1] in written}
    assert set(rows) == written  # every file listed, with its size
    tif = rows["assets/examples/naip_2009-08-18.tif"]
    assert "binary" in tif and f"{(out / 'assets/examples/naip_2009-08-18.tif').stat().st_size:,}" in tif
    assert "binary" in rows["assets/vendor/leaflet-1.9.4/images/marker-icon.png"]
    assert "text" in rows["app.py"] and "binary" not in rows["rschat/__init__.py"]  # empty is text
    binary = [p for p, line in rows.items() if "binary" in line]
    assert len(binary) >= 10 and f"{len(written)} files" in proc.stdout and f"; {len(binary)} binary" in proc.stdout

    # The folder is the app: a source checkout where rschat finds its data.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rschat import resources as r; print(r.checkout(), r.vendor_dir().is_dir(), "
            "r.manifest_path().is_file(), r.prompts_dir().is_dir())",
        ],  # fmt: skip
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(out)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.split() == [str(out), "True", "True", "True"], check.stderr

    again = rschat("space", "--dry-run", "--out", str(out), timeout=120)  # an earlier build is replaced
    assert again.returncode == 0, again.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused = rschat("space", "--dry-run", "--out", str(other), timeout=120)
    assert refused.returncode == 1 and "not empty" in refused.stderr and (other / "notes.txt").exists()


def test_upload_calls_upload_folder_with_the_space(tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, **kw: calls.append(("create_repo", kw)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload_folder", kw)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "space"
    assert cli.main(["space", "someone/rschat", "--out", str(out)]) == 0
    (_, created), (_, uploaded) = calls
    assert created["repo_id"] == "someone/rschat" and created["repo_type"] == "space"
    assert created["space_sdk"] == "gradio" and created["exist_ok"] is True
    assert uploaded["repo_id"] == "someone/rschat" and uploaded["repo_type"] == "space"
    assert Path(uploaded["folder_path"]) == out and (out / "app.py").is_file()
    assert "https://huggingface.co/spaces/someone/rschat" in capsys.readouterr().out

    assert cli.main(["space", "--out", str(tmp_path / "x")]) == 2  # no Space named, no dry run
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: (_ for _ in ()).throw(OSError("no network")))
    assert cli.main(["space", "someone/rschat", "--out", str(out)]) == 1
    assert "upload to someone/rschat failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "offline"),
    [
        ({}, True),  # lite mode: never online
        ({"RSCHAT_VLM": "Qwen/Qwen2.5-VL-3B-Instruct"}, False),  # a Space with a hub id fetches it
        ({"RSCHAT_GENERATOR": "stabilityai/sd-turbo"}, False),
        ({"RSCHAT_CLIP": "ViT-B-32:hf-hub:chendelong/RemoteCLIP"}, False),
        ({"RSCHAT_CLIP": "ViT-B-32:/w/RemoteCLIP-ViT-B-32.pt"}, True),  # a local file
        ({"RSCHAT_SAM": "vit_b:/w/sam_vit_b.pth"}, True),
        ({"RSCHAT_VLM": "Qwen/Qwen2.5-VL-3B-Instruct", "RSCHAT_OFFLINE": "1"}, True),  # asked
        ({"RSCHAT_OFFLINE": "0"}, False),
    ],
)
def test_offline_unless_a_model_names_a_hub_id(env, offline):
    assert loading.hub_offline(load_settings(env)) is offline


def test_an_existing_folder_is_not_a_hub_id(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints" / "qwen"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert loading.hub_offline(Settings(vlm="checkpoints/qwen")) is True
    assert loading.hub_offline(Settings(vlm="checkpoints/missing")) is False  # not here: a hub id


def test_hf_hub_offline_is_set_at_import_from_the_settings(tmp_path):
    """The old loading.py set HF_HUB_OFFLINE=1 whatever the settings: a Space could not fetch."""
    # huggingface_hub first, as Gradio imports it before rschat: its constant follows too.
    code = "import os, huggingface_hub.constants as c, rschat.backends.loading; print(os.environ['HF_HUB_OFFLINE'], c.HF_HUB_OFFLINE)"
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("RSCHAT_", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    }

    def run(extra: dict[str, str]) -> str:
        proc = subprocess.run([sys.executable, "-c", code], env={**base, **extra}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run({}) == "1 True"
    assert run({"RSCHAT_VLM": "Qwen/Qwen2.5-VL-3B-Instruct"}) == "0 False"
    assert run({"RSCHAT_VLM": "Qwen/Qwen2.5-VL-3B-Instruct", "RSCHAT_OFFLINE": "1"}) == "1 True"
    assert run({"RSCHAT_VLM": "Qwen/Qwen2.5-VL-3B-Instruct", "HF_HUB_OFFLINE": "1"}) == "1 True"  # kept
