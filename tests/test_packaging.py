"""The Space's requirements.txt and the package's dependencies stay the same list."""

import tomllib

from conftest import ROOT


def test_requirements_txt_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [ln for ln in lines if ln and not ln.startswith("#")] == deps


def test_top_level_matches_the_design_card():
    for name in ("pyproject.toml", "app.py", "rschat", "assets", "prompts", "tests", "checkpoints", "README.md"):
        assert (ROOT / name).exists(), name
