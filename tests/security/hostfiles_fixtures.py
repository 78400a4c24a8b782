"""Hostile repositories for the host-side file tests: links out, special files, a secret outside.

Every test runs twice through `resolution`: once with the kernel's openat2
(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and once with the component-by-
component no-follow walk used where the kernel lacks it, so both paths of
tools/paths.py are held to the same behaviour.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gptoss_agent.tools import paths
from gptoss_agent.tools.context import ToolContext

SECRET = "OUTSIDE-SECRET-7f3a"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(params=["openat2", "walk"])
def resolution(request, monkeypatch):
    """Run the test with openat2, then with the fallback walk."""
    if request.param == "walk":
        monkeypatch.setattr(paths, "_openat2_usable", [False])
    else:
        with paths.Workspace("/") as root:  # openat2 is decided on first use
            fd, _ = root.open("tmp", os.O_PATH)
            os.close(fd)
        if paths._openat2_usable != [True]:
            pytest.skip("this kernel has no openat2; the walk covers it")
    return request.param


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the repository holding what the agent must never show or change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "id_rsa.txt").write_text(f"{SECRET}\n")
    (folder / "f.txt").write_text(f"{SECRET}\n")
    (folder / "leak.py").write_text(f"def leaked_function_{SECRET[-4:]}():\n    return '{SECRET}'\n")
    return folder


@pytest.fixture
def repo(tmp_path: Path, resolution) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "src").mkdir()
    (root / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "README.md").write_text("# project\nneedle in the readme\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    return ToolContext(workspace=repo)


def outside_untouched(outside: Path) -> bool:
    """The outside folder holds exactly what the fixture put there."""
    return (sorted(p.name for p in outside.iterdir()) == ["f.txt", "id_rsa.txt", "leak.py"]
            and (outside / "f.txt").read_text() == f"{SECRET}\n")
