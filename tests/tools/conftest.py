"""A real temporary git repository and a tool context over it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(
        "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_mul():\n    assert mul(2, 3) == 6\n")
    (root / "conftest.py").write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n")
    (root / ".gitignore").write_text("build/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture(params=["bwrap", "landlock"])
def mechanism(request):
    from gptoss_agent.tools.sandbox import detect

    report = detect(request.param)
    if report.mechanism != request.param:
        pytest.skip(f"{request.param} unavailable here: {report.reason}")
    return request.param


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    return ToolContext(workspace=repo, sandbox=Sandbox(repo, mode="auto"))
