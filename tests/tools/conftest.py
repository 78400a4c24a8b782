"""A real temporary git repository and a tool context over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox
from tests.fixtures.repos import make_calc_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The calc project of tests/fixtures/repos.py (one failing test), with a .gitignore in its first commit."""
    root = tmp_path / "project"
    root.mkdir()
    (root / ".gitignore").write_text("build/\n")
    return make_calc_repo(root)


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
