"""The house rules that code review would otherwise have to remember: imports run one way
(ui -> agent -> tools -> backends, geo), nothing below the UI imports gradio, and no
function runs past ~60 lines without saying why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "rschat"
# Which floors each floor may import (besides itself and the shared config/resources).
MAY_IMPORT = {
    "geo": set(),
    "backends": {"geo"},
    "tools": {"backends", "geo"},
    "agent": {"tools", "backends", "geo"},
    "ui": {"agent", "tools", "backends", "geo"},
    "eval": {"agent", "tools", "backends", "geo"},  # eval asks questions as a user does (vqa)
    "train": {"backends", "geo"},
}
LONGEST = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    floor = path.relative_to(PACKAGE).parts[0]
    if floor not in MAY_IMPORT:
        return  # cli.py, config.py, resources.py, weights.py sit beside the floors
    used = {m.split(".")[1] for m in _imports(path) if m.startswith("rschat.") and m.count(".") >= 1}
    wrong = used - MAY_IMPORT[floor] - {floor, "config", "resources"}
    assert not wrong, f"{path.name} ({floor}) imports {sorted(wrong)}"
    if floor != "ui":
        assert not any(m == "gradio" or m.startswith("gradio.") for m in _imports(path)), path.name


def test_no_function_is_long_without_a_reason():
    long = []
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                length = node.end_lineno - node.lineno + 1
                body = "\n".join(lines[node.lineno - 1 : node.lineno + 8])
                if length > LONGEST and "Long on purpose" not in body:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these, or say why in a 'Long on purpose' comment at the top: " + ", ".join(long)
